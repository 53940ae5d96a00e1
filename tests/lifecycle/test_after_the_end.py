"""What happens after a cycle ends, or when its Promotion disappears mid-rollout."""

from __future__ import annotations

import pathlib
import time

from lockgate.devcluster import server, world
from lockgate.handlers import testing
from tests.lifecycle import manifests

REPO = pathlib.Path(__file__).resolve().parents[2]


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


def test_a_promotion_deleted_while_its_watch_was_down_still_leaves_a_failed_record() -> None:
    """The deletion is found by the listing after the watch's version expired (410), not by an event."""
    mode = {"now": "cut"}
    refused: list[str] = []

    def promotions_watch(record: server.RequestRecord) -> server.Fault | None:
        if record.user != world.OPERATOR_USERNAME or record.resource != "promotions" or record.verb != "watch":
            return None
        if mode["now"] == "cut":  # every stream ends after 1.5 s, without a clean end: it resumes at once
            return server.Fault(drop_watch_after=1.5)
        refused.append(mode["now"])
        if mode["now"] == "down":
            return server.Fault(code=503, reason="ServiceUnavailable", message="injected")
        return server.Fault(code=410, reason="Expired", message="too old resource version")

    with testing.stack(operator=False, workload_delay=30.0) as stack:  # not verified before the relisting
        stack.cluster.cluster.fault_hook = promotions_watch
        stack.kubectl("apply", "-f", str(REPO / "examples" / "gatepolicy-production.yaml"))
        stack.start_operator()
        approve(stack)
        stack.wait_phase("web-2", "Verifying", timeout=20)

        mode["now"] = "down"
        stack.wait_for(lambda: refused, message="a refused watch of Promotions", timeout=10)
        stack.kubectl("delete", "promo", "web-2", "-n", "production")
        time.sleep(1.0)
        assert [r.event for r in stack.trail().records() if r.promotion.name == "web-2"][-1] != "failed"

        mode["now"] = "expired"
        failed = stack.wait_for(
            lambda: [r for r in stack.trail().records() if r.promotion.name == "web-2" and r.event == "failed"],
            message="a failed record",
            timeout=30,
        )
        assert "expired" in refused
        assert len(failed) == 1
        assert failed[0].image.endswith(manifests.DIGEST)


def test_a_promotion_deleted_while_its_deploy_is_under_way_does_not_leave_the_trail_at_deploying(
    lockgate: testing.Stack,
) -> None:
    """Deleted after its decision was recorded (approved, deploying), before any status said Deploying: the
    image guard refuses the patch of a Promotion that is gone, and the trail says the deploy stopped."""
    deleted: list[str] = []

    def delete_at_the_patch(request: server.RequestRecord) -> server.Fault | None:
        by_operator = request.user == world.OPERATOR_USERNAME
        if not (by_operator and request.resource == "deployments" and request.verb == "patch") or deleted:
            return None
        lockgate.cluster.cluster.store.delete(("lockgate.dev", "promotions"), "production", "web-2")
        deleted.append(request.name)
        return server.Fault(delay=1.0)  # the guard's view has the deletion by the time it judges

    lockgate.cluster.cluster.fault_hook = delete_at_the_patch
    try:
        approve(lockgate)
        failed = lockgate.wait_for(
            lambda: [r for r in lockgate.trail().records() if r.promotion.name == "web-2" and r.event == "failed"],
            message="a failed record",
        )
    finally:
        lockgate.cluster.cluster.fault_hook = None
    assert deleted == ["web"]
    time.sleep(2.5)  # the deploy's own pass has ended (it retries after 2 s, finds the Promotion gone)
    events = [r.event for r in lockgate.trail().records() if r.promotion.name == "web-2"]
    assert events == ["approved", "deploying", "failed"]
    assert failed[0].extra["reason"] == "PromotionDeleted"
    assert "the image change was not made" in (failed[0].verification or {})["message"]
    assert lockgate.image() == "registry.example/web:1.0"
    # the decision's own facts, from its deploying record (the waiting status holds neither)
    assert failed[0].previous_image == "registry.example/web:1.0"
    assert sorted(a.username for a in failed[0].approvers) == ["bob", "carol"]


def test_a_promotion_deleted_after_its_patch_landed_but_before_any_status_gets_failed_after_deployed(
    lockgate: testing.Stack,
) -> None:
    """Deleted once its image change is in place, before its first status (Verifying): the trail records the
    deploy and then that it was not verified."""
    seen: list[str] = []

    def delete_before_the_first_status(request: server.RequestRecord) -> server.Fault | None:
        if request.user != world.OPERATOR_USERNAME or request.verb != "patch":
            return None
        if request.resource == "deployments":
            seen.append("patch")
        elif request.resource == "promotions" and request.subresource == "status" and seen == ["patch"]:
            lockgate.cluster.cluster.store.delete(("lockgate.dev", "promotions"), "production", "web-2")
            seen.append("deleted")
        return None

    lockgate.cluster.cluster.fault_hook = delete_before_the_first_status
    try:
        approve(lockgate)
        lockgate.wait_for(
            lambda: [r for r in lockgate.trail().records() if r.promotion.name == "web-2" and r.event == "failed"],
            message="a failed record",
        )
    finally:
        lockgate.cluster.cluster.fault_hook = None
    assert seen == ["patch", "deleted"]
    time.sleep(2.5)  # the deploy's own pass has ended
    records = [r for r in lockgate.trail().records() if r.promotion.name == "web-2"]
    assert [r.event for r in records] == ["approved", "deploying", "deployed", "failed"]
    assert "the image change is in place" in (records[-1].verification or {})["message"]
    assert lockgate.image().endswith(manifests.DIGEST)
    assert records[-1].previous_image == "registry.example/web:1.0"
