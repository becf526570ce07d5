"""`since` as epoch seconds, ISO 8601 or an age."""

from __future__ import annotations

import pytest

from zeroserve.errors import ValidationError
from zeroserve.metrics.period import parse_since

NOW_S = 1_717_200_000.0  # 2024-06-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "expected_s"),
    [
        ("1717100000", 1_717_100_000.0),
        ("1717100000.5", 1_717_100_000.5),
        ("2024-06-01", NOW_S),
        ("2024-06-01T00:00:00Z", NOW_S),
        ("2024-06-01T02:00:00+02:00", NOW_S),
        ("90s", NOW_S - 90),
        ("30m", NOW_S - 1800),
        ("6h", NOW_S - 6 * 3600),
        ("7d", NOW_S - 7 * 86400),
    ],
)
def test_since_is_read_in_each_form(text: str, expected_s: float) -> None:
    assert parse_since(text, NOW_S) == expected_s


@pytest.mark.parametrize("text", ["yesterday", "5 minutes", "2024-13-01", ""])
def test_anything_else_is_a_validation_error(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_since(text, NOW_S)
