"""Which hosts a Promotion's HTTP checks may probe: by default only the Services of its own namespace."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockgate.rollout import verification
from tests import healthendpoint


@pytest.mark.parametrize(
    "url",
    [
        "http://web.production.svc/healthz",
        "https://web.production.svc:8443/ready",
        "http://web.production.svc.cluster.local:8080/",
        "http://WEB.Production.svc./healthz",  # DNS is case-insensitive; a trailing dot is the same name
    ],
)
def test_a_service_of_the_promotions_namespace_may_be_probed(url: str) -> None:
    assert verification.target_problem(url, "production") is None


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://169.254.169.254/latest/meta-data/", "an IP address: name the Service instead"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal is not one of them"),
        ("http://payments.finance.svc/admin", "payments.finance.svc is not one of them"),
        ("http://a.b.production.svc/", "a.b.production.svc is not one of them"),  # '*' is one label
        ("http://kubernetes.default.svc/api", "kubernetes.default.svc is not one of them"),
        ("http://admin:pw@web.production.svc/", "carries credentials"),
        ("file:///etc/passwd", "not an http:// or https:// URL"),
        ("gopher://web.production.svc/", "not an http:// or https:// URL"),
        ("http://web.production.svc:99999/", "is not a URL"),
    ],
)
def test_anything_else_is_refused_with_what_to_do(url: str, said: str) -> None:
    problem = verification.target_problem(url, "production")
    assert problem is not None and said in problem
    if "not one of them" in problem:
        assert "*.production.svc" in problem and "LOCKGATE_VERIFICATION_HOSTS" in problem


def test_a_platform_team_may_allow_more_hosts() -> None:
    allowed = [*verification.DEFAULT_HOSTS, "*.internal.example.com", "status.example.org"]
    assert verification.target_problem("https://canary.internal.example.com/ok", "production", allowed) is None
    assert verification.target_problem("https://status.example.org/", "production", allowed) is None
    assert verification.target_problem("https://x.status.example.org/", "production", allowed) is not None


@given(
    octets=st.tuples(*[st.integers(0, 255)] * 4),
    namespace=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
)
def test_no_ip_address_is_a_default_target(octets: tuple[int, ...], namespace: str) -> None:
    assert verification.target_problem(f"http://{'.'.join(map(str, octets))}/", namespace) is not None


def test_the_spec_names_the_field_of_each_refused_check() -> None:
    spec = {
        "verification": {
            "http": [{"url": "http://web.production.svc/healthz"}, {"url": "http://169.254.169.254/"}],
        }
    }
    problems = verification.spec_problems(spec, "production")
    assert len(problems) == 1 and problems[0].startswith("spec.verification.http[1].url: HTTP checks may probe only")
    # Admitted before the allowed hosts were narrowed: editing anything else is not refused for them.
    assert verification.spec_problems({**spec, "image": "web:3"}, "production", before=spec) == []
    assert verification.spec_problems(spec, "production", before={"verification": {"http": []}}) == problems


def test_a_target_not_allowed_fails_the_verification_without_a_request() -> None:
    with healthendpoint.serving() as health:
        check = verification.HttpCheck(f"http://127.0.0.1:{health.port}/healthz", successes=1)
        result = asyncio.run(verification.run_checks([check], time.monotonic() + 5, "production"))
        assert (result.passed, result.reason) == (False, "HttpCheckTargetNotAllowed")
        assert result.message.startswith("not probed: HTTP checks may probe only")
        assert health.hosts == []
        allowed = [*verification.DEFAULT_HOSTS, "127.0.0.1"]
        assert asyncio.run(verification.run_checks([check], time.monotonic() + 5, "production", allowed)).passed
        assert health.hosts == [f"127.0.0.1:{health.port}"]


@pytest.mark.parametrize(
    "url",
    [
        "http://a\N{SMALL FULL STOP}.production.svc/",  # look-alike dots that the HTTP client maps to other names
        "http://metadata\N{IDEOGRAPHIC FULL STOP}google.production.svc/",
        f"http://{'a' * 64}.production.svc/",  # not a DNS label: the client would refuse it at every probe
        "http://we_b.production.svc/",
    ],
)
def test_a_host_must_be_plain_dns_labels(url: str) -> None:
    """Judged as the HTTP client will resolve it (yarl's normalisation), or refused outright."""
    assert verification.target_problem(url, "production") is not None


def test_a_check_on_a_service_of_the_namespace_goes_through_that_service() -> None:
    for url in ("http://web.production.svc:8080/healthz", "http://web.production.svc.cluster.local/x"):
        target = verification.parse_target(url, "production")
        assert isinstance(target, verification.Target) and target.service == "web"
    other = verification.parse_target("https://status.example.org/", "production", ["status.example.org"])
    assert isinstance(other, verification.Target) and other.service is None


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ({"type": "ExternalName", "externalName": "metadata.google.internal"}, "is an ExternalName Service"),
        ({"clusterIP": "10.0.0.7", "ports": [{"port": 80}]}, "has no selector"),
        ({"selector": {"app": "web"}, "clusterIP": "None"}, "is headless"),
    ],
)
def test_a_service_that_could_lead_anywhere_is_refused(spec: dict[str, Any], said: str) -> None:
    problem = verification.service_problem("web", "production", {"spec": spec})
    assert problem is not None and problem.startswith("Service production/web ") and said in problem
    fine = {"spec": {"selector": {"app": "web"}, "clusterIP": "10.0.0.7"}}
    assert verification.service_problem("web", "production", fine) is None


def run(url: str, lookup: Any, within: float = 3.0) -> verification.VerificationResult:
    check = verification.HttpCheck(url, successes=1, interval=0.2)
    return asyncio.run(verification.run_checks([check], time.monotonic() + within, "production", lookup=lookup))


def test_the_probe_connects_to_the_services_cluster_ip_with_the_services_name() -> None:
    with healthendpoint.serving() as health:
        asked: list[tuple[str, str]] = []

        async def lookup(namespace: str, name: str) -> dict[str, Any]:
            asked.append((namespace, name))
            return {"spec": {"selector": {"app": "web"}, "clusterIP": "127.0.0.1"}}

        url = f"http://web.production.svc:{health.port}/healthz"
        assert run(url, lookup).passed
        assert asked == [("production", "web")] and health.hosts == [f"web.production.svc:{health.port}"]


def test_an_external_name_service_fails_the_check_unprobed_and_a_missing_one_is_retried() -> None:
    async def external(namespace: str, name: str) -> dict[str, Any]:
        return {"spec": {"type": "ExternalName", "externalName": "169.254.169.254.nip.io"}}

    refused = run("http://web.production.svc/healthz", external)
    assert (refused.passed, refused.reason) == (False, "HttpCheckTargetNotAllowed")
    assert "not probed: Service production/web is an ExternalName Service" in refused.message

    async def missing(namespace: str, name: str) -> None:
        return None

    waited = run("http://web.production.svc/healthz", missing, within=0.5)
    assert (waited.passed, waited.reason) == (False, "HttpCheckFailed")
    assert "last answer: no Service production/web" in waited.message

    async def failing(namespace: str, name: str) -> None:
        raise RuntimeError("403 services is forbidden")

    broken = run("http://web.production.svc/healthz", failing, within=0.5)
    assert not broken.passed and "looking up Service production/web failed: 403 services is forbidden" in broken.message
