"""Deleting an Approval withdraws it: it stops counting, and the withdrawal is audited."""

from __future__ import annotations

from lockgate.handlers import testing
from tests.lifecycle import manifests


def test_a_deleted_approval_no_longer_counts_and_is_recorded(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.wait_for(
        lambda: lockgate.get("promo", "web-2")["status"].get("countedApprovals") == 1, message="bob counted"
    )
    lockgate.kubectl("delete", "appr", "web-2-bob", "-n", "production", context="bob")
    lockgate.wait_for(
        lambda: lockgate.get("promo", "web-2")["status"].get("countedApprovals") == 0,
        message="bob's approval withdrawn",
    )
    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    lockgate.wait_for(
        lambda: lockgate.get("promo", "web-2")["status"].get("countedApprovals") == 1, message="carol counted"
    )
    assert lockgate.phase("web-2") == "AwaitingApproval"  # bob's withdrawn approval does not come back
    withdrawn = lockgate.wait_for(
        lambda: [r for r in lockgate.trail().records() if r.event == "approval-withdrawn"], message="audit record"
    )
    assert len(withdrawn) == 1
    assert withdrawn[0].promotion.name == "web-2"
    assert withdrawn[0].extra["withdrawnBy"] == "bob"
