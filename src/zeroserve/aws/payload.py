"""Turning a control-plane request body into action parameters, or a ValidationException.

Any body at all must end here as either a dict or a ValidationError: json.loads alone can also raise
RecursionError (deeply nested arrays) and ValueError (integers over Python's 4,300-digit limit), and it
accepts NaN and Infinity, which are not JSON and would slip past every range check.

A member sent as null counts as absent, as in AWS's own services; dropping those here means no action
ever meets a None where the model says a value goes.
"""

from __future__ import annotations

import json
import math
from typing import Any

from zeroserve.errors import ValidationError

MAX_BODY_BYTES = 16 * 1024 * 1024
# The deepest SageMaker input shape nests about ten levels; anything far deeper is not a real request, and
# refusing it up front keeps every later recursive walk of the document well inside Python's stack.
MAX_DEPTH = 32


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_params(body: bytes) -> dict[str, Any]:
    """The JSON object in `body`; an empty body means no parameters (as botocore sends for some actions)."""
    if len(body) > MAX_BODY_BYTES:
        raise ValidationError(f"Request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB.")
    if not body.strip():
        return {}
    try:
        params = json.loads(body, parse_float=_finite, parse_constant=_no_constants)
    except RecursionError:
        raise ValidationError("Request body is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise ValidationError(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise ValidationError("Request body must be a JSON object.")
    if _depth(params) > MAX_DEPTH:
        raise ValidationError(f"Request body is nested more than {MAX_DEPTH} levels deep.")
    cleaned: dict[str, Any] = _without_nulls(params)
    return cleaned


def _depth(document: Any) -> int:
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
