"""Killing the operator at each step of a rollout and starting it again: the same outcome, one rollout."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable

from lockgate.devcluster import server
from lockgate.devcluster import world as dev_world
from lockgate.handlers import testing
from tests.lifecycle import manifests

WEB_2 = f"registry.example/web:2.0@{manifests.DIGEST}"


def operator_image_patches(stack: testing.Stack) -> list[server.RequestRecord]:
    return [
        r
        for r in stack.cluster.cluster.requests
        if r.user == dev_world.OPERATOR_USERNAME
        and r.method == "PATCH"
        and r.resource == "deployments"
        and not r.subresource
        and r.code == 200
    ]


def block_once(stack: testing.Stack, matches: Callable[[server.RequestRecord], bool]) -> threading.Event:
    """Hold the first matching request for a while, then fail it with 503; report when it is held."""
    held = threading.Event()

    async def hook(record: server.RequestRecord) -> server.Fault | None:
        if held.is_set() or not matches(record):
            return None
        held.set()
        await asyncio.sleep(1.0)
        return server.Fault(code=503, reason="ServiceUnavailable", message="held by the test")

    stack.cluster.cluster.fault_hook = hook
    return held


def approve(stack: testing.Stack) -> None:
    stack.apply(manifests.promotion(), context="alice")
    stack.wait_phase("web-2", "AwaitingApproval")
    stack.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    stack.apply(manifests.approval("web-2-carol", "web-2"), context="carol")


def hold_the_deploying_status(stack: testing.Stack) -> threading.Event:
    """Hold (then fail) the first status write after the deploy's records: the one after the image patch."""

    def deploying_status(r: server.RequestRecord) -> bool:
        return (
            r.user == dev_world.OPERATOR_USERNAME
            and r.method == "PATCH"
            and r.subresource == "status"
            and r.resource == "promotions"
            and "deploying" in [x.event for x in stack.trail().records() if x.promotion.name == "web-2"]
        )

    return block_once(stack, deploying_status)


def crash_and_restart(stack: testing.Stack, held: threading.Event) -> None:
    assert held.wait(20), "the operator never reached the step"
    assert stack.operator is not None
    stack.operator.kill()
    stack.operator = None
    stack.cluster.cluster.fault_hook = None
    stack.start_operator()


def test_killed_before_the_patch_deploys_once_after_restart(lockgate: testing.Stack) -> None:
    held = block_once(
        lockgate,
        lambda r: r.user == dev_world.OPERATOR_USERNAME and r.method == "PATCH" and r.resource == "deployments",
    )
    approve(lockgate)
    crash_and_restart(lockgate, held)
    promo = lockgate.wait_phase("web-2", "Succeeded", timeout=30)
    assert lockgate.image() == WEB_2
    assert len(operator_image_patches(lockgate)) == 1
    assert promo["status"]["previousImage"] == "registry.example/web:1.0"


def test_killed_after_the_patch_does_not_patch_again(lockgate: testing.Stack) -> None:
    def status_write_after_patch(r: server.RequestRecord) -> bool:
        return (
            r.user == dev_world.OPERATOR_USERNAME
            and r.method == "PATCH"
            and r.subresource == "status"
            and r.resource == "promotions"
            and bool(operator_image_patches(lockgate))
        )

    held = block_once(lockgate, status_write_after_patch)
    approve(lockgate)
    crash_and_restart(lockgate, held)
    lockgate.wait_phase("web-2", "Succeeded", timeout=30)
    assert lockgate.image() == WEB_2
    assert len(operator_image_patches(lockgate)) == 1


def test_killed_after_the_patch_before_the_deploying_status_resumes_from_the_records(lockgate: testing.Stack) -> None:
    held = hold_the_deploying_status(lockgate)
    approve(lockgate)
    assert held.wait(20)
    lockgate.wait_for(lambda: operator_image_patches(lockgate), message="the image patch landed")
    assert lockgate.phase("web-2") in ("AwaitingApproval", "Approved")  # the status never said Deploying
    assert lockgate.operator is not None
    lockgate.operator.kill()
    # While it is down the gate would close (no policy selects the namespace any more): the deploy
    # that happened is still followed through, from its records, not re-judged.
    lockgate.kubectl("label", "namespace", "production", "lockgate.dev/environment-")
    lockgate.operator = None
    lockgate.cluster.cluster.fault_hook = None
    lockgate.start_operator()
    promo = lockgate.wait_phase("web-2", "Succeeded", timeout=30)
    assert lockgate.image() == WEB_2
    assert len(operator_image_patches(lockgate)) == 1
    assert promo["status"]["previousImage"] == "registry.example/web:1.0"  # from the deploying record
    events = [x.event for x in lockgate.trail().records() if x.promotion.name == "web-2"]
    assert events == ["approved", "deploying", "deployed", "verified"]


def test_a_spec_edit_after_an_unpublished_deploy_follows_that_deploy_through_first(lockgate: testing.Stack) -> None:
    held = hold_the_deploying_status(lockgate)
    approve(lockgate)
    assert held.wait(20)
    lockgate.wait_for(lambda: operator_image_patches(lockgate), message="the image patch landed")
    lockgate.kubectl(
        "patch",
        "promotion",
        "web-2",
        "-n",
        "production",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"image": "registry.example/web:3.0"}}),
        context="admin",
    )
    crash_and_restart(lockgate, held)
    lockgate.wait_for(
        lambda: [x.event for x in lockgate.trail().records() if x.promotion.name == "web-2"][-1:] == ["verified"],
        timeout=30,
        message="the first cycle verified",
    )
    promo = lockgate.wait_phase("web-2", "AwaitingApproval", timeout=30)  # then the edited spec's cycle
    assert promo["spec"]["image"] == "registry.example/web:3.0"
    assert lockgate.image() == WEB_2 and len(operator_image_patches(lockgate)) == 1
    first = [x for x in lockgate.trail().records() if x.promotion.name == "web-2"]
    assert [x.event for x in first] == ["approved", "deploying", "deployed", "verified"]
    assert {x.image for x in first} == {WEB_2} and first[1].previous_image == "registry.example/web:1.0"


def test_killed_during_verification_finishes_the_same_way(lockgate: testing.Stack) -> None:
    lockgate.cluster.cluster.workload_delay = 2.0
    approve(lockgate)
    lockgate.wait_phase("web-2", "Verifying", timeout=20)
    assert lockgate.operator is not None
    lockgate.operator.kill()
    lockgate.start_operator()
    lockgate.wait_phase("web-2", "Succeeded", timeout=30)
    assert len(operator_image_patches(lockgate)) == 1


def test_killed_while_rolling_back_still_restores_the_previous_image(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(image="registry.example/web:2.0-broken"), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.cluster.cluster.workload_delay = 1.0
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    lockgate.wait_phase("web-2", "RollingBack", timeout=20)
    assert lockgate.operator is not None
    lockgate.operator.kill()
    lockgate.start_operator()
    lockgate.wait_phase("web-2", "RolledBack", timeout=30)
    assert lockgate.image() == "registry.example/web:1.0"
    patches = operator_image_patches(lockgate)
    assert len(patches) == 2  # the deploy and the rollback, each exactly once
