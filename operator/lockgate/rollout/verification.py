"""Post-deploy HTTP verification: N consecutive expected answers at an interval, within a deadline.

A check may probe only an allowed host (``target_problem``): by default a Service in the
Promotion's own namespace, so a Promotion cannot make the operator probe the cloud's metadata
endpoint, another team's services or the internet and read the answers back from its status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

#: The hosts HTTP checks may probe, by default: Services of the Promotion's own namespace. ``*`` is
#: one DNS label; ``{namespace}`` is the Promotion's namespace (LOCKGATE_VERIFICATION_HOSTS).
DEFAULT_HOSTS = ("*.{namespace}.svc", "*.{namespace}.svc.cluster.local")
#: Added for an operator on a developer's machine (``lockgate dev``), whose workloads are simulated.
LOCAL_HOSTS = ("localhost", "127.0.0.1")


def _host_matches(host: str, pattern: str) -> bool:
    labels, wanted = host.split("."), pattern.lower().split(".")
    if len(labels) != len(wanted):
        return False
    return all((w == "*" and bool(h)) or w == h for h, w in zip(labels, wanted, strict=True))


def target_problem(url: str, namespace: str, allowed_hosts: Sequence[str] = DEFAULT_HOSTS) -> str | None:
    """Why an HTTP check may not probe ``url`` for a Promotion in ``namespace`` (None: it may)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        parts.port  # noqa: B018 -- raises on a malformed port
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not host:
        return f"{url!r} is not an http:// or https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return f"{url!r} carries credentials; HTTP checks send none"
    patterns = [p.replace("{namespace}", namespace) for p in allowed_hosts]
    if any(_host_matches(host, pattern) for pattern in patterns):
        return None
    with_ip = ""
    try:
        ipaddress.ip_address(host)
        with_ip = " (an IP address: name the Service instead)"
    except ValueError:
        pass
    return (
        f"HTTP checks may probe only {', '.join(patterns) or 'no host'}; {host}{with_ip} is not one of them "
        "(the operator's LOCKGATE_VERIFICATION_HOSTS, chart operator.verificationHosts)"
    )


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


def spec_problems(spec: Mapping[str, Any], namespace: str, allowed_hosts: Sequence[str] = DEFAULT_HOSTS) -> list[str]:
    """The Promotion spec's HTTP checks that may not probe their URL, by field."""
    checks = (spec.get("verification") or {}).get("http") or []
    found = [(i, target_problem(str(c.get("url", "")), namespace, allowed_hosts)) for i, c in enumerate(checks)]
    return [f"spec.verification.http[{i}].url: {problem}" for i, problem in found if problem is not None]


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


async def run_checks(
    checks: Sequence[HttpCheck], deadline: float, namespace: str, allowed_hosts: Sequence[str] = DEFAULT_HOSTS
) -> VerificationResult:
    """All checks must pass; the first failure is the verdict. A target not allowed fails at once, unprobed."""
    if not checks:
        return VerificationResult(True, "NoHttpChecks", "no HTTP checks configured")
    for check in checks:
        problem = target_problem(check.url, namespace, allowed_hosts)
        if problem is not None:
            return VerificationResult(False, "HttpCheckTargetNotAllowed", f"not probed: {problem}")
    results = await asyncio.gather(*(run_check(check, deadline) for check in checks))
    for result in results:
        if not result.passed:
            return result
    return VerificationResult(True, "HttpChecksPassed", "; ".join(r.message for r in results))
