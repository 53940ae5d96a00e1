"""Post-deploy HTTP verification: N consecutive expected answers at an interval, within a deadline."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp


@dataclasses.dataclass(frozen=True)
class HttpCheck:
    url: str
    expect_status: int = 200
    successes: int = 3
    interval: float = 5.0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], parse_duration: Any) -> HttpCheck:
        interval = spec.get("interval")
        return cls(
            url=str(spec["url"]),
            expect_status=int(spec.get("expectStatus", 200)),
            successes=int(spec.get("successes", 3)),
            interval=float(parse_duration(interval)) if interval else 5.0,
        )


@dataclasses.dataclass(frozen=True)
class VerificationResult:
    passed: bool
    reason: str
    message: str


async def _probe(session: aiohttp.ClientSession, url: str, limit: float) -> int | str:
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=limit), allow_redirects=False
        ) as resp:
            await resp.read()
            return resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__


async def run_check(check: HttpCheck, deadline: float) -> VerificationResult:
    """Probe until ``check.successes`` consecutive expected answers, or fail at the monotonic ``deadline``."""
    streak = 0
    last: int | str = "no answer"
    async with aiohttp.ClientSession() as session:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return VerificationResult(
                    False,
                    "HttpCheckFailed",
                    f"{check.url}: {streak} of {check.successes} consecutive answers {check.expect_status} "
                    f"before the verification timeout; last answer: {last}",
                )
            last = await _probe(session, check.url, min(remaining, max(check.interval, 1.0)))
            streak = streak + 1 if last == check.expect_status else 0
            if streak >= check.successes:
                return VerificationResult(
                    True,
                    "HttpCheckPassed",
                    f"{check.url}: {streak} consecutive answers {check.expect_status}",
                )
            await asyncio.sleep(min(check.interval, max(0.0, deadline - time.monotonic())))


async def run_checks(checks: Sequence[HttpCheck], deadline: float) -> VerificationResult:
    """All checks must pass; the first failure is the verdict."""
    if not checks:
        return VerificationResult(True, "NoHttpChecks", "no HTTP checks configured")
    results = await asyncio.gather(*(run_check(check, deadline) for check in checks))
    for result in results:
        if not result.passed:
            return result
    return VerificationResult(True, "HttpChecksPassed", "; ".join(r.message for r in results))
