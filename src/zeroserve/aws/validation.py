"""Request validation derived from botocore's own service models (`sagemaker`, `logs`): required members,
types, lengths, ranges, patterns and enums come from the shapes, so there is no second copy of those rules
here.

Messages follow AWS's wording, e.g. `1 validation error detected: Value 'a_b' at 'endpointName' failed to
satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from zeroserve.aws.service_model import SAGEMAKER, input_shape
from zeroserve.errors import ValidationError

_MAX_REPORTED = 5
_MAX_SHOWN_CHARS = 200
# Members whose botocore pattern we deliberately widen. ModelDataUrl: SageMaker accepts only s3:// and
# https://; zeroserve also serves local artifacts (file:// URLs and plain paths). Training channels and
# outputs may likewise be file:// URLs (checked in zeroserve.training_jobs.spec).
_UNPATTERNED_MEMBERS = frozenset({"modelDataUrl", "s3Uri", "s3OutputPath"})

Problems = list[str]


def validate(action: str, params: Any, service: str = SAGEMAKER) -> None:
    """Raise ValidationError listing every broken constraint (as AWS does, up to a few)."""
    if not isinstance(params, dict):
        raise ValidationError("Request body must be a JSON object.")
    shape = input_shape(action, service)
    problems = problems_in(shape, params) if shape is not None else []
    if shape is None and params:
        problems.append(f"Unknown parameter '{_member_path('', next(iter(params)))}'")
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise ValidationError(f"{count} validation {noun} detected: {'; '.join(problems[:_MAX_REPORTED])}")


def problems_in(shape: Any, document: Any) -> Problems:
    """Every way `document` breaks botocore `shape` (also used by tests to check our answers)."""
    problems: Problems = []
    _check(shape, document, "", problems)
    return problems


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _member_path(parent: str, name: str) -> str:
    lowered = name[:1].lower() + name[1:]
    return f"{parent}.{lowered}" if parent else lowered


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_SHOWN_CHARS else text[:_MAX_SHOWN_CHARS] + "..."


def _broken(value: Any, where: str, constraint: str) -> str:
    where = where or "request"
    return f"Value '{_shown(value)}' at '{where}' failed to satisfy constraint: Member must {constraint}"


def _check(shape: Any, value: Any, path: str, problems: Problems) -> None:
    _CHECKS.get(shape.type_name, _check_nothing)(shape, value, path, problems)


def _check_nothing(shape: Any, value: Any, path: str, problems: Problems) -> None:
    """Blobs and documents: anything JSON goes."""


def _check_structure(shape: Any, value: Any, path: str, problems: Problems) -> None:
    if not isinstance(value, dict):
        problems.append(_broken(value, path, "be an object"))
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


def _check_list(shape: Any, value: Any, path: str, problems: Problems) -> None:
    if not isinstance(value, list):
        problems.append(_broken(value, path, "be a list"))
        return
    _check_length(shape, value, path, problems)
    for index, item in enumerate(value, start=1):
        _check(shape.member, item, f"{path}.{index}.member", problems)


def _check_map(shape: Any, value: Any, path: str, problems: Problems) -> None:
    if not isinstance(value, dict):
        problems.append(_broken(value, path, "be a map"))
        return
    _check_length(shape, value, path, problems)
    for key, item in value.items():
        _check(shape.key, key, f"{path}.key", problems)
        _check(shape.value, item, f"{path}.{key}", problems)


def _check_string(shape: Any, value: Any, path: str, problems: Problems) -> None:
    if not isinstance(value, str):
        problems.append(_broken(value, path, "be a string"))
        return
    _check_length(shape, value, path, problems)
    pattern = shape.metadata.get("pattern")
    widened = path.rsplit(".", 1)[-1] in _UNPATTERNED_MEMBERS
    if pattern and not widened and not _pattern(pattern).fullmatch(value):
        problems.append(_broken(value, path, f"satisfy regular expression pattern: {pattern}"))
    if shape.enum and value not in shape.enum:
        problems.append(_broken(value, path, f"satisfy enum value set: [{', '.join(shape.enum)}]"))


def _check_integer(shape: Any, value: Any, path: str, problems: Problems) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(_broken(value, path, "be an integer"))
        return
    _check_range(shape, value, path, problems)


def _check_number(shape: Any, value: Any, path: str, problems: Problems) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(_broken(value, path, "be a number"))
        return
    _check_range(shape, value, path, problems)


def _check_boolean(shape: Any, value: Any, path: str, problems: Problems) -> None:
    if not isinstance(value, bool):
        problems.append(_broken(value, path, "be a boolean"))


def _check_timestamp(shape: Any, value: Any, path: str, problems: Problems) -> None:
    # JSON 1.1 sends epoch seconds; an ISO 8601 string is parsed (and rejected if bad) where it is used.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems.append(_broken(value, path, "be a timestamp"))


def _check_length(shape: Any, value: Any, path: str, problems: Problems) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and len(value) < low:
        problems.append(_broken(value, path, f"have length greater than or equal to {low}"))
    if high is not None and len(value) > high:
        problems.append(_broken(value, path, f"have length less than or equal to {high}"))


def _check_range(shape: Any, value: float, path: str, problems: Problems) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        problems.append(_broken(value, path, f"have value greater than or equal to {low}"))
    if high is not None and value > high:
        problems.append(_broken(value, path, f"have value less than or equal to {high}"))


_CHECKS: dict[str, Callable[[Any, Any, str, Problems], None]] = {
    "structure": _check_structure,
    "list": _check_list,
    "map": _check_map,
    "string": _check_string,
    "integer": _check_integer,
    "long": _check_integer,
    "float": _check_number,
    "double": _check_number,
    "boolean": _check_boolean,
    "timestamp": _check_timestamp,
}
