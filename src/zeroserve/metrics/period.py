"""Reading the start of a reporting period as people and scripts write it: epoch seconds (`1717171717`),
ISO 8601 (`2024-05-31`, `2024-05-31T12:00:00Z`; no zone means UTC), or an age (`90s`, `30m`, `6h`, `7d`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from zeroserve.errors import ValidationError

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now_s: float) -> float:
    """Epoch seconds of the start of the period."""
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    age = _AGE.match(value)
    if age:
        return now_s - float(age.group(1)) * _UNIT_S[age.group(2)]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"since={text!r} is neither epoch seconds, an ISO 8601 time, nor an age like 30m, 6h or 7d."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
