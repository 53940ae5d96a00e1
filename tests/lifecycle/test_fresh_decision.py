"""The decisive moment: a gate result opens the gate on cached approver answers only if they were
as fresh as new ones (every RBAC watch open, and no RBAC change while the result was made)."""

from __future__ import annotations

import datetime
from typing import Any

from lockgate.admission import stamping
from lockgate.api import promotion, samples
from lockgate.gates import spechash
from lockgate.kube import access
from lockgate.lifecycle import gating, view

KEY = b"k" * 32
NOW = datetime.datetime.now(datetime.UTC)
GROUPS = {"bob": ("engineering-leads",), "carol": ("security-leads",)}


class RbacChangingApi:
    """Answers every SubjectAccessReview "allowed"; ``during`` runs while one is being asked."""

    def __init__(self) -> None:
        self.during: Any = None

    async def create(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        if self.during is not None:
            self.during()
        return {"status": {"allowed": True, "reason": "test"}}


def approved_world() -> tuple[view.ClusterView, dict[str, Any]]:
    cluster = view.ClusterView()
    cluster.put_namespace({"metadata": {"name": "production", "labels": {"lockgate.dev/environment": "production"}}})
    cluster.put_policy({**samples.gate_policy_dict(), "metadata": {"name": "production", "resourceVersion": "1"}})
    body = samples.promotion_dict()
    body["metadata"].update(uid="p-1", resourceVersion="5", generation=1, creationTimestamp="2026-01-01T00:00:00Z")
    alice = stamping.User("alice", ("developers",))
    body["metadata"]["annotations"] = {stamping.REQUESTED_BY: stamping.stamp_promotion(KEY, body, None, alice, NOW)}
    current = spechash.of_promotion(promotion.Promotion.from_k8s(body))
    body["status"] = {"specHash": current, "phase": "AwaitingApproval"}
    cluster.put_promotion(body)
    for who, groups in GROUPS.items():
        name = f"web-1-4-2-{who}"
        item: dict[str, Any] = {
            "apiVersion": "lockgate.dev/v1alpha1",
            "kind": "Approval",
            "metadata": {"name": name, "namespace": "production", "uid": f"a-{who}", "resourceVersion": "7"},
            "spec": {"promotion": "web-1-4-2", "decision": "Approve", "specHash": current},
        }
        item["spec"].update(
            stamping.stamp_approval(KEY, "production", name, item["spec"], stamping.User(who, groups), NOW)
        )
        cluster.put_approval(item)
    return cluster, body


def watching(approvers: access.ApproverAccess) -> None:
    for kind in access.RBAC_KINDS:
        approvers.watch_opened(kind)


async def test_answers_made_while_rbac_is_watched_and_unchanged_are_fresh() -> None:
    cluster, body = approved_world()
    approvers = access.ApproverAccess(RbacChangingApi(), ttl=60)  # type: ignore[arg-type]
    watching(approvers)
    gate = gating.Gate(cluster, approvers, KEY)
    result = await gate.evaluate(body, NOW)
    assert result.view.may_deploy and result.fresh


async def test_an_rbac_change_while_the_result_is_made_leaves_it_not_fresh() -> None:
    cluster, body = approved_world()
    api = RbacChangingApi()
    approvers = access.ApproverAccess(api, ttl=60)  # type: ignore[arg-type]
    watching(approvers)
    changes = ["rolebindings"]  # one change, while the first answer is being asked
    api.during = lambda: changes and approvers.rbac_changed(changes.pop())
    gate = gating.Gate(cluster, approvers, KEY)
    result = await gate.evaluate(body, NOW)
    assert result.view.may_deploy and not result.fresh  # the reconciler evaluates again with fresh=True


async def test_without_every_rbac_watch_open_a_result_is_fresh_only_when_asked_fresh() -> None:
    cluster, body = approved_world()
    approvers = access.ApproverAccess(RbacChangingApi(), ttl=60)  # type: ignore[arg-type]
    gate = gating.Gate(cluster, approvers, KEY)
    assert not (await gate.evaluate(body, NOW)).fresh
    assert (await gate.evaluate(body, NOW, fresh=True)).fresh
