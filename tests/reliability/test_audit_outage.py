"""Audit sink outage: nothing deploys while decisions cannot be recorded; afterwards, one record per decision."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lockgate.devcluster import world
from tests.reliability import harness, invariants


@pytest.fixture
def gate() -> Iterator[harness.Lockgate]:
    with harness.lockgate(workload_delay=0.1) as running:
        running.add_workload("other")
        yield running


def audit_condition(promo: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in promo.get("status", {}).get("conditions") or [] if c["type"] == "AuditRecorded"), None)


def events_of(gate: harness.Lockgate, name: str) -> collections.Counter[str]:
    return collections.Counter(r.event for r in gate.trail.records() if r.promotion.name == name)


def test_an_audit_outage_holds_decisions_and_recovery_records_each_once(gate: harness.Lockgate) -> None:
    gate.create_promotion("outage-ok", "registry.example/web:2.0")
    gate.create_promotion("outage-no", "registry.example/other:2.0", target="other")
    gate.wait_current_cycle("outage-ok")
    gate.sink.down = True
    assert gate.decide("outage-ok", "bob")[0] == 201
    assert gate.decide("outage-no", "carol", "Reject")[0] == 201

    def held() -> dict[str, dict[str, Any]] | None:
        promos = {name: gate.promotion(name) for name in ("outage-ok", "outage-no")}
        conditions = {name: audit_condition(p) for name, p in promos.items()}
        return promos if all(c and c["status"] == "False" for c in conditions.values()) else None

    promos = gate.wait_for(held, timeout=15, message="AuditRecorded=False on both Promotions")
    for promo in promos.values():
        condition = audit_condition(promo)
        assert condition is not None and "injected outage" in condition["message"], condition
        assert "nothing deploys" in promo["status"]["message"]
        assert promo["status"]["phase"] not in ("Deploying", "Verifying", "Succeeded", "Rejected")
    time.sleep(3.5)  # at least one retry (every 3 s) while the sink is still down
    assert gate.sink.refused >= 3, gate.sink.refused
    assert gate.image() == world.WEB_IMAGE
    assert invariants.deploys(gate.cluster.requests) == []
    assert events_of(gate, "outage-ok") == events_of(gate, "outage-no") == collections.Counter()

    gate.sink.down = False
    ok = gate.wait_terminal("outage-ok", timeout=20)
    no = gate.wait_terminal("outage-no", timeout=20)
    assert ok["status"]["phase"] == "Succeeded" and gate.image() == "registry.example/web:2.0"
    assert no["status"]["phase"] == "Rejected"
    for promo in (ok, no):
        condition = audit_condition(promo)
        assert condition is not None and condition["status"] == "True", condition
    assert events_of(gate, "outage-ok") == collections.Counter(
        {"approved": 1, "deploying": 1, "deployed": 1, "verified": 1}
    )
    assert events_of(gate, "outage-no") == collections.Counter({"rejected": 1})
    problems = harness.violations(gate)
    assert not problems, "\n".join(problems)


def test_an_outage_after_the_deploy_holds_the_outcome_until_it_is_recorded(gate: harness.Lockgate) -> None:
    gate.create_promotion("late-outage", "registry.example/web:3.0")
    gate.wait_current_cycle("late-outage")
    gate.sink.refuse_events = {"verified"}
    assert gate.decide("late-outage", "bob")[0] == 201
    gate.wait_for(lambda: gate.sink.refused, timeout=15, message="the verified record to be refused")
    time.sleep(1)
    promo = gate.promotion("late-outage")
    condition = audit_condition(promo)
    assert promo["status"]["phase"] != "Succeeded", "Succeeded without a durable verified record"
    assert condition is not None and condition["status"] == "False", condition
    gate.sink.refuse_events = set()
    assert gate.wait_terminal("late-outage")["status"]["phase"] == "Succeeded"
    assert events_of(gate, "late-outage")["verified"] == 1


def test_an_outage_right_after_the_patch_shows_deploying_until_the_deploy_is_recorded(gate: harness.Lockgate) -> None:
    """The image is live but its ``deployed`` record is not durable: the status says Deploying (not still
    waiting, not Verifying) with AuditRecorded=False, and moves on once the record is written."""
    gate.create_promotion("patch-outage", "registry.example/web:4.0")
    gate.wait_current_cycle("patch-outage")
    gate.sink.refuse_events = {"deployed"}
    gate.sink.refuse_reads = True  # so nothing can be resumed from the records meanwhile
    assert gate.decide("patch-outage", "bob")[0] == 201
    gate.wait_for(lambda: gate.sink.refused, timeout=15, message="the deployed record to be refused")
    gate.wait_for(
        lambda: gate.promotion("patch-outage")["status"].get("phase") == "Deploying",
        timeout=15,
        message="Deploying to be published",
    )
    promo = gate.promotion("patch-outage")
    condition = audit_condition(promo)
    assert condition is not None and condition["status"] == "False", condition
    assert "the change is applied" in promo["status"]["message"], promo["status"]["message"]
    gate.sink.refuse_events, gate.sink.refuse_reads = set(), False
    assert gate.wait_terminal("patch-outage")["status"]["phase"] == "Succeeded"
    assert events_of(gate, "patch-outage") == collections.Counter(
        {"approved": 1, "deploying": 1, "deployed": 1, "verified": 1}
    )
    problems = harness.violations(gate)
    assert not problems, "\n".join(problems)
