"""Request validation derived from botocore's own service model for `sagemaker`: required members, types,
lengths, ranges, patterns and enums come from the shapes, so there is no second copy of those rules here.

Messages follow AWS's wording, e.g. `1 validation error detected: Value 'a_b' at 'endpointName' failed to
satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from zeroserve.errors import ValidationError

_MAX_REPORTED = 5
# Members whose botocore pattern we deliberately widen. ModelDataUrl: SageMaker accepts only s3:// and
# https://; zeroserve also serves local artifacts (file:// URLs and plain paths).
_UNPATTERNED_MEMBERS = frozenset({"modelDataUrl"})


@functools.cache
def service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def operation_input_shape(action: str) -> Any:
    return service_model().operation_model(action).input_shape


def validate(action: str, params: Any) -> None:
    """Raise ValidationError listing every broken constraint (as AWS does, up to a few)."""
    shape = operation_input_shape(action)
    if not isinstance(params, dict):
        raise ValidationError("Request body must be a JSON object.")
    problems: list[str] = []
    if shape is not None:
        _check(shape, params, "", problems)
    if problems:
        count = len(problems)
        shown = "; ".join(problems[:_MAX_REPORTED])
        noun = "error" if count == 1 else "errors"
        raise ValidationError(f"{count} validation {noun} detected: {shown}")


def _member_path(parent: str, name: str) -> str:
    lowered = name[:1].lower() + name[1:]
    return f"{parent}.{lowered}" if parent else lowered


def _describe(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _check(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    where = path or "request"
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"Value at '{where}' failed to satisfy constraint: Member must be an object")
            return
        for required in shape.required_members:
            if value.get(required) is None:
                problems.append(
                    f"Value null at '{_member_path(path, required)}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None:
                problems.append(f"Unknown parameter '{_member_path(path, name)}'")
            elif member_value is not None:
                _check(member, member_value, _member_path(path, name), problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"Value at '{where}' failed to satisfy constraint: Member must be a list")
            return
        _check_length(shape, value, len(value), path, problems)
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}.{index + 1}.member", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"Value at '{where}' failed to satisfy constraint: Member must be a map")
            return
        _check_length(shape, value, len(value), path, problems)
        for key, item in value.items():
            _check(shape.key, key, f"{path}.key", problems)
            _check(shape.value, item, f"{path}.{key}", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"Value '{_describe(value)}' at '{where}' failed to satisfy constraint: Member must be a string")
            return
        _check_length(shape, value, len(value), path, problems)
        pattern = shape.metadata.get("pattern")
        if pattern and path.rsplit(".", 1)[-1] not in _UNPATTERNED_MEMBERS and not _pattern(pattern).fullmatch(value):
            problems.append(
                f"Value '{_describe(value)}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
        if shape.enum and value not in shape.enum:
            problems.append(
                f"Value '{_describe(value)}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
            )
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"Value '{_describe(value)}' at '{where}' failed to satisfy constraint: Member must be an integer")
            return
        _check_range(shape, value, path, problems)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"Value '{_describe(value)}' at '{where}' failed to satisfy constraint: Member must be a number")
            return
        _check_range(shape, value, path, problems)
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"Value '{_describe(value)}' at '{where}' failed to satisfy constraint: Member must be a boolean")
    elif kind == "timestamp" and (isinstance(value, bool) or not isinstance(value, int | float | str)):
        problems.append(f"Value '{_describe(value)}' at '{where}' failed to satisfy constraint: Member must be a timestamp")


def _check_length(shape: Any, value: Any, length: int, path: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and length < low:
        problems.append(
            f"Value '{_describe(value)}' at '{path}' failed to satisfy constraint: "
            f"Member must have length greater than or equal to {low}"
        )
    if high is not None and length > high:
        problems.append(
            f"Value '{_describe(value)}' at '{path}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {high}"
        )


def _check_range(shape: Any, value: float, path: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        problems.append(
            f"Value '{value}' at '{path}' failed to satisfy constraint: "
            f"Member must have value greater than or equal to {low}"
        )
    if high is not None and value > high:
        problems.append(
            f"Value '{value}' at '{path}' failed to satisfy constraint: "
            f"Member must have value less than or equal to {high}"
        )
