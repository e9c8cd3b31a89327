"""xsd:duration (PnYnMnDTnHnMnS, PnW) applied to a UTC time, calendar-aware."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

from .errors import InvalidParameter

_DURATION = re.compile(
    r"P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?")


def check_duration(text: str) -> str:
    m = _DURATION.fullmatch(text.strip())
    if m is None or not any(m.groupdict().values()) or text.strip().endswith("T"):
        raise InvalidParameter(f"{text!r} is not a positive xsd:duration (e.g. P90D, P1Y)")
    return text.strip()


def add_duration(start: datetime, text: str) -> datetime:
    m = _DURATION.fullmatch(check_duration(text))
    assert m is not None
    g = {k: v or "0" for k, v in m.groupdict().items()}
    months = start.month - 1 + int(g["mo"]) + 12 * int(g["y"])
    year, month = start.year + months // 12, months % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    try:
        moved = start.replace(year=year, month=month, day=day)
    except ValueError:
        raise InvalidParameter(f"duration {text} goes beyond the calendar") from None
    return moved + timedelta(weeks=int(g["w"]), days=int(g["d"]), hours=int(g["h"]),
                             minutes=int(g["mi"]), seconds=float(g["s"]))


def parse_utc(text: str) -> datetime:
    """xsd:dateTime in UTC ('Z' or +00:00) -> naive UTC datetime."""
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).astimezone(UTC) \
        .replace(tzinfo=None)
