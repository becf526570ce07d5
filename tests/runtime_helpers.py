"""Small helpers for the runtime tests: build an Invocation, read a Reply, compare with transformers."""

from __future__ import annotations

import json
import math
from typing import Any

from zeroserve.runtimes.base import Invocation, Reply


def invoke(body: Any, content_type: str = "application/json", accept: str = "application/json") -> Invocation:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Invocation(body=raw, content_type=content_type, accept=accept)


def answer(outcome: Reply | BaseException) -> Any:
    """The JSON an outcome carries; re-raises an outcome that is an exception."""
    if isinstance(outcome, BaseException):
        raise outcome
    return json.loads(outcome.body)


def assert_same_shape_and_values(ours: Any, theirs: Any, *, tol: float = 1e-4, path: str = "$") -> None:
    """Same nesting, keys, strings and ints; floats within `tol` (absolute or relative)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: {type(ours).__name__} is not a dict"
        assert list(ours) == list(theirs), f"{path}: keys {list(ours)} != {list(theirs)}"
        for key in theirs:
            assert_same_shape_and_values(ours[key], theirs[key], tol=tol, path=f"{path}.{key}")
    elif isinstance(theirs, list | tuple):
        assert isinstance(ours, list), f"{path}: {type(ours).__name__} is not a list"
        assert len(ours) == len(theirs), f"{path}: length {len(ours)} != {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same_shape_and_values(a, b, tol=tol, path=f"{path}[{i}]")
    elif isinstance(theirs, float) or type(theirs).__name__.startswith("float"):
        assert isinstance(ours, float | int), f"{path}: {ours!r} is not a number"
        assert math.isclose(ours, float(theirs), rel_tol=tol, abs_tol=tol), f"{path}: {ours} != {theirs}"
    else:
        assert ours == theirs, f"{path}: {ours!r} != {theirs!r}"
