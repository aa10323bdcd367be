"""RFC 3339 timestamps as ASL uses them (Choice Timestamp* operators, Wait, the context object)."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timezone

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)


def parse_timestamp(text: object) -> float | None:
    """Seconds since the epoch, or None when ``text`` is not an RFC 3339 timestamp
    (uppercase T, and uppercase Z unless there is a numeric offset)."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = m.group(7)
    tz = m.group(8)
    try:
        if tz == "Z":
            tzinfo = UTC
        else:
            sign = 1 if tz[0] == "+" else -1
            from datetime import timedelta

            tzinfo = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
        dt = datetime(year, month, day, hour, minute, second, tzinfo=tzinfo)
    except ValueError:
        return None
    return dt.timestamp() + (float(frac) if frac else 0.0)


def format_timestamp(epoch: float) -> str:
    """ISO 8601 with milliseconds and Z, as AWS prints context-object times."""
    dt = datetime.fromtimestamp(epoch, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
