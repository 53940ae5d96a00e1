"""The decisive moment: a gate result opens the gate on cached approver answers only if they were
as fresh as new ones (every RBAC watch open, and no RBAC change while the result was made), and on the
view's policies and Approvals only while the watches of GatePolicies, Namespaces and Approvals stream (else
they are read afresh)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from lockgate.admission import stamping
from lockgate.api import promotion, samples
from lockgate.gates import spechash
from lockgate.kube import access, freshreads
from lockgate.kube import client as kclient
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


# -- the policies: read afresh at the decisive moment while their watches are down ---------------------


class ApiNow:
    """Serves GatePolicies, Namespaces and Approvals as the API has them now (``broken``: every read fails)."""

    def __init__(self, *policies: dict[str, Any], approvals: list[dict[str, Any]] | None = None) -> None:
        self.policies = list(policies)
        self.labels = {"lockgate.dev/environment": "production"}
        self.approvals = approvals or []
        self.broken: Exception | None = None
        self.reads: list[str] = []

    async def get(self, path: str, params: dict[str, str], **_: Any) -> dict[str, Any]:
        self.reads.append(f"{path}?{params.get('fieldSelector', '')}")
        if self.broken is not None:
            raise self.broken
        if path.endswith("/namespaces"):
            name = params["fieldSelector"].removeprefix("metadata.name=")
            return {"items": [{"metadata": {"name": name, "labels": self.labels}}], "metadata": {}}
        if path.endswith("/approvals"):
            return {"items": self.approvals, "metadata": {}}
        return {"items": self.policies, "metadata": {}}


def tightened() -> dict[str, Any]:
    """The production policy with two technical approvals required: bob's alone no longer fills the rule."""
    rules = [
        {"name": "technical", "groups": ["engineering-leads"], "count": 2},
        {"name": "security", "groups": ["security-leads"], "count": 1},
    ]
    policy = samples.gate_policy_dict()
    policy["spec"]["approvals"]["rules"] = rules
    return policy


def gate_reading(api: ApiNow, *streaming: str) -> tuple[gating.Gate, view.ClusterView, dict[str, Any]]:
    """The approved world's gate, the watches of ``streaming`` kinds open (the others' objects read from ``api``)."""
    cluster, body = approved_world()
    cluster.current_kinds.update(streaming)
    approvers = access.ApproverAccess(RbacChangingApi(), ttl=60)  # type: ignore[arg-type]
    watching(approvers)
    reads = freshreads.FreshReads(api)  # type: ignore[arg-type]
    return gating.Gate(cluster, approvers, KEY, fresh_reads=reads), cluster, body


EVERY_KIND = ("gatepolicies", "namespaces", "approvals")


async def test_while_every_watch_streams_the_view_decides_and_nothing_is_read() -> None:
    api = ApiNow(tightened())
    gate, _, body = gate_reading(api, *EVERY_KIND)
    result = await gate.evaluate(body, NOW)
    assert result.view.may_deploy and result.fresh
    assert api.reads == []


async def test_a_policy_tightened_while_its_watch_was_down_applies_to_the_decision_to_deploy() -> None:
    api = ApiNow(tightened())
    gate, _, body = gate_reading(api, "namespaces", "approvals")  # the GatePolicy watch is down
    first = await gate.evaluate(body, NOW)
    assert first.view.may_deploy and not first.fresh  # the view's policy: the reconciler asks again, fresh
    decisive = await gate.evaluate(body, NOW, fresh=True)
    assert not decisive.view.may_deploy and decisive.fresh
    assert "technical" in decisive.view.summary
    assert any(path.endswith("/gatepolicies?") for path in api.reads)


async def test_a_namespace_relabelled_while_its_watch_was_down_is_judged_by_its_labels_now() -> None:
    api = ApiNow(samples.gate_policy_dict())
    api.labels = {"lockgate.dev/environment": "staging"}  # no policy selects it now
    gate, _, body = gate_reading(api, "gatepolicies", "approvals")  # the Namespace watch is down
    decisive = await gate.evaluate(body, NOW, fresh=True)
    assert not decisive.view.may_deploy
    assert "/api/v1/namespaces?metadata.name=production" in api.reads


async def test_an_approval_withdrawn_while_the_approval_watch_was_down_does_not_count() -> None:
    cluster, _ = approved_world()
    kept = [a for a in cluster.approvals_for(("production", "web-1-4-2")) if a["metadata"]["name"].endswith("bob")]
    api = ApiNow(samples.gate_policy_dict(), approvals=kept)  # carol's was deleted meanwhile
    gate, _, body = gate_reading(api, "gatepolicies", "namespaces")  # the Approval watch is down
    assert not (await gate.evaluate(body, NOW)).fresh
    decisive = await gate.evaluate(body, NOW, fresh=True)
    assert not decisive.view.may_deploy and "security" in decisive.view.summary
    assert api.reads == ["/apis/lockgate.dev/v1alpha1/namespaces/production/approvals?"]


async def test_a_malformed_policy_read_afresh_counts_as_the_last_good_one() -> None:
    broken = samples.gate_policy_dict()
    broken["spec"]["approvals"]["rules"] = "not a list"
    api = ApiNow(broken)
    gate, _, body = gate_reading(api, "approvals")
    assert (await gate.evaluate(body, NOW, fresh=True)).view.may_deploy  # the view's good policy, not none
    assert any(path.endswith("/gatepolicies?") for path in api.reads)


async def test_facts_that_cannot_be_read_afresh_stop_the_decision() -> None:
    api = ApiNow(samples.gate_policy_dict())
    api.broken = kclient.ApiError(403, "Forbidden", "gatepolicies is forbidden")
    gate, _, body = gate_reading(api)
    with pytest.raises(freshreads.Unreadable, match=r"reading GatePolicies failed: .*forbidden"):
        await gate.evaluate(body, NOW, fresh=True)
