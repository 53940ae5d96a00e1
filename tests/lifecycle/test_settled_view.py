"""The view keeps a settled Promotion (its cycle ended for its current spec) without the per-cycle lists.

What its readers ask must not change: the metrics gauges, the withdrawal's audit record, the spec hash
an Approval binds to, the target index. A new cycle (a spec edit) brings the whole object back.
"""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

import pytest

from lockgate import metrics as lockgate_metrics
from lockgate.admission import stamping
from lockgate.audit import record
from lockgate.handlers import testing
from lockgate.lifecycle import statuses, view
from tests.lifecycle import manifests

NOW = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.UTC)


def succeeded(**status: Any) -> dict[str, Any]:
    """A Succeeded Promotion as the operator leaves it (abridged), with the spec hash of its spec."""
    obj: dict[str, Any] = {
        "apiVersion": "lockgate.dev/v1alpha1",
        "kind": "Promotion",
        "metadata": {
            "name": "web-2",
            "namespace": "production",
            "uid": "0b7c5f0e-0000-4000-8000-000000000001",
            "resourceVersion": "120",
            "generation": 1,
            "creationTimestamp": "2026-01-05T11:00:00Z",
            "labels": {"team": "web"},
            "annotations": {
                stamping.REQUESTED_BY: '{"username":"alice"}',
                "argocd.argoproj.io/tracking-id": "web:lockgate.dev/Promotion:production/web-2",
            },
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        },
        "spec": {
            "target": {"kind": "Deployment", "name": "web", "container": "web"},
            "image": f"registry.example/web:2.0@{manifests.DIGEST}",
            "change": {"description": "Release web-2", "ticket": "CHG-1", "author": "dave"},
            "evidence": {"securityScan": {"status": "Passed", "critical": 0, "high": 1}},
            "verification": {"timeout": "20s", "rollbackOnFailure": True},
        },
    }
    obj["status"] = {
        "phase": "Succeeded",
        "specHash": statuses.spec_hash(obj),
        "observedGeneration": 1,
        "requiredApprovals": 2,
        "countedApprovals": 2,
        "approvalsSummary": "2/2",
        "approvals": [
            {"approval": "web-2-bob", "approver": "bob", "counted": True, "reason": "Counted", "rule": "p/tech"},
            {"approval": "web-2-carol", "approver": "carol", "counted": True, "reason": "Counted", "rule": "p/sec"},
        ],
        "gates": [{"name": "p/approvals", "kind": "Approvals", "passed": True, "reason": "ApprovalsSatisfied"}],
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Verified", "lastTransitionTime": "2026-01-05T11:05:00Z"},
            {
                "type": "PolicyPassed",
                "status": "True",
                "reason": "PoliciesPassed",
                "lastTransitionTime": "2026-01-05T11:02:00Z",
            },
        ],
        "requestedBy": {"username": "alice", "groups": ["engineers"]},
        "readyForApprovalAt": "2026-01-05T11:01:00Z",
        "approvedAt": "2026-01-05T11:03:00Z",
        "previousImage": "registry.example/web:1.0",
        "rollout": {"kind": "Deployment", "name": "web", "image": f"registry.example/web:2.0@{manifests.DIGEST}"},
        "deployedAt": "2026-01-05T11:04:00Z",
        "completedAt": "2026-01-05T11:05:00Z",
        "auditRecorded": True,
        **status,
    }
    return obj


def test_a_settled_promotion_is_kept_without_the_per_cycle_lists() -> None:
    full = succeeded()
    cluster = view.ClusterView()
    assert cluster.put_promotion(copy.deepcopy(full))
    kept = cluster.promotions[("production", "web-2")]
    assert not {"approvals", "gates", "conditions"} & set(kept["status"])
    assert kept["spec"] == full["spec"]  # whole: the spec hash and the audit records read it
    assert kept["status"] == {k: v for k, v in full["status"].items() if k not in ("approvals", "gates", "conditions")}
    assert kept["metadata"]["annotations"] == {stamping.REQUESTED_BY: '{"username":"alice"}'}
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["labels"] == {"team": "web"}
    assert statuses.spec_hash(kept) == full["status"]["specHash"]  # its next pass is Done, not a new cycle
    assert cluster.promotions_targeting(("Deployment", "production", "web")) == [("production", "web-2")]
    assert not cluster.put_promotion(copy.deepcopy(full))  # the same version again is ignored


def test_what_readers_ask_of_a_settled_promotion_does_not_change() -> None:
    full = succeeded(emergency=True, retroReviewDueAt="2026-01-05T11:30:00Z", retroReviewedAt="2026-01-05T11:20:00Z")
    cluster = view.ClusterView()
    cluster.put_promotion(copy.deepcopy(full))
    kept = cluster.promotions[("production", "web-2")]
    assert "conditions" not in kept["status"]  # an emergency whose retro review is closed is settled too

    def withdrawal(promotion: dict[str, Any]) -> record.AuditRecord:
        return record.build(
            "approval-withdrawn",
            promotion,
            at=NOW,
            operator="lockgate",
            key="approval-uid",
            extra={"approval": "web-2-bob", "approver": "bob", "decision": "Approve", "withdrawnBy": "bob"},
        )

    assert withdrawal(kept) == withdrawal(full)
    spec = {"promotion": "web-2", "decision": "Approve"}
    assert stamping.bind_spec_hash("production", spec, kept) == stamping.bind_spec_hash("production", spec, full)

    def gauges(source: lockgate_metrics.LiveSource) -> list[bytes]:
        live = (b"lockgate_promotions_awaiting", b"lockgate_oldest_awaiting", b"lockgate_retro_reviews_overdue")
        return [ln for ln in lockgate_metrics.Metrics(source).exposition().splitlines() if ln.startswith(live)]

    class Whole:
        def unsettled_promotions(self) -> list[tuple[tuple[str, str], dict[str, Any]]]:
            return [(("production", "web-2"), full)]

        def paused_in_gated_namespaces(self) -> dict[str, int]:
            return {}

        def unguarded_namespaces(self) -> dict[str, list[str]]:
            return {}

        def unverified_guard_conditions(self) -> list[str]:
            return []

    assert gauges(cluster) == gauges(Whole())


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"phase": "AwaitingApproval"}, id="waiting"),
        pytest.param({"phase": "Verifying"}, id="rolling-out"),
        pytest.param({"specHash": "sha256:an-earlier-spec"}, id="spec-edited-after-the-end"),
        pytest.param(
            {"emergency": True, "retroReviewDueAt": "2026-01-06T11:00:00Z"}, id="emergency-retro-review-open"
        ),
    ],
)
def test_a_promotion_that_is_not_settled_is_kept_whole(change: dict[str, Any]) -> None:
    full = succeeded(**change)
    cluster = view.ClusterView()
    cluster.put_promotion(copy.deepcopy(full))
    kept = cluster.promotions[("production", "web-2")]
    assert kept["status"] == full["status"]
    assert kept["metadata"]["annotations"] == full["metadata"]["annotations"]


def test_a_spec_edit_brings_the_whole_promotion_back() -> None:
    cluster = view.ClusterView()
    cluster.put_promotion(succeeded())
    edited = succeeded()
    edited["metadata"].update(resourceVersion="130", generation=2)
    edited["spec"]["image"] = "registry.example/web:3.0"  # status still describes the ended cycle
    assert cluster.put_promotion(copy.deepcopy(edited))
    kept = cluster.promotions[("production", "web-2")]
    assert kept["status"]["conditions"] == edited["status"]["conditions"]
    new = statuses.new_cycle(kept, NOW)  # what the next pass writes: built from the whole status
    assert new == statuses.new_cycle(edited, NOW)
    assert {c["type"] for c in new["conditions"]} >= {"Ready", "PolicyPassed"}


def test_a_settled_promotion_is_kept_packed_and_reads_back_as_its_settled_form() -> None:
    cluster = view.ClusterView()
    obj = succeeded()
    cluster.put_promotion(copy.deepcopy(obj))
    key = ("production", "web-2")
    assert key in cluster.promotions and key not in cluster.promotions.live
    assert cluster.promotions[key] == view.settled_form(obj)
    assert list(cluster.unsettled_promotions()) == []
    assert cluster.promotions.packed_bytes() < len(json.dumps(view.settled_form(obj))) / 3
    obj["spec"]["image"] = "registry.example/web:3"  # a new cycle: kept whole again
    obj["metadata"]["generation"] += 1
    obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
    cluster.put_promotion(obj)
    assert cluster.promotions.live[key]["spec"]["image"] == "registry.example/web:3"
    assert cluster.promotions.packed_bytes() == 0 and len(cluster.promotions) == 1


def test_repeated_strings_are_shared_between_objects_in_a_cycle() -> None:
    cluster = view.ClusterView()
    for namespace in ("production", "staging"):
        obj = succeeded()
        obj["metadata"]["namespace"] = namespace
        obj["status"]["phase"] = "Verifying"
        cluster.put_promotion(obj)
    one, other = cluster.promotions[("production", "web-2")], cluster.promotions[("staging", "web-2")]
    assert one["status"]["phase"] is other["status"]["phase"]
    assert one["spec"]["image"] is other["spec"]["image"]
    assert next(iter(one["spec"])) is next(iter(other["spec"]))


def test_after_a_spec_edit_the_new_cycle_keeps_the_conditions_that_did_not_change(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    done = lockgate.wait_phase("web-2", "Succeeded", timeout=30)
    lockgate.apply(manifests.promotion(image="registry.example/web:3.0"))  # a new spec: a new cycle
    promo = lockgate.wait_for(
        lambda: (p := lockgate.get("promo", "web-2"))["status"].get("phase") == "AwaitingApproval" and p,
        timeout=30,
        message="the new cycle",
    )
    before = {c["type"]: c for c in done["status"]["conditions"]}
    after = {c["type"]: c for c in promo["status"]["conditions"]}
    assert after["PolicyPassed"]["lastTransitionTime"] == before["PolicyPassed"]["lastTransitionTime"]
    assert after["AuditRecorded"] == before["AuditRecorded"]
    assert after["Ready"]["status"] == "False"
    old = {a["approval"]: a for a in promo["status"]["approvals"]}
    assert old["web-2-bob"]["counted"] is False and old["web-2-carol"]["counted"] is False


def test_approvals_and_workloads_are_kept_packed_and_read_back_as_they_were() -> None:
    cluster = view.ClusterView()
    approval = {
        "apiVersion": "lockgate.dev/v1alpha1",
        "kind": "Approval",
        "metadata": {"name": "web-2-bob", "namespace": "production", "uid": "u-1", "resourceVersion": "7"},
        "spec": {"promotion": "web-2", "decision": "Approve", "approver": "bob", "groups": ["engineering-leads"]},
        "status": {"counted": True, "reason": "Counted", "message": "bob's approval counts für technical"},
    }
    assert cluster.put_approval(copy.deepcopy(approval))
    (read,) = cluster.approvals_for(("production", "web-2"))
    assert read == approval and cluster.approvals.get(("production", "web-2-bob")) == approval
    read["status"]["counted"] = False  # a read is a copy: the view does not change
    assert cluster.approvals[("production", "web-2-bob")]["status"]["counted"] is True
    assert not cluster.put_approval(copy.deepcopy(approval))  # the same version again is ignored
    assert cluster.drop_approval(("production", "web-2-bob")) == approval
    assert cluster.approvals_for(("production", "web-2")) == []
    workload = {"metadata": {"name": "web", "namespace": "production", "resourceVersion": "9", "generation": 2}}
    assert cluster.put_workload("Deployment", workload)
    assert cluster.workloads.get(("Deployment", "production", "web")) == view.slim_workload(workload)


def test_approvals_with_no_verdict_are_found_without_the_others() -> None:
    """A settled Promotion's pass looks only for Approvals with no verdict (late ones, or lost writes)."""

    def approval(name: str, rv: str, **status: Any) -> dict[str, Any]:
        meta = {"name": name, "namespace": "production", "resourceVersion": rv}
        return {"metadata": meta, "spec": {"promotion": "web-2", "decision": "Approve"}, "status": status}

    cluster = view.ClusterView()
    cluster.put_promotion(succeeded())
    key = ("production", "web-2")
    assert cluster.promotions.is_settled(key)
    cluster.put_approval(approval("web-2-bob", "1", counted=True, reason="Counted"))
    cluster.put_approval(approval("web-2-dan", "2"))
    cluster.put_approval(approval("web-2-erin", "3"))
    assert [a["metadata"]["name"] for a in cluster.unjudged_approvals_for(key)] == ["web-2-dan", "web-2-erin"]
    cluster.put_approval(approval("web-2-dan", "4", counted=False, reason="PromotionFinished"))
    cluster.drop_approval(("production", "web-2-erin"))
    assert cluster.unjudged_approvals_for(key) == []
    cluster.put_approval(approval("web-2-bob", "5"))  # a verdict taken away (by hand) is unjudged again
    assert [a["metadata"]["name"] for a in cluster.unjudged_approvals_for(key)] == ["web-2-bob"]
