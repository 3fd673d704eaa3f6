"""`started_at` as phone systems and people write it → ISO 8601, or None when it is not a time.

The forms (README, "Inputs"):
- ISO 8601, with or without an offset: ``2025-03-07T10:41:55+08:00``, ``2025-03-07T02:41:55Z``,
  ``2025-03-07 10:41``, ``2025-03-07``; kept as written;
- ``2025/3/7 10:41[:55]``, ``2025.3.7 10:41``, ``2025-3-7 10:41`` (a date with /, . or - and one-
  or two-digit month and day, a time H:MM or H:MM:SS);
- ``2025年3月7日 10:41[:55]`` and ``2025年3月7日 10时41分[55秒]`` / ``10点41分``;
- ``20250307``, ``20250307104155``, ``20250307T104155`` (file names);
- epoch seconds (10 digits) or milliseconds (13 digits).

The time-zone rule: a time with an offset keeps it; a time without one is the call centre's local
wall-clock time, kept as written (the call's date is the date written). Epoch values name an
instant, not a wall-clock time: they are written in the local time zone of the machine running
`qa` (``TZ``), with its offset.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time

ALLOWED = ("ISO 8601 (2025-03-07T10:41:55+08:00, 2025-03-07 10:41), 2025/3/7 10:41, 2025年3月7日 10:41, "
           "20250307104155, epoch seconds or milliseconds")

_DATE = r"(?P<y>\d{4})(?:[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})|年(?P<cm>\d{1,2})月(?P<cd>\d{1,2})[日号])"
_TIME = (r"(?:[T ]*(?P<H>\d{1,2})(?:[:：](?P<M>\d{2})(?:[:：](?P<S>\d{2}))?"
         r"|[时点](?P<cM>\d{1,2})分(?:(?P<cS>\d{1,2})秒)?))?")
_WRITTEN = re.compile(rf"{_DATE}{_TIME}")
_COMPACT = re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?:T?(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2}))?")
_EPOCH = re.compile(r"\d{10}|\d{13}")


def parse_started_at(value: str) -> str | None:
    """``value`` as ISO 8601 (ISO input as written), or None when it is none of the forms above
    or names no real day and time (2025-02-30, 25:00)."""
    text = value.strip()
    if not text:
        return None
    if _EPOCH.fullmatch(text):
        seconds = int(text) / (1000 if len(text) == 13 else 1)
        return datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")
    if not text[:1].isdigit():
        return None
    try:
        datetime.fromisoformat(text)
        return text
    except ValueError:
        pass
    match = _COMPACT.fullmatch(text) or _WRITTEN.fullmatch(text)
    if match is None:
        return None
    g = match.groupdict()
    try:
        day = date(int(g["y"]), int(g.get("m") or g.get("cm")), int(g.get("d") or g.get("cd")))
        if g.get("H") is None:
            return day.isoformat()
        minute, second = g.get("M") or g.get("cM") or "0", g.get("S") or g.get("cS") or "0"
        at = time(int(g["H"]), int(minute), int(second))
    except ValueError:  # month 13, 30 February, hour 25
        return None
    return datetime.combine(day, at).isoformat(timespec="seconds")
