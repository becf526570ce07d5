"""List* filters, sort orders and NextToken pagination over plain rows."""

from __future__ import annotations

from typing import Any

import pytest

from zeroserve.aws.listing import select
from zeroserve.database.repository import Row
from zeroserve.errors import ValidationError


def rows(count: int, status: str = "InService") -> list[Row]:
    return [Row(f"ep-{i:04d}", 1000.0 + i, 2000.0 + i, status, {}) for i in range(count)]


def walk(all_rows: list[Row], params: dict[str, Any]) -> list[str]:
    names, token = [], None
    while True:
        page, token = select(all_rows, {**params, **({"NextToken": token} if token else {})})
        names += [r.name for r in page]
        if token is None:
            return names


def test_default_is_newest_first_ten_at_a_time() -> None:
    page, token = select(rows(25), {})
    assert [r.name for r in page] == [f"ep-{i:04d}" for i in range(24, 14, -1)]
    assert token is not None


def test_pages_walk_every_item_once() -> None:
    assert walk(rows(1050), {"MaxResults": 100, "SortOrder": "Ascending"}) == [
        f"ep-{i:04d}" for i in range(1050)
    ]


def test_items_created_between_pages_neither_repeat_nor_shift_the_walk() -> None:
    data = rows(30)
    first, token = select(data, {"MaxResults": 10, "SortBy": "Name", "SortOrder": "Ascending"})
    data.insert(0, Row("ep-0000a", 5000.0, 5000.0, "InService", {}))
    rest, _ = select(
        data, {"MaxResults": 100, "SortBy": "Name", "SortOrder": "Ascending", "NextToken": token}
    )
    names = [r.name for r in first + rest]
    assert len(names) == len(set(names)) == 30


def test_filters() -> None:
    data = [*rows(20), Row("Other-EP", 1100.0, 1100.0, "Failed", {})]
    assert [r.name for r in select(data, {"NameContains": "other", "MaxResults": 100})[0]] == ["Other-EP"]
    assert [r.name for r in select(data, {"StatusEquals": "Failed", "MaxResults": 100})[0]] == ["Other-EP"]
    between = select(data, {"CreationTimeAfter": 1004, "CreationTimeBefore": 1008.0, "MaxResults": 100})[0]
    assert sorted(r.name for r in between) == ["ep-0005", "ep-0006", "ep-0007"]
    modified = select(data, {"LastModifiedTimeAfter": "1970-01-01T00:33:37Z", "MaxResults": 100})[0]
    assert sorted(r.name for r in modified)[:2] == ["ep-0018", "ep-0019"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"SortBy": "Name", "SortOrder": "Ascending"}, ["a", "b", "c"]),
        ({"SortBy": "Name", "SortOrder": "Descending"}, ["c", "b", "a"]),
        ({"SortBy": "CreationTime", "SortOrder": "Ascending"}, ["b", "c", "a"]),
        ({"SortBy": "Status", "SortOrder": "Ascending"}, ["c", "a", "b"]),
    ],
)
def test_sort_orders(params: dict[str, Any], expected: list[str]) -> None:
    data = [
        Row("a", 3.0, 3.0, "InService", {}),
        Row("b", 1.0, 1.0, "Updating", {}),
        Row("c", 2.0, 2.0, "Failed", {}),
    ]
    assert [r.name for r in select(data, params)[0]] == expected


def test_a_token_belongs_to_its_query() -> None:
    _, token = select(rows(30), {"NameContains": "ep"})
    with pytest.raises(ValidationError, match="does not belong to this query"):
        select(rows(30), {"NameContains": "ep-1", "NextToken": token})


@pytest.mark.parametrize(
    "token", ["garbage", "eyJhIjogMX0=", "W10=", "eyJhZnRlciI6IFsxXSwgInEiOiAwfQ==", "%%%"]
)
def test_forged_tokens_are_validation_errors(token: str) -> None:
    with pytest.raises(ValidationError):
        select(rows(30), {"NextToken": token})


def test_a_bad_timestamp_string_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="Invalid timestamp"):
        select(rows(3), {"CreationTimeBefore": "yesterday"})


@pytest.mark.parametrize("value", [-(10**4000), 10**400])
def test_a_timestamp_too_big_for_a_float_is_a_validation_error(value: int) -> None:
    with pytest.raises(ValidationError, match="Invalid timestamp"):
        select(rows(3), {"CreationTimeBefore": value})
