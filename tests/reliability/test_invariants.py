"""The invariants themselves: each one holds for a proper rollout and names the violation it is there to catch."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from lockgate.audit import record
from lockgate.devcluster import server, world
from tests.reliability import invariants

HASH = "sha256:" + "ab" * 32
T0 = 1_700_000_000.0
IMAGE = "registry.example/web:2.0"


def promotion(phase: str = "Succeeded") -> dict[str, Any]:
    return {
        "metadata": {"name": "web-2", "namespace": "production", "uid": "u-1"},
        "spec": {"image": IMAGE, "target": {"kind": "Deployment", "name": "web", "container": "web"}},
        "status": {"specHash": HASH, "phase": phase, "requestedBy": {"username": "alice"}},
    }


def audit(event: str, at: float, approvers: tuple[str, ...] = ("bob",)) -> record.AuditRecord:
    return record.build(
        event,
        promotion(),
        at=datetime.datetime.fromtimestamp(at, datetime.UTC),
        operator="op",
        approvers=[{"username": a, "decision": "Approve"} for a in approvers],
        previous_image="registry.example/web:1.0",
    )


def patch(at: float, op: str = "deploy") -> server.RequestRecord:
    return server.RequestRecord(
        time=at,
        method="PATCH",
        path="/apis/apps/v1/namespaces/production/deployments/web",
        verb="patch",
        user=world.OPERATOR_USERNAME,
        api_group="apps",
        resource="deployments",
        user_agent=f"lockgate/0.1.0 ({op} promotion=production/web-2 spec={HASH[:19]} approvers=bob)",
        code=200,
    )


def approval(user: str = "bob", spec_hash: str = HASH) -> dict[str, Any]:
    return {
        "metadata": {"name": f"web-2-{user}", "namespace": "production"},
        "spec": {"promotion": "web-2", "decision": "Approve", "approver": user, "specHash": spec_hash},
    }


def workload(image: str = IMAGE, operation: str = "deploy") -> dict[str, Any]:
    return {
        "metadata": {
            "annotations": {
                "lockgate.dev/promotion": "production/web-2",
                "lockgate.dev/spec-hash": HASH,
                "lockgate.dev/operation": operation,
            }
        },
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
    }


def proper() -> invariants.Snapshot:
    approved, deploying = audit("approved", T0), audit("deploying", T0 + 0.01)
    return invariants.Snapshot(
        requests=[patch(T0 + 0.1)],
        records=[approved, deploying],
        durable_at={approved.id: T0 + 0.005, deploying.id: T0 + 0.02},
        promotions=[promotion()],
        approvals=[approval()],
        workloads=[workload()],
        seed_image="registry.example/web:1.0",
        required=1,
    )


def test_a_proper_rollout_keeps_every_invariant() -> None:
    assert invariants.check(proper()) == []


def _without(snap: invariants.Snapshot, event: str) -> invariants.Snapshot:
    return dataclasses.replace(snap, records=[r for r in snap.records if r.event != event])


@pytest.mark.parametrize(
    ("broken", "found"),
    [
        (lambda s: _without(s, "approved"), "no approved record"),
        (lambda s: dataclasses.replace(s, approvals=[]), "without an Approval of exactly this spec"),
        (
            lambda s: dataclasses.replace(s, approvals=[approval(spec_hash="sha256:" + "cd" * 32)]),
            "without an Approval of exactly this spec",
        ),
        (lambda s: dataclasses.replace(s, required=2), "fewer than 2 approvers"),
        (
            lambda s: dataclasses.replace(
                s, records=[audit("approved", T0, ("alice",)), s.records[1]], approvals=[approval("alice")]
            ),
            "approved their own change",
        ),
        (lambda s: dataclasses.replace(s, requests=[*s.requests, patch(T0 + 2)]), "rolled out 2 times"),
        (lambda s: _without(s, "deploying"), "0 deploying records"),
        (lambda s: dataclasses.replace(s, requests=[patch(T0 + 0.015)]), "became durable"),
        (lambda s: dataclasses.replace(s, workloads=[workload("registry.example/web:666")]), "the audited image"),
        (lambda s: dataclasses.replace(s, promotions=[promotion("AwaitingApproval")]), "Promotion says"),
        (
            lambda s: dataclasses.replace(s, workloads=[workload("registry.example/web:666", "rollback")]),
            "the image before that cycle",
        ),
        (
            lambda s: dataclasses.replace(s, workloads=[{"spec": workload("registry.example/web:3")["spec"]}]),
            "no promotion annotation",
        ),
    ],
)
def test_each_violation_is_named(broken: Any, found: str) -> None:
    problems = invariants.check(broken(proper()))
    assert any(found in p for p in problems), problems


def test_a_rollback_patch_is_not_a_second_rollout() -> None:
    snap = proper()
    snap = dataclasses.replace(snap, requests=[*snap.requests, patch(T0 + 3, "rollback")])
    assert invariants.one_rollout_per_cycle(snap) == []
    assert invariants.workload_patches(snap.requests)[-1].operation == "rollback"
