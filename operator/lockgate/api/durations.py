"""Durations as Go-style strings (``30m``, ``24h``, ``7y``): the schema pattern and the parser."""

from __future__ import annotations

import datetime
import functools
import re
from typing import Annotated

import pydantic

#: Units: s (second), m (minute), h (hour), d (day = 24h), y (year = 365d). Components
#: add up (``1h30m``); ``0`` alone means zero. The same regex is the CRD ``pattern``.
PATTERN = r"^(0|([0-9]+(s|m|h|d|y))+)$"

#: A duration-typed model field (the CRD gets the pattern).
Duration = Annotated[str, pydantic.Field(pattern=PATTERN, max_length=32)]

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
_COMPONENT = re.compile(r"([0-9]+)([smhdy])")
_WHOLE = re.compile(PATTERN)


@functools.lru_cache(maxsize=1024)  # policies name a handful of durations, judged at every decision
def parse(text: str) -> datetime.timedelta:
    """Parse a duration string; raise ``ValueError`` naming the problem when it is malformed."""
    if not _WHOLE.match(text):
        raise ValueError(
            f"invalid duration {text!r}: use digits with units s, m, h, d or y, like 30m or 1h30m"
        )
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _COMPONENT.findall(text))
    return datetime.timedelta(seconds=seconds)


def format_duration(delta: datetime.timedelta) -> str:
    """Render a timedelta in the same notation (largest units first, no years: ``26h`` not ``1d2h``)."""
    total = int(delta.total_seconds())
    if total <= 0:
        return "0"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        n, total = divmod(total, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)
