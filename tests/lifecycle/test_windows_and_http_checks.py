"""A closed change window holds an approved Promotion; HTTP checks decide verification."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest

from lockgate.handlers import background, testing
from tests import healthendpoint
from tests.lifecycle import manifests


def approve(stack: testing.Stack, promotion: str) -> None:
    stack.apply(promotion, context="alice")
    stack.wait_phase("web-2", "AwaitingApproval")
    stack.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    stack.apply(manifests.approval("web-2-carol", "web-2"), context="carol")


def test_a_freeze_holds_an_approved_promotion_and_says_when_it_opens(lockgate: testing.Stack) -> None:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    until = now + datetime.timedelta(hours=2)
    lockgate.apply(f"""
apiVersion: lockgate.dev/v1alpha1
kind: GatePolicy
metadata: {{name: freeze}}
spec:
  namespaceSelector: {{matchLabels: {{lockgate.dev/environment: production}}}}
  approvals: {{rules: [{{name: any-lead, groups: [engineering-leads], count: 1}}]}}
  changeWindows:
    timezone: UTC
    freeze: [{{start: "{(now - datetime.timedelta(hours=1)).isoformat()}", end: "{until.isoformat()}",
              reason: quarter-end freeze}}]
""")
    approve(lockgate, manifests.promotion())
    promo = lockgate.wait_for(
        lambda: (p := lockgate.get("promo", "web-2"))["status"].get("countedApprovals") == 3 and p,
        message="all approvals counted",
    )
    status = promo["status"]
    assert status["phase"] == "Approved"  # every approval is in; the freeze holds it
    assert "quarter-end freeze" in status["message"]
    assert until.strftime("%H:%M") in status["message"] or until.isoformat()[:16] in status["message"]
    assert status.get("nextCheckAt")
    assert lockgate.image() == "registry.example/web:1.0"


@pytest.fixture
def health_endpoint() -> Iterator[tuple[str, healthendpoint.HealthEndpoint]]:
    with healthendpoint.serving(503) as health:
        yield f"http://127.0.0.1:{health.port}/healthz", health


def with_http_check(url: str) -> str:
    return manifests.promotion().replace(
        "  verification: {timeout: 20s, rollbackOnFailure: true}",
        f"  verification:\n    timeout: 4s\n    rollbackOnFailure: true\n"
        f"    http: [{{url: '{url}', expectStatus: 200, successes: 2, interval: 1s}}]",
    )


def test_a_failing_http_check_rolls_back(
    lockgate: testing.Stack, health_endpoint: tuple[str, healthendpoint.HealthEndpoint]
) -> None:
    url, _ = health_endpoint
    approve(lockgate, with_http_check(url))
    promo = lockgate.wait_phase("web-2", "RolledBack", "Failed", timeout=30)
    assert promo["status"]["phase"] == "RolledBack"
    assert "HttpCheckFailed" in str(promo["status"]["conditions"])
    assert "503" in str(promo["status"]["conditions"])
    assert lockgate.image() == "registry.example/web:1.0"


def test_passing_http_checks_verify_the_rollout(
    lockgate: testing.Stack, health_endpoint: tuple[str, healthendpoint.HealthEndpoint]
) -> None:
    url, health = health_endpoint
    health.status = 200
    approve(lockgate, with_http_check(url))
    promo = lockgate.wait_phase("web-2", "Succeeded", "RolledBack", "Failed", timeout=30)
    assert promo["status"]["phase"] == "Succeeded"
    verified = next(c for c in promo["status"]["conditions"] if c["type"] == "Verified")
    assert verified["status"] == "True"


def test_an_http_check_may_not_probe_outside_the_promotions_namespace(lockgate: testing.Stack) -> None:
    """Refused at admission, naming the field and the setting: no probe of the cloud's metadata or another team."""
    for url, host in (
        ("http://169.254.169.254/latest/meta-data/iam/", "169.254.169.254 is not one of them (an IP address"),
        ("http://payments.finance.svc:8080/admin", "payments.finance.svc is not one of them"),
    ):
        refused = lockgate.apply(with_http_check(url), context="alice", check=False)
        assert refused.returncode != 0
        assert "spec.verification.http[0].url: HTTP checks may probe only *.production.svc" in refused.stderr
        assert host in refused.stderr and "LOCKGATE_VERIFICATION_HOSTS" in refused.stderr
    lockgate.apply(with_http_check("http://web.production.svc:8080/healthz"), context="alice")


def test_an_http_check_through_an_external_name_service_is_not_probed_and_rolls_back(lockgate: testing.Stack) -> None:
    """A Service of the namespace may point anywhere (ExternalName): the probe would leave the namespace."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "production"},
        "spec": {"type": "ExternalName", "externalName": "metadata.google.internal"},
    }
    lockgate.kubectl("apply", "-f", "-", input=json.dumps(service))
    approve(lockgate, with_http_check("http://web.production.svc/computeMetadata/v1/"))
    promo = lockgate.wait_phase("web-2", "RolledBack", "Failed", "Succeeded", timeout=30)
    assert promo["status"]["phase"] == "RolledBack"
    conditions = str(promo["status"]["conditions"])
    assert "HttpCheckFailed" in conditions
    assert "not probed: Service production/web is an ExternalName Service" in conditions
    assert lockgate.image() == "registry.example/web:1.0"


def test_checks_admitted_before_their_host_was_disallowed_hold_the_deploy_and_say_why(lockgate: testing.Stack) -> None:
    """The allowed hosts were narrowed after the Promotion was admitted: deploying would only roll back when
    its checks fail unprobed, so it waits (Pending) naming the field, what to do, and the setting."""
    lockgate.apply(with_http_check("http://web.production.svc:8080/healthz"), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.stop_operator()
    lockgate.start_operator(settings=background.local_settings(verification_hosts=["*.{namespace}.internal"]))
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    held = lockgate.wait_for(
        lambda: "VerificationTargetNotAllowed" in str((p := lockgate.get("promo", "web-2"))["status"]) and p,
        message="web-2 held for its check's host",
    )
    message = held["status"]["message"]
    assert held["status"]["phase"] == "Pending"
    assert "spec.verification.http[0].url: HTTP checks may probe only *.production.internal" in message
    assert "Not deployed" in message and "LOCKGATE_VERIFICATION_HOSTS" in message
    assert lockgate.image() == "registry.example/web:1.0"
    assert not [r for r in lockgate.trail().records() if r.event in ("approved", "deploying")]

    def hold_event() -> dict[str, Any] | None:  # posted in the background, with the condition's reason
        listed = json.loads(lockgate.kubectl("get", "events", "-n", "production", "-o", "json").stdout)["items"]
        about = [e for e in listed if e["involvedObject"]["name"] == "web-2" and "-> Pending" in e["message"]]
        return about[-1] if about else None

    assert lockgate.wait_for(hold_event, message="the hold's Event")["reason"] == "VerificationTargetNotAllowed"


def test_a_paused_target_holds_the_deploy_and_a_resume_lets_it_go(lockgate: testing.Stack) -> None:
    """A paused Deployment would not roll out: the approved Promotion waits, saying how to resume it, instead of
    deploying into a rollout that cannot progress (and timing out into a rollback that cannot either)."""
    lockgate.stop_operator()
    lockgate.start_operator(settings=background.local_settings(break_glass_groups=["oncall-leads"]))
    pause = ["rollout", "pause", "deployment/web", "-n", "production"]
    assert lockgate.kubectl(*pause, context="alice", check=False).returncode != 0  # the image guard: break-glass only
    lockgate.kubectl(*pause, context="dan")  # dan is on call (break-glass): recorded
    approve(lockgate, manifests.promotion())
    held = lockgate.wait_for(
        lambda: "TargetPaused" in str((p := lockgate.get("promo", "web-2"))["status"]) and p,
        message="web-2 held for its paused target",
    )
    assert held["status"]["phase"] == "Approved"
    assert "kubectl rollout resume deployment/web -n production" in held["status"]["message"]
    assert lockgate.image() == "registry.example/web:1.0"
    lockgate.kubectl("rollout", "resume", "deployment/web", "-n", "production")
    lockgate.wait_phase("web-2", "Succeeded", timeout=30)
    assert lockgate.image() != "registry.example/web:1.0"


def test_a_pending_promotion_that_becomes_held_posts_an_event_saying_why(lockgate: testing.Stack) -> None:
    """Pending for a failing policy rule, then held (its target deleted): the phase stays Pending, but the hold
    is news, so ``kubectl describe`` shows an Event with the hold's reason, not only the status."""
    failing = manifests.promotion().replace("critical: 0", "critical: 2")
    lockgate.apply(failing, context="alice")
    lockgate.wait_for(
        lambda: "no-critical-vulnerabilities" in str((p := lockgate.get("promo", "web-2"))["status"]) and p,
        message="web-2 pending on its policy rule",
    )
    assert lockgate.get("promo", "web-2")["status"]["phase"] == "Pending"
    lockgate.kubectl("delete", "deployment/web", "-n", "production")
    lockgate.wait_for(
        lambda: "TargetNotFound" in str((p := lockgate.get("promo", "web-2"))["status"]) and p,
        message="web-2 held for its missing target",
    )

    def events() -> list[dict[str, Any]]:
        listed = json.loads(lockgate.kubectl("get", "events", "-n", "production", "-o", "json").stdout)["items"]
        return [e for e in listed if e["involvedObject"]["name"] == "web-2"]

    held = lockgate.wait_for(
        lambda: [e for e in events() if e["reason"] == "TargetNotFound"], message="the hold's Event"
    )
    assert held[0]["message"].startswith("Pending, held: ") and "fix spec.target" in held[0]["message"]
    assert lockgate.get("promo", "web-2")["status"]["phase"] == "Pending"
