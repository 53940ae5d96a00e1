"""Which hosts a Promotion's HTTP checks may probe: by default only the Services of its own namespace."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockgate.rollout import verification


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


def test_a_target_not_allowed_fails_the_verification_without_a_request() -> None:
    seen: list[str] = []

    class Counting(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        check = verification.HttpCheck(f"http://127.0.0.1:{httpd.server_address[1]}/healthz", successes=1)
        result = asyncio.run(verification.run_checks([check], time.monotonic() + 5, "production"))
        assert (result.passed, result.reason) == (False, "HttpCheckTargetNotAllowed")
        assert result.message.startswith("not probed: HTTP checks may probe only")
        assert seen == []
        allowed = [*verification.DEFAULT_HOSTS, "127.0.0.1"]
        assert asyncio.run(verification.run_checks([check], time.monotonic() + 5, "production", allowed)).passed
        assert seen == ["/healthz"]
    finally:
        httpd.shutdown()
        httpd.server_close()
