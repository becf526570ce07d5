"""List* semantics: filters, sort, and NextToken pagination.

The token is opaque to clients (boto3 paginators just pass it back) and names the sort key of the last item
returned, not an offset: resources created or deleted between two pages then neither repeat nor vanish from
the walk. It also carries a fingerprint of the query, so a token cannot be replayed against other filters.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from zeroserve.database.repository import Row
from zeroserve.errors import ValidationError

DEFAULT_MAX_RESULTS = 10
SortKey = tuple[Any, ...]

_SORT_KEYS: dict[str, Callable[[Row], SortKey]] = {
    "Name": lambda r: (r.name,),
    "CreationTime": lambda r: (r.created_at, r.name),
    "Status": lambda r: (r.status, r.name),
}


def _epoch(value: Any) -> float:
    try:
        if isinstance(value, int | float):
            return float(value)  # an int too big for a float overflows
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        raise ValidationError(f"Invalid timestamp: {str(value)[:100]!r}") from None


def _fingerprint(params: dict[str, Any]) -> str:
    query = {k: v for k, v in params.items() if k not in ("NextToken", "MaxResults")}
    return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_token(last: SortKey, params: dict[str, Any]) -> str:
    data = {"after": list(last), "q": _fingerprint(params)}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def decode_token(token: str, params: dict[str, Any]) -> SortKey:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after, query = data["after"], data["q"]
    except (ValueError, KeyError, TypeError):  # binascii.Error and JSONDecodeError are ValueErrors
        raise ValidationError("The NextToken is not valid.") from None
    if not isinstance(after, list) or query != _fingerprint(params):
        raise ValidationError("The NextToken does not belong to this query.")
    return tuple(after)


def _filtered(rows: Iterable[Row], params: dict[str, Any]) -> list[Row]:
    chosen = list(rows)
    if name_contains := params.get("NameContains"):
        chosen = [r for r in chosen if name_contains.lower() in r.name.lower()]
    if status := params.get("StatusEquals"):
        chosen = [r for r in chosen if r.status == status]
    bounds: list[tuple[str, Callable[[Row], float], Callable[[float, float], bool]]] = [
        ("CreationTimeBefore", lambda r: r.created_at, float.__lt__),
        ("CreationTimeAfter", lambda r: r.created_at, float.__gt__),
        ("LastModifiedTimeBefore", lambda r: r.modified_at, float.__lt__),
        ("LastModifiedTimeAfter", lambda r: r.modified_at, float.__gt__),
    ]
    for member, column, keep in bounds:
        if (raw := params.get(member)) is not None:
            limit = _epoch(raw)
            chosen = [r for r in chosen if keep(float(column(r)), limit)]
    return chosen


def select(rows: Iterable[Row], params: dict[str, Any]) -> tuple[list[Row], str | None]:
    """Apply List* filters and sorting, return one page and the token for the next."""
    key = _SORT_KEYS[params.get("SortBy") or "CreationTime"]
    descending = (params.get("SortOrder") or "Descending") == "Descending"
    chosen = sorted(_filtered(rows, params), key=key, reverse=descending)
    if params.get("NextToken"):
        after = decode_token(params["NextToken"], params)
        try:
            chosen = [r for r in chosen if (key(r) < after if descending else key(r) > after)]
        except TypeError:  # a forged token whose key does not compare with ours
            raise ValidationError("The NextToken is not valid.") from None
    limit = int(params.get("MaxResults") or DEFAULT_MAX_RESULTS)
    page = chosen[:limit]
    more = len(chosen) > limit
    return page, encode_token(key(page[-1]), params) if more else None
