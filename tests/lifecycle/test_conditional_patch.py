"""The image patch replaces exactly the image the ``deploying`` record names as previous, or nothing.

A change made outside Lockgate (break-glass) between the recorded decision and the patch is never
overwritten: the Promotion fails with ``TargetChangedWhileDeploying``. A conflict from an unrelated
write repeats the patch; the operator's own patch whose answer was lost counts as applied.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from lockgate.devcluster import server, world
from lockgate.handlers import testing
from lockgate.rollout import plan
from tests.lifecycle.test_restart import approve, block_once, crash_and_restart

DEPLOYMENTS = ("apps", "deployments")
HOTFIX = "registry.example/web:hotfix"


def operator_deploy_patches(lockgate: testing.Stack) -> list[server.RequestRecord]:
    return [
        r
        for r in list(lockgate.cluster.cluster.requests)
        if r.user == world.OPERATOR_USERNAME and r.verb == "patch" and r.resource == "deployments"
    ]


def is_operator_request(record: server.RequestRecord, resource: str, subresource: str = "") -> bool:
    return (
        record.user == world.OPERATOR_USERNAME
        and record.verb == "patch"
        and record.resource == resource
        and record.subresource == subresource
    )


def break_glass(lockgate: testing.Stack) -> None:
    """Someone in a break-glass group sets the image directly (stored as admission would let it)."""
    store = lockgate.cluster.cluster.store
    current: dict[str, Any] | None = store.get(DEPLOYMENTS, "production", "web")
    assert current is not None
    current["spec"]["template"]["spec"]["containers"][0]["image"] = HOTFIX
    store.update(DEPLOYMENTS, "production", "web", current)


def recorded_events(lockgate: testing.Stack) -> list[str]:
    return [r.event for r in lockgate.trail().records() if r.promotion.name == "web-2"]


def assert_failed_without_overwriting(lockgate: testing.Stack) -> None:
    promo = lockgate.wait_phase("web-2", "Failed", timeout=30)
    assert lockgate.image() == HOTFIX  # nothing deployed over it
    assert [r.code for r in operator_deploy_patches(lockgate) if 200 <= r.code < 300] == []
    ready = {c["type"]: c for c in promo["status"]["conditions"]}["Ready"]
    assert ready["reason"] == "TargetChangedWhileDeploying"
    assert f"changed from registry.example/web:1.0 to {HOTFIX}" in ready["message"]
    assert promo["status"]["previousImage"] == "registry.example/web:1.0"  # as recorded
    events = recorded_events(lockgate)
    assert events[-1] == "failed" and "deployed" not in events


def test_a_conflict_from_an_unrelated_write_repeats_the_patch_on_the_current_version(
    lockgate: testing.Stack,
) -> None:
    injected: list[str] = []

    def hook(record: server.RequestRecord) -> server.Fault | None:
        if is_operator_request(record, "deployments") and not injected:
            injected.append(record.name)
            return server.Fault(code=409, reason="Conflict", message="the object has been modified")
        return None

    lockgate.cluster.cluster.fault_hook = hook
    try:
        approve(lockgate)
        promo = lockgate.wait_phase("web-2", "Succeeded", timeout=30)
    finally:
        lockgate.cluster.cluster.fault_hook = None
    assert injected == ["web"]
    assert [r.code for r in operator_deploy_patches(lockgate)] == [409, 200]
    assert promo["status"]["previousImage"] == "registry.example/web:1.0"
    assert lockgate.image() == promo["spec"]["image"]


def test_our_own_patch_whose_answer_was_lost_counts_as_applied(lockgate: testing.Stack) -> None:
    store = lockgate.cluster.cluster.store
    done: list[bool] = []

    def hook(record: server.RequestRecord) -> server.Fault | None:
        if done or not is_operator_request(record, "deployments"):
            return None
        done.append(True)  # the API applies the patch, then its answer is lost (a 504; the client retries)
        promo = store.get(("lockgate.dev", "promotions"), "production", "web-2")
        current = store.get(DEPLOYMENTS, "production", "web")
        assert promo is not None and current is not None
        current["spec"]["template"]["spec"]["containers"][0]["image"] = promo["spec"]["image"]
        current["metadata"].setdefault("annotations", {}).update(
            {
                plan.ANNOTATION_PROMOTION: "production/web-2",
                plan.ANNOTATION_SPEC_HASH: promo["status"]["specHash"],
                plan.ANNOTATION_OPERATION: "deploy",
            }
        )
        store.update(DEPLOYMENTS, "production", "web", current)
        return server.Fault(code=504, reason="Timeout", message="request did not complete within the deadline")

    lockgate.cluster.cluster.fault_hook = hook
    try:
        approve(lockgate)
        promo = lockgate.wait_phase("web-2", "Succeeded", "Failed", timeout=30)
    finally:
        lockgate.cluster.cluster.fault_hook = None
    assert promo["status"]["phase"] == "Succeeded", promo["status"]
    assert recorded_events(lockgate) == ["approved", "deploying", "deployed", "verified"]


def test_a_break_glass_change_racing_the_patch_is_not_overwritten(lockgate: testing.Stack) -> None:
    done: list[bool] = []

    def hook(record: server.RequestRecord) -> server.Fault | None:
        if not done and is_operator_request(record, "deployments"):
            done.append(True)  # the break-glass change lands just before the operator's patch is served
            break_glass(lockgate)
        return None

    lockgate.cluster.cluster.fault_hook = hook
    try:
        approve(lockgate)
        assert_failed_without_overwriting(lockgate)
    finally:
        lockgate.cluster.cluster.fault_hook = None
    assert [r.code for r in operator_deploy_patches(lockgate)] == [409]  # conditional on the version it checked


def test_a_break_glass_change_while_the_operator_was_down_before_the_patch_is_not_overwritten(
    lockgate: testing.Stack,
) -> None:
    held = block_once(lockgate, lambda r: is_operator_request(r, "deployments"))
    approve(lockgate)
    assert held.wait(20)
    break_glass(lockgate)
    crash_and_restart(lockgate, held)
    assert_failed_without_overwriting(lockgate)


def test_a_retried_decision_keeps_the_recorded_previous_image(lockgate: testing.Stack) -> None:
    refused: list[str] = []

    def hook(record: server.RequestRecord) -> server.Fault | None:
        # The decision is recorded; its patch and Deploying status are both refused once (not retried by
        # the client), and a break-glass change lands before the operator tries again.
        first = record.resource not in refused and (
            is_operator_request(record, "deployments") or is_operator_request(record, "promotions", "status")
        )
        if first and "deploying" in recorded_events(lockgate):
            refused.append(record.resource)
            if len(refused) == 1:
                break_glass(lockgate)
            return server.Fault(code=403, reason="Forbidden", message="refused by the test")
        return None

    lockgate.cluster.cluster.fault_hook = hook
    try:
        approve(lockgate)
        assert_failed_without_overwriting(lockgate)
    finally:
        lockgate.cluster.cluster.fault_hook = None


def test_the_decision_to_deploy_is_logged_once_right_after_its_patch(
    lockgate: testing.Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lockgate.lifecycle")
    approve(lockgate)
    lockgate.wait_phase("web-2", "Succeeded", timeout=30)
    decided = [r for r in caplog.records if "StartDeploy" in r.getMessage()]
    assert [r.getMessage().split(": ", 1)[0] for r in decided] == ["promotion production/web-2"]
    (patch,) = [r for r in operator_deploy_patches(lockgate) if 200 <= r.code < 300]
    assert decided[0].created >= patch.time  # nothing of the operator's own goes ahead of the patch
