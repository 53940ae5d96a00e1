"""Change windows: whether ``now`` is inside an allowed window and outside every freeze, and when the
next window opens. Local times are in the policy's IANA time zone (DST-aware)."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import zoneinfo

from lockgate.api import gatepolicy

_HORIZON_DAYS = 400


@dataclasses.dataclass(frozen=True)
class WindowVerdict:
    """Open or not, a CamelCase reason, a message, and the next opening when closed."""

    open: bool
    reason: str
    message: str
    next_open: datetime.datetime | None = None


@functools.lru_cache(maxsize=256)
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The time zone, or ``ValueError`` naming it."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _in_allow(window: gatepolicy.AllowWindow, local: datetime.datetime) -> bool:
    day = gatepolicy.DAYS[local.weekday()]
    previous = gatepolicy.DAYS[(local.weekday() - 1) % 7]
    minute = local.hour * 60 + local.minute
    start, end = _minutes(window.start), _minutes(window.end)
    if start < end:
        return day in window.days and start <= minute < end
    if start == end:  # a whole day
        return day in window.days
    return (day in window.days and minute >= start) or (previous in window.days and minute < end)


def _freeze(windows: gatepolicy.ChangeWindows, now: datetime.datetime) -> gatepolicy.Freeze | None:
    for freeze in windows.freeze:
        if freeze.start <= now < freeze.end:
            return freeze
    return None


def is_open(windows: gatepolicy.ChangeWindows, now: datetime.datetime) -> bool:
    """Inside an allowed window (or there are none) and not frozen."""
    if _freeze(windows, now) is not None:
        return False
    if not windows.allow:
        return True
    local = now.astimezone(zone(windows.timezone))
    return any(_in_allow(w, local) for w in windows.allow)


def next_open(windows: gatepolicy.ChangeWindows, now: datetime.datetime) -> datetime.datetime | None:
    """The first instant after ``now`` at which the windows are open (None beyond about a year)."""
    tz = zone(windows.timezone)
    candidates = {f.end for f in windows.freeze if f.end > now}
    if windows.allow:
        today = now.astimezone(tz).date()
        for offset in range(_HORIZON_DAYS):
            day = today + datetime.timedelta(days=offset)
            name = gatepolicy.DAYS[day.weekday()]
            for window in windows.allow:
                if name in window.days:
                    minute = _minutes(window.start)
                    local = datetime.datetime.combine(
                        day, datetime.time(minute // 60, minute % 60), tzinfo=tz
                    )
                    if local > now:
                        candidates.add(local.astimezone(datetime.UTC))
    for candidate in sorted(candidates):
        if is_open(windows, candidate):
            return candidate
    return None


def evaluate(windows: gatepolicy.ChangeWindows, now: datetime.datetime) -> WindowVerdict:
    """The change-window gate."""
    try:
        tz = zone(windows.timezone)
    except ValueError as exc:
        return WindowVerdict(False, "InvalidTimeZone", f"{exc}; fix the policy's changeWindows.timezone")
    if is_open(windows, now):
        return WindowVerdict(True, "InsideChangeWindow", "inside a change window")
    upcoming = next_open(windows, now)
    when = (
        "no window opens within a year"
        if upcoming is None
        else f"next window opens {upcoming.astimezone(tz).strftime('%a %Y-%m-%d %H:%M %Z')}"
    )
    freeze = _freeze(windows, now)
    if freeze is not None:
        return WindowVerdict(False, "ChangeFreeze", f"change freeze: {freeze.reason}; {when}", upcoming)
    return WindowVerdict(False, "OutsideChangeWindow", f"outside the change windows; {when}", upcoming)
