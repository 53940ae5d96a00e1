"""Rejection, a source that has not soaked, and a missing target: each ends or waits with a clear reason."""

from __future__ import annotations

from lockgate.handlers import testing
from tests.lifecycle import manifests


def test_a_reject_from_an_eligible_approver_rejects_the_cycle(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(
        manifests.approval("web-2-carol", "web-2", decision="Reject", extra="  comment: the SBOM is stale"),
        context="carol",
    )
    promo = lockgate.wait_phase("web-2", "Rejected")
    assert "carol" in promo["status"]["message"]
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.wait_for(
        lambda: (
            "web-2-bob" in {a["approval"] for a in lockgate.get("promo", "web-2")["status"]["approvals"]}
            or lockgate.phase("web-2") == "Rejected"
        ),
        message="bob's approval seen",
    )
    assert lockgate.phase("web-2") == "Rejected"  # an approval never turns a rejection around
    assert lockgate.image() == "registry.example/web:1.0"
    assert [r.event for r in lockgate.trail().records() if r.promotion.name == "web-2"] == ["rejected"]


def test_a_source_that_does_not_run_the_image_holds_the_promotion(lockgate: testing.Stack) -> None:
    source = "  source: {namespace: staging, name: web, minSoak: 30m}\n"
    lockgate.apply(manifests.promotion(extra=source), context="alice")
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    promo = lockgate.wait_for(
        lambda: (p := lockgate.get("promo", "web-2"))["status"].get("countedApprovals") == 2 and p,
        message="both approvals counted",
    )
    assert promo["status"]["phase"] == "Approved"  # approvals are in; the soak holds it
    soak = [g for g in promo["status"]["gates"] if g["kind"] == "SourceSoak"]
    assert soak and not soak[0]["passed"] and "staging" in soak[0]["message"]
    assert lockgate.image() == "registry.example/web:1.0"


def test_a_missing_target_container_is_said_plainly(lockgate: testing.Stack) -> None:
    wrong = manifests.promotion().replace("container: web}", "container: api}")
    lockgate.apply(wrong, context="alice")
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    promo = lockgate.wait_for(
        lambda: (p := lockgate.get("promo", "web-2"))["status"].get("countedApprovals") == 2 and p,
        message="both approvals counted",
    )
    assert "Deployment production/web has no container api (it has: web)" in promo["status"]["message"]
    assert promo["status"]["phase"] == "Pending"
    assert lockgate.image() == "registry.example/web:1.0"
