"""A spec change that lands while the operator writes a status for the spec before it.

The operator merges its status patch over whatever the object is now, so the answer carries the new
spec; the view keeps that answer, and the spec change's own watch event (older) is then ignored.
The reconciler must still start the new spec's cycle, with nothing else happening to the Promotion.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lockgate.devcluster import server, world
from lockgate.gates import decision
from lockgate.lifecycle import reconciler, statuses
from tests.reliability import harness


@contextlib.contextmanager
def refusing_status_writes(gate: harness.Lockgate, name: str) -> Iterator[None]:
    """The API refuses the operator's status writes of Promotion ``name`` (400: not retried) meanwhile."""

    def hook(record: server.RequestRecord) -> Any:
        ours = record.user == world.OPERATOR_USERNAME and record.name == name
        if ours and record.method == "PATCH" and record.subresource == "status":
            return server.Fault(code=400, reason="BadRequest", message="held by the test")
        return None

    gate.cluster.fault_hook = hook
    try:
        yield
    finally:
        gate.cluster.fault_hook = None


@pytest.fixture(scope="module")
def gate() -> Iterator[harness.Lockgate]:
    with harness.lockgate(workload_delay=0.1) as running:
        yield running


def test_a_spec_change_under_a_status_write_starts_its_cycle(gate: harness.Lockgate) -> None:
    name, workload = gate.unique("raced"), gate.unique("raced-web")
    gate.add_workload(workload)  # its own target: no neighbour's or workload's event touches it later
    time.sleep(reconciler.SETTLE.total_seconds())  # past the operator's start-up look at waiting Promotions
    held = threading.Event()
    spec_change: dict[str, server.RequestRecord] = {}

    async def until_the_spec_changed() -> None:
        held.set()
        deadline = time.monotonic() + 10
        # The API sets a request's code once it has served it; it offers no event to wait on.
        while time.monotonic() < deadline and not (spec_change and spec_change["record"].code):  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    def hook(record: server.RequestRecord) -> Any:
        if record.name != name or record.method != "PATCH":
            return None
        if record.user == world.OPERATOR_USERNAME and record.subresource == "status" and not held.is_set():
            return until_the_spec_changed()  # the first status write is served right after the spec change
        if record.user == "admin" and not record.subresource:
            spec_change["record"] = record
        return None

    gate.cluster.fault_hook = hook
    try:
        gate.create_promotion(name, "registry.example/web:raced.1", target=workload)
        assert held.wait(10), "the operator wrote no status for the new Promotion"
        gate.change_image(name, "registry.example/web:raced.2")
    finally:
        gate.cluster.fault_hook = None

    def new_cycle_waits() -> bool:
        promo = gate.promotion(name)
        status = promo.get("status") or {}
        return status.get("specHash") == statuses.spec_hash(promo) and status.get("phase") == "AwaitingApproval"

    gate.wait_for(new_cycle_waits, timeout=5, message=f"{name} to start the cycle of its changed spec")


def test_a_promotion_approved_before_its_first_status_deploys(gate: harness.Lockgate) -> None:
    """Its approvals arrive before any status of it lands (as across a restart): the first pass decides."""
    name, workload = gate.unique("unstatused"), gate.unique("unstatused-web")
    gate.add_workload(workload)
    with refusing_status_writes(gate, name):
        gate.create_promotion(name, "registry.example/web:unstatused.1", target=workload)
        for approver in ("bob", "carol"):
            code, body = gate.decide(name, approver)
            assert code < 400, f"{approver}'s approval was refused: {code} {body}"
        time.sleep(1.0)  # the passes after the approvals decide with no status (their writes are refused)
        assert not (gate.promotion(name).get("status") or {}), "a status was written while held"
    promo = gate.wait_terminal(name, timeout=20)
    assert promo["status"]["phase"] == "Succeeded", promo["status"]
    assert gate.image(workload) == "registry.example/web:unstatused.1"


def test_a_deploy_applied_before_any_status_resumes_even_if_a_rejection_follows(gate: harness.Lockgate) -> None:
    """The patch landed but no status did; a rejection arriving then cannot undo the recorded decision."""
    name, workload = gate.unique("applied"), gate.unique("applied-web")
    image = "registry.example/web:applied.1"
    gate.add_workload(workload)
    with refusing_status_writes(gate, name):
        gate.create_promotion(name, image, target=workload)
        code, body = gate.decide(name, "bob")
        assert code < 400, f"bob's approval was refused: {code} {body}"
        gate.wait_for(lambda: gate.image(workload) == image, message=f"{workload} to run {image}")
        code, body = gate.decide(name, "carol", "Reject")
        assert code < 400, f"carol's rejection was refused: {code} {body}"
        time.sleep(1.0)  # passes that see the rejection, with no status of the deploy yet
    promo = gate.wait_terminal(name, timeout=20)
    assert promo["status"]["phase"] == "Succeeded", promo["status"]
    assert gate.image(workload) == image


def test_an_image_patch_the_api_refuses_fails_the_promotion_saying_so(gate: harness.Lockgate) -> None:
    """A 403 on the deploy patch (RBAC, or the guard after a racing spec edit) is not retried forever."""
    name, workload = gate.unique("refused"), gate.unique("refused-web")
    gate.add_workload(workload)

    def hook(record: server.RequestRecord) -> Any:
        if record.user == world.OPERATOR_USERNAME and record.method == "PATCH" and record.name == workload:
            return server.Fault(code=403, reason="Forbidden", message="denied by the test")
        return None

    gate.cluster.fault_hook = hook
    try:
        gate.create_promotion(name, "registry.example/web:refused.1", target=workload)
        code, body = gate.decide(name, "bob")
        assert code < 400, f"bob's approval was refused: {code} {body}"
        promo = gate.wait_terminal(name, timeout=20)
    finally:
        gate.cluster.fault_hook = None
    status = promo["status"]
    assert status["phase"] == "Failed", status
    assert "refused the image patch" in status["message"] and "denied by the test" in status["message"]
    assert gate.image(workload) == harness.SEED_IMAGE


@contextlib.contextmanager
def holding_the_deployed_record(gate: harness.Lockgate, name: str) -> Iterator[threading.Event]:
    """The ``deployed`` record of Promotion ``name`` waits (a slow audit write) until the block ends."""
    holding, release = threading.Event(), threading.Event()
    original = gate.sink.append_all

    def slow(recs: Any) -> Any:
        if any(r.event == "deployed" and r.promotion.name == name for r in recs) and not release.is_set():
            holding.set()
            release.wait(30)
        return original(recs)

    gate.sink.append_all = slow  # type: ignore[method-assign]
    try:
        yield holding
    finally:
        release.set()
        gate.sink.append_all = original  # type: ignore[method-assign]


def test_a_second_promotion_waits_while_the_first_records_its_applied_deploy(gate: harness.Lockgate) -> None:
    """The first's image is live but its status still waits (the deployed record is slow): the workload is
    busy, so a second approved Promotion does not patch over it, and each records its own image."""
    first, second, workload = gate.unique("race-a"), gate.unique("race-b"), gate.unique("race-web")
    gate.add_workload(workload)
    gate.create_promotion(first, "registry.example/web:race.2", target=workload)
    gate.wait_current_cycle(first)
    with holding_the_deployed_record(gate, first) as holding:
        assert gate.decide(first, "bob")[0] == 201
        assert holding.wait(15), "the first deploy never reached its deployed record"
        assert gate.image(workload) == "registry.example/web:race.2"
        gate.create_promotion(second, "registry.example/web:race.3", target=workload)
        gate.wait_current_cycle(second)
        assert gate.decide(second, "carol")[0] == 201
        time.sleep(2.0)  # the second's passes after its approval, while the first's record is held
        assert gate.image(workload) == "registry.example/web:race.2", "the second deployed over the first"
        assert gate.promotion(second)["status"]["phase"] in ("Approved", "AwaitingApproval")
    assert gate.wait_terminal(first, timeout=20)["status"]["phase"] == "Succeeded"
    assert gate.wait_terminal(second, timeout=20)["status"]["phase"] == "Succeeded"
    assert gate.image(workload) == "registry.example/web:race.3"
    verified = {r.promotion.name: r.image for r in gate.trail.records() if r.event == "verified"}
    assert verified[first] == "registry.example/web:race.2" and verified[second] == "registry.example/web:race.3"
    problems = harness.violations(gate)
    assert not problems, "\n".join(problems)


def test_the_deployed_record_says_the_image_was_set(gate: harness.Lockgate) -> None:
    name, workload = gate.unique("reason"), gate.unique("reason-web")
    gate.add_workload(workload)
    gate.create_promotion(name, "registry.example/web:reason.1", target=workload)
    gate.wait_current_cycle(name)
    assert gate.decide(name, "bob")[0] == 201
    assert gate.wait_terminal(name, timeout=20)["status"]["phase"] == "Succeeded"
    deployed = next(r for r in gate.trail.records() if r.promotion.name == name and r.event == "deployed")
    assert deployed.extra == {"reason": "Deployed", "message": "image registry.example/web:reason.1 set"}


def killed_after_the_patch(gate: harness.Lockgate, name: str, approver: str = "bob") -> None:
    """``approver`` approves ``name``; the operator is killed after the patch, before any status of the
    deploy (and any Approval verdict) is written, then started again."""

    def no_approval_verdicts(record: server.RequestRecord) -> Any:  # the killed operator's are lost too
        if record.user == world.OPERATOR_USERNAME and record.resource == "approvals" and record.subresource:
            return server.Fault(code=400, reason="BadRequest", message="held by the test")
        return None

    gate.cluster.fault_hook = no_approval_verdicts
    with holding_the_deployed_record(gate, name) as holding:
        assert gate.decide(name, approver)[0] == 201
        assert holding.wait(15), "the deploy never reached its deployed record"
        assert gate.promotion(name)["status"]["phase"] in ("AwaitingApproval", "Approved")
        # Killed while the record is being written (its thread finishes the write once released: the
        # loop that would publish Verifying is gone).
        killing = threading.Thread(target=gate.kill_operator)
        killing.start()
        time.sleep(0.5)  # its tasks are cancelled before the write is let through
    killing.join(15)
    assert not killing.is_alive(), "the operator could not be killed"
    gate.cluster.fault_hook = None
    gate.start_operator()


def test_a_deploy_resumed_after_a_restart_keeps_the_decisions_approvers(gate: harness.Lockgate) -> None:
    """Killed after the patch, before any status of the deploy: bob's approval, which decided it, was
    never in a status. The resumed rollout takes the approvers from the deploying record: the status,
    the later records and bob's own Approval say he counted."""
    name, workload = gate.unique("resumed"), gate.unique("resumed-web")
    gate.add_workload(workload)
    gate.create_promotion(name, "registry.example/web:resumed.1", target=workload)
    gate.wait_current_cycle(name)
    killed_after_the_patch(gate, name)
    promo = gate.wait_terminal(name, timeout=30)
    assert promo["status"]["phase"] == "Succeeded", promo["status"]
    assert [a.get("approver") for a in promo["status"]["approvals"] if a.get("counted")] == ["bob"]
    verified = next(r for r in gate.trail.records() if r.promotion.name == name and r.event == "verified")
    assert [a.username for a in verified.approvers] == ["bob"]

    def bobs_verdict() -> Any:
        (bob,) = [a for a in gate.approvals() if a["spec"]["promotion"] == name]
        return (bob.get("status") or {}).get("reason") and bob["status"]

    verdict = gate.wait_for(bobs_verdict, message="bob's Approval to get its verdict")
    assert verdict["counted"] is True, verdict


#: A second policy for the production namespace, with an emergency path (on-call leads, one approval).
EMERGENCY_POLICY: dict[str, Any] = {
    "apiVersion": "lockgate.dev/v1alpha1",
    "kind": "GatePolicy",
    "metadata": {"name": "reliability-emergency"},
    "spec": {
        **harness.GATE_POLICY["spec"],
        "emergency": {"groups": ["engineering-leads"], "required": 1, "retroReviewWithin": "2h"},
    },
}


def test_an_emergency_deploy_resumed_after_a_restart_keeps_its_retro_review(gate: harness.Lockgate) -> None:
    """An emergency change killed after its patch, before any status: the resumed rollout is still an
    emergency change whose retro review is due when the decision said (the deploying record has it),
    so the retro review is tracked after the restart as without one."""
    gate.ok("POST", f"{harness.API}/gatepolicies", EMERGENCY_POLICY)
    try:
        name, workload = gate.unique("emergency"), gate.unique("emergency-web")
        gate.add_workload(workload)
        body = harness.promotion_body(name, "registry.example/web:hotfix.1", target=workload)
        body["spec"]["emergency"] = {"justification": "checkout is down for every customer; hotfix"}
        assert gate.retrying("POST", harness.PROMOTIONS, body, user="alice")[0] == 201

        def on_the_emergency_path() -> bool:
            gates = (gate.promotion(name).get("status") or {}).get("gates") or []
            return any(g.get("reason") == decision.EMERGENCY_PATH for g in gates)

        gate.wait_for(on_the_emergency_path, message="the emergency path to apply")
        killed_after_the_patch(gate, name)
        promo = gate.wait_terminal(name, timeout=30)
    finally:
        gate.ok("DELETE", f"{harness.API}/gatepolicies/reliability-emergency")
    status = promo["status"]
    assert status["phase"] == "Succeeded", status
    deploying = next(r for r in gate.trail.records() if r.promotion.name == name and r.event == "deploying")
    due = deploying.extra.get("retroReviewDueAt")
    assert due and statuses.parse_time(due) == deploying.at + datetime.timedelta(hours=2), deploying.extra
    assert status["emergency"] is True, status
    assert status["retroReviewDueAt"] == due
    assert statuses.parse_time(status["approvedAt"]) == deploying.at  # the decision's time, not the restart's
    assert not status.get("retroReviewedAt")


def test_an_approval_whose_verdict_write_failed_still_shows_it_counted(gate: harness.Lockgate) -> None:
    """The API refuses the deciding Approval's verdict once (written after the patch): the rollout goes
    on, and once it has ended the Approval says it counted, as the Promotion's status and the audit
    trail have it, not that it came too late."""
    name, workload = gate.unique("verdict"), gate.unique("verdict-web")
    gate.add_workload(workload)
    gate.create_promotion(name, "registry.example/web:verdict.1", target=workload)
    gate.wait_current_cycle(name)
    refused: list[str] = []

    def refuse_once(record: server.RequestRecord) -> Any:
        ours = record.user == world.OPERATOR_USERNAME and record.resource == "approvals"
        if ours and record.subresource == "status" and (record.name or "").startswith(name) and not refused:
            refused.append(str(record.name))
            return server.Fault(code=400, reason="BadRequest", message="held by the test")
        return None

    gate.cluster.fault_hook = refuse_once
    try:
        assert gate.decide(name, "bob")[0] == 201
        promo = gate.wait_terminal(name, timeout=30)
    finally:
        gate.cluster.fault_hook = None
    assert promo["status"]["phase"] == "Succeeded", promo["status"]
    assert refused, "the operator wrote no verdict for bob's Approval"

    def bobs_verdict() -> Any:
        (bob,) = [a for a in gate.approvals() if a["spec"]["promotion"] == name]
        return (bob.get("status") or {}).get("reason") and bob["status"]

    verdict = gate.wait_for(bobs_verdict, message="bob's Approval to get its verdict")
    assert verdict["counted"] is True and verdict["reason"] == "Counted", verdict
