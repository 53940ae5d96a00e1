"""The emergency path: fewer, emergency approvers deploy now; a retro review is due and closes later."""

from __future__ import annotations

from lockgate.handlers import testing
from tests.lifecycle import manifests

EMERGENCY = "  emergency: {justification: 'checkout is down for every customer; hotfix'}\n"


def test_an_emergency_change_deploys_on_call_approval_and_tracks_its_retro_review(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(extra=EMERGENCY), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.approval("web-2-dan", "web-2"), context="dan")
    promo = lockgate.wait_phase("web-2", "Succeeded", timeout=30)
    status = promo["status"]
    assert status["emergency"] is True
    assert status["retroReviewDueAt"]
    assert not status.get("retroReviewedAt")

    lockgate.apply(manifests.approval("web-2-bob-retro", "web-2", extra="  purpose: RetroReview"), context="bob")
    promo = lockgate.wait_for(
        lambda: (p := lockgate.get("promo", "web-2"))["status"].get("retroReviewedBy") and p,
        message="the retro review to close",
    )
    assert promo["status"]["retroReviewedBy"] == "bob"
    assert promo["status"]["phase"] == "Succeeded"
    events = [r.event for r in lockgate.trail().records() if r.promotion.name == "web-2"]
    assert events[-1] == "retro-review"
    assert "deploying" in events
