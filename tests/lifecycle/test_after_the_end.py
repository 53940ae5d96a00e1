"""What happens after a cycle ends, or when its Promotion disappears mid-rollout."""

from __future__ import annotations

from lockgate.handlers import testing
from tests.lifecycle import manifests


def approve(stack: testing.Stack) -> None:
    stack.apply(manifests.promotion(), context="alice")
    stack.wait_phase("web-2", "AwaitingApproval")
    stack.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    stack.apply(manifests.approval("web-2-carol", "web-2"), context="carol")


def test_an_approval_after_the_end_says_it_has_no_effect(lockgate: testing.Stack) -> None:
    approve(lockgate)
    lockgate.wait_phase("web-2", "Succeeded", timeout=30)
    lockgate.apply(manifests.approval("web-2-dan", "web-2"), context="dan")
    late = lockgate.wait_for(lambda: lockgate.get("appr", "web-2-dan").get("status"), message="a status")
    assert late["counted"] is False and late["reason"] == "PromotionFinished"
    assert "already Succeeded" in late["message"]


def test_a_promotion_deleted_mid_rollout_leaves_a_failed_record(lockgate: testing.Stack) -> None:
    lockgate.cluster.cluster.workload_delay = 2.0
    approve(lockgate)
    lockgate.wait_phase("web-2", "Verifying", timeout=20)
    lockgate.kubectl("delete", "promo", "web-2", "-n", "production")
    failed = lockgate.wait_for(
        lambda: [r for r in lockgate.trail().records() if r.promotion.name == "web-2" and r.event == "failed"],
        message="a failed record",
    )
    assert len(failed) == 1
    assert failed[0].image.endswith(manifests.DIGEST)
