"""Any control-plane body ends as parameters or a ValidationError, never an unexpected exception."""

from __future__ import annotations

import pytest

from zeroserve.aws.payload import MAX_BODY_BYTES, MAX_DEPTH, parse_params
from zeroserve.errors import ValidationError


def test_an_empty_body_is_no_parameters() -> None:
    assert parse_params(b"") == {}
    assert parse_params(b"  \n") == {}


def test_null_members_count_as_absent_at_every_level() -> None:
    params = parse_params(b'{"ModelName": "m", "Tags": null, "PrimaryContainer": {"Image": null, "A": [1]}}')
    assert params == {"ModelName": "m", "PrimaryContainer": {"A": [1]}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "Request body is not valid JSON"),
        (b"\xff\xfe\x00", "Request body is not valid JSON"),
        (b"[1, 2]", "Request body must be a JSON object."),
        (b'"text"', "Request body must be a JSON object."),
        (b'{"MaxResults": NaN}', "Request body is not valid JSON"),
        (b'{"MaxResults": -Infinity}', "Request body is not valid JSON"),
        (b'{"InitialVariantWeight": 1e999}', "Request body is not valid JSON"),
        (b'{"MaxResults": ' + b"9" * 5000 + b"}", "Request body is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": ' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), f"more than {MAX_DEPTH} levels deep"),
    ],
)
def test_malformed_bodies_are_validation_errors(body: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_params(body)


def test_a_body_over_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(ValidationError, match="larger than 16 MB"):
        parse_params(b" " * (MAX_BODY_BYTES + 1))
