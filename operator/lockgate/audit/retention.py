"""Retention periods: parse ``7y``/``90d``/``2w``/``12h`` and compute the date a record may expire."""

from __future__ import annotations

import datetime
import re

_PART = re.compile(r"(\d+)([ywdh])")


def parse(period: str) -> tuple[int, datetime.timedelta]:
    """Return (calendar years, remaining timedelta) for a period such as ``7y`` or ``1y30d``.

    Raises ``ValueError`` with the accepted format when the period cannot be read.
    """
    text = period.strip().lower()
    if not text or _PART.sub("", text):
        raise ValueError(f"invalid retention {period!r}: use e.g. 7y, 3y, 400d, 52w or 12h")
    years = 0
    delta = datetime.timedelta()
    for number, unit in _PART.findall(text):
        n = int(number)
        if unit == "y":
            years += n
        elif unit == "w":
            delta += datetime.timedelta(weeks=n)
        elif unit == "d":
            delta += datetime.timedelta(days=n)
        else:
            delta += datetime.timedelta(hours=n)
    if years == 0 and delta == datetime.timedelta():
        raise ValueError(f"invalid retention {period!r}: it must be longer than zero")
    return years, delta


def until(at: datetime.datetime, period: str) -> datetime.datetime:
    """The moment a record written at ``at`` may expire: ``at`` plus ``period`` (calendar years)."""
    years, delta = parse(period)
    try:
        shifted = at.replace(year=at.year + years)
    except ValueError:  # 29 February into a non-leap year
        shifted = at.replace(year=at.year + years, day=28)
    return shifted + delta
