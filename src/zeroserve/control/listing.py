"""List* semantics: filters, sort, and NextToken pagination (an opaque token naming the next offset
within the same query; boto3 paginators just pass it back)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from zeroserve.errors import ValidationError
from zeroserve.store.repository import Row

DEFAULT_MAX_RESULTS = 10


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValidationError(f"Invalid timestamp: {value!r}") from None


def encode_token(offset: int, query: dict[str, Any]) -> str:
    fingerprint = json.dumps(query, sort_keys=True, default=str)
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "q": fingerprint}).encode()).decode()


def decode_token(token: str, query: dict[str, Any]) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ValidationError("The NextToken is not valid.") from None
    if data.get("q") != json.dumps(query, sort_keys=True, default=str) or offset < 0:
        raise ValidationError("The NextToken does not belong to this query.")
    return offset


def select(rows: Iterable[Row], params: dict[str, Any]) -> tuple[list[Row], str | None]:
    """Apply List* filters and sorting, return one page and the token for the next."""
    chosen = list(rows)
    if name_contains := params.get("NameContains"):
        chosen = [r for r in chosen if name_contains.lower() in r.name.lower()]
    if status := params.get("StatusEquals"):
        chosen = [r for r in chosen if r.status == status]
    if (before := params.get("CreationTimeBefore")) is not None:
        chosen = [r for r in chosen if r.created_at < _epoch(before)]
    if (after := params.get("CreationTimeAfter")) is not None:
        chosen = [r for r in chosen if r.created_at > _epoch(after)]
    if (before := params.get("LastModifiedTimeBefore")) is not None:
        chosen = [r for r in chosen if r.modified_at < _epoch(before)]
    if (after := params.get("LastModifiedTimeAfter")) is not None:
        chosen = [r for r in chosen if r.modified_at > _epoch(after)]
    sort_by = params.get("SortBy") or "CreationTime"
    descending = (params.get("SortOrder") or "Descending") == "Descending"
    if sort_by == "Name":
        chosen.sort(key=lambda r: r.name, reverse=descending)
    elif sort_by == "Status":
        chosen.sort(key=lambda r: (r.status, r.name), reverse=descending)
    else:
        chosen.sort(key=lambda r: (r.created_at, r.name), reverse=descending)
    query = {k: v for k, v in params.items() if k not in ("NextToken", "MaxResults")}
    offset = decode_token(params["NextToken"], query) if params.get("NextToken") else 0
    limit = int(params.get("MaxResults") or DEFAULT_MAX_RESULTS)
    page = chosen[offset : offset + limit]
    more = offset + limit < len(chosen)
    return page, encode_token(offset + limit, query) if more else None
