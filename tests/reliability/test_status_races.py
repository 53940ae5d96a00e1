"""A spec change that lands while the operator writes a status for the spec before it.

The operator merges its status patch over whatever the object is now, so the answer carries the new
spec; the view keeps that answer, and the spec change's own watch event (older) is then ignored.
The reconciler must still start the new spec's cycle, with nothing else happening to the Promotion.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lockgate.devcluster import server, world
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
