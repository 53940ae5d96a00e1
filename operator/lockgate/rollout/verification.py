"""Post-deploy HTTP verification: N consecutive expected answers at an interval, within a deadline.

A check may probe only an allowed host (``parse_target``): by default a Service in the Promotion's
own namespace, so a Promotion cannot make the operator probe the cloud's metadata endpoint, another
team's services or the internet and read the answers back from its status. A Service is looked up
before every probe and the probe connects to its cluster IP (no DNS search path): an ExternalName
Service, a Service without a selector (hand-written endpoints) or a headless one is refused, since
each could send the probe anywhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
import yarl

#: The hosts HTTP checks may probe, by default: Services of the Promotion's own namespace. ``*`` is
#: one DNS label; ``{namespace}`` is the Promotion's namespace (LOCKGATE_VERIFICATION_HOSTS).
DEFAULT_HOSTS = ("*.{namespace}.svc", "*.{namespace}.svc.cluster.local")
#: Added for an operator on a developer's machine (``lockgate dev``), whose workloads are simulated.
LOCAL_HOSTS = ("localhost", "127.0.0.1")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
#: Looks a Service up: (namespace, name) -> the Service, or None when there is none.
ServiceLookup = Callable[[str, str], Awaitable[Mapping[str, Any] | None]]


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a check's URL points: its host, and the Service it names in the Promotion's namespace."""

    url: yarl.URL
    host: str
    namespace: str
    service: str | None


def _host_matches(host: str, pattern: str) -> bool:
    labels, wanted = host.split("."), pattern.lower().split(".")
    if len(labels) != len(wanted):
        return False
    return all((w == "*" and bool(h)) or w == h for h, w in zip(labels, wanted, strict=True))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_target(url: str, namespace: str, allowed_hosts: Sequence[str] = DEFAULT_HOSTS) -> Target | str:
    """The check's target, or why it may not be probed for a Promotion in ``namespace``.

    The URL is parsed as aiohttp parses it (yarl); a host must be plain ASCII DNS labels (or an IP
    address) and match an allowed pattern.
    """
    try:
        parsed = yarl.URL(url)
        host = (parsed.raw_host or "").rstrip(".").lower()
        port = parsed.port
    except (ValueError, UnicodeError) as exc:
        return f"{url!r} is not a URL ({exc})"
    if parsed.scheme not in ("http", "https") or not host or port is None:
        return f"{url!r} is not an http:// or https:// URL with a host"
    if parsed.user is not None or parsed.password is not None:
        return f"{url!r} carries credentials; HTTP checks send none"
    labels, ip = host.split("."), _is_ip(host)
    if not ip and not all(_LABEL.fullmatch(label) for label in labels):
        return f"{url!r}: {host!r} is not a DNS name of plain letters, digits and hyphens"
    patterns = [p.replace("{namespace}", namespace) for p in allowed_hosts]
    if not any(_host_matches(host, pattern) for pattern in patterns):
        hint = (
            " (an IP address: name the Service instead)"
            if ip
            else f" (a Service of this namespace is <service>.{namespace}.svc)"
            if labels[1:2] != [namespace]
            else ""
        )
        return (
            f"HTTP checks may probe only {', '.join(patterns) or 'no host'}; {host} is not one of them{hint} "
            "(the operator's LOCKGATE_VERIFICATION_HOSTS, chart operator.verificationHosts)"
        )
    service = labels[0] if labels[1:3] == [namespace, "svc"] else None
    return Target(parsed, host, namespace, service)


def target_problem(url: str, namespace: str, allowed_hosts: Sequence[str] = DEFAULT_HOSTS) -> str | None:
    """Why an HTTP check may not probe ``url`` for a Promotion in ``namespace`` (None: it may)."""
    target = parse_target(url, namespace, allowed_hosts)
    return target if isinstance(target, str) else None


def service_problem(name: str, namespace: str, service: Mapping[str, Any]) -> str | None:
    """Why a probe may not go through this Service: it could lead outside the namespace's own pods."""
    spec = service.get("spec") or {}
    what = f"Service {namespace}/{name}"
    if spec.get("type") == "ExternalName":
        return f"{what} is an ExternalName Service (it could point anywhere); name a Service that selects pods"
    if not spec.get("selector"):
        return f"{what} has no selector (its endpoints are written by hand and could be any address)"
    if spec.get("clusterIP") in (None, "", "None"):
        return f"{what} is headless; HTTP checks connect to a Service's cluster IP"
    return None


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


def spec_problems(
    spec: Mapping[str, Any],
    namespace: str,
    allowed_hosts: Sequence[str] = DEFAULT_HOSTS,
    *,
    before: Mapping[str, Any] | None = None,
) -> list[str]:
    """The Promotion spec's HTTP checks that may not probe their URL, by field.

    ``before``: the spec as stored; checks unchanged since were admitted then, so an edit of anything
    else passes after the allowed hosts were narrowed (the lifecycle then holds the Promotion before its
    deploy, ``steps.Action.HOLD``; a rollout already under way fails those checks unprobed).
    """
    checks = (spec.get("verification") or {}).get("http") or []
    if before is not None and ((before.get("verification") or {}).get("http") or []) == checks:
        return []
    found = [(i, target_problem(str(c.get("url", "")), namespace, allowed_hosts)) for i, c in enumerate(checks)]
    return [f"spec.verification.http[{i}].url: {problem}" for i, problem in found if problem is not None]


async def _probe(
    session: aiohttp.ClientSession, target: Target, limit: float, address: str | None
) -> int | str:
    """GET the target (at ``address`` with the URL's host name when a Service was resolved): status or error."""
    url, headers, server_hostname = target.url, None, None
    if address is not None:
        url, headers = target.url.with_host(address), {"Host": target.url.raw_authority}
        server_hostname = target.host if target.url.scheme == "https" else None
    try:
        async with session.get(
            url,
            timeout=aiohttp.ClientTimeout(total=limit),
            allow_redirects=False,
            headers=headers,
            server_hostname=server_hostname,
        ) as resp:
            await resp.read()
            return resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return type(exc).__name__


async def _address(target: Target, lookup: ServiceLookup | None) -> tuple[str | None, str | None]:
    """The cluster IP to connect to (None: the URL's host), and a problem that refuses the check."""
    if target.service is None:
        return None, None
    if lookup is None:
        return None, f"Service {target.namespace}/{target.service} cannot be looked up"
    found = await lookup(target.namespace, target.service)
    if found is None:
        return None, None  # not there (yet): this probe fails, the next one looks again
    problem = service_problem(target.service, target.namespace, found)
    return (None, problem) if problem else (str(found["spec"]["clusterIP"]), None)


async def run_check(
    check: HttpCheck, target: Target, deadline: float, lookup: ServiceLookup | None = None
) -> VerificationResult:
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
            service = f"Service {target.namespace}/{target.service}"
            unreachable = f"no {service}"
            try:
                address, problem = await _address(target, lookup)
            except Exception as exc:  # the API did not answer: this probe fails, the next one asks again
                address, problem, unreachable = None, None, f"looking up {service} failed: {exc}"
            if problem is not None:
                return VerificationResult(False, "HttpCheckTargetNotAllowed", f"{check.url}: not probed: {problem}")
            if target.service is not None and address is None:
                last = unreachable
            else:
                last = await _probe(session, target, min(remaining, max(check.interval, 1.0)), address)
            streak = streak + 1 if last == check.expect_status else 0
            if streak >= check.successes:
                return VerificationResult(
                    True,
                    "HttpCheckPassed",
                    f"{check.url}: {streak} consecutive answers {check.expect_status}",
                )
            await asyncio.sleep(min(check.interval, max(0.0, deadline - time.monotonic())))


async def run_checks(
    checks: Sequence[HttpCheck],
    deadline: float,
    namespace: str,
    allowed_hosts: Sequence[str] = DEFAULT_HOSTS,
    lookup: ServiceLookup | None = None,
) -> VerificationResult:
    """All checks must pass; the first failure is the verdict. A target not allowed fails at once, unprobed."""
    if not checks:
        return VerificationResult(True, "NoHttpChecks", "no HTTP checks configured")
    targets = []
    for check in checks:
        target = parse_target(check.url, namespace, allowed_hosts)
        if isinstance(target, str):
            return VerificationResult(False, "HttpCheckTargetNotAllowed", f"not probed: {target}")
        targets.append(target)
    try:
        results = await asyncio.gather(
            *(run_check(check, target, deadline, lookup) for check, target in zip(checks, targets, strict=True))
        )
    except Exception as exc:  # never a Promotion stuck in Verifying: an unexpected error fails the checks
        return VerificationResult(False, "HttpCheckError", f"the HTTP checks could not run: {exc!r}")
    for result in results:
        if not result.passed:
            return result
    return VerificationResult(True, "HttpChecksPassed", "; ".join(r.message for r in results))
