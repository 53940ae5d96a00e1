"""Asking the gate: gather the facts for one Promotion (the only I/O: SubjectAccessReviews, and the
policies and Approvals read afresh at a decision to deploy while their watches are not streaming), call
the pure engine, and shape its Decision for the lifecycle, the status and the audit trail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from lockgate import metrics as lockgate_metrics
from lockgate.api import approval, phases, promotion
from lockgate.gates import decision, engine, facts, policies, stamps
from lockgate.kube import access, freshreads
from lockgate.lifecycle import steps, view
from lockgate.rollout import health, plan

logger = logging.getLogger("lockgate.gate")


@dataclasses.dataclass
class GateResult:
    view: steps.GateView
    phase: str
    status: dict[str, Any]
    approvers: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    approval_statuses: dict[str, dict[str, Any]]
    ready_for_approval: bool
    emergency: bool
    decision: decision.Decision
    fresh: bool = False
    """Its facts are as fresh as a decision to deploy needs: the approver answers (asked with ``fresh``, or
    cached while the RBAC watch would have forgotten any answer that a change made stale), and the policies,
    namespace labels and Approvals (read with ``fresh``, or from the view while their watches streamed)."""


def _time(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def source_state(workload: Mapping[str, Any] | None, kind: str, container: str) -> facts.SourceState | None:
    """What the source workload runs, whether it is healthy, and since when (for the soak gate)."""
    if workload is None:
        return None
    image = plan.current_image(workload, container)
    if image is None:
        return None
    judged = health.judge(kind, workload)
    since = None
    for condition in (workload.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "NewReplicaSetAvailable":
            since = _time(condition.get("lastTransitionTime") or condition.get("lastUpdateTime"))
        elif condition.get("type") == "Available" and condition.get("status") == "True" and since is None:
            since = _time(condition.get("lastTransitionTime"))
    if since is None:
        since = _time(workload.get("metadata", {}).get("creationTimestamp"))
    return facts.SourceState(image=image, healthy=judged.state is health.RolloutState.COMPLETE, available_since=since)


_T = TypeVar("_T")


class Parsed:
    """Models parsed from watched objects, with their stamp verdicts, by uid and resourceVersion.

    The same version of an object always parses (and verifies) the same, so a pass over an unchanged
    Promotion or Approval reuses the last parse; at the decisive moment only the new Approval is
    parsed. Bounded (oldest out); objects without a uid and resourceVersion are parsed every time.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: dict[tuple[str, str, str], Any] = {}

    def get(self, kind: str, obj: Mapping[str, Any], parse: Callable[[Mapping[str, Any]], _T]) -> _T:
        meta = obj.get("metadata") or {}
        uid, version = meta.get("uid"), meta.get("resourceVersion")
        if not uid or not version:
            return parse(obj)
        key = (kind, str(uid), str(version))
        if key in self._items:
            value: _T = self._items[key]
            return value
        value = parse(obj)
        self._items[key] = value
        if len(self._items) > self.size:
            del self._items[next(iter(self._items))]
        return value


class Gate:
    def __init__(
        self,
        cluster: view.ClusterView,
        approvers: access.ApproverAccess,
        key: bytes,
        metrics: lockgate_metrics.Metrics | None = None,
        *,
        fresh_reads: freshreads.FreshReads | None = None,
    ) -> None:
        """``fresh_reads``: where a decision to deploy reads the policies and Approvals while the view's watches of
        them are not streaming (None: the view is always taken as current, as in tests without watches)."""
        self.view = cluster
        self.access = approvers
        self.key = key
        self.metrics = metrics
        self.fresh_reads = fresh_reads
        self.parsed = Parsed()

    def _promotion(self, obj: Mapping[str, Any]) -> tuple[promotion.Promotion, facts.Identity | None]:
        model = promotion.Promotion.from_k8s(obj)
        return model, stamps.verified_requester(self.key, model)

    def _approval(self, obj: Mapping[str, Any]) -> tuple[approval.Approval, bool]:
        model = approval.Approval.from_k8s(obj)
        return model, stamps.verify_approval(self.key, model)

    async def evaluate(self, obj: Mapping[str, Any], now: datetime.datetime, *, fresh: bool = False) -> GateResult:
        """Judge ``obj``; ``fresh`` (right before a deploy) re-asks every SubjectAccessReview and reads from the API
        what the view may lack: the GatePolicies and the Namespace while either's stream is not open, the
        Approvals while theirs is not (``freshreads.Unreadable`` if it cannot)."""
        # While every RBAC watch is open a cached answer is as good as a fresh one: the result counts as
        # fresh if no RBAC change or watch loss (each forgets the cache) happened while it was made. So do
        # the view's policies and Approvals while their watches stream.
        watched, generation = self.access.watching_rbac, self.access.generation
        reads = self.fresh_reads
        policies_current = reads is None or self.view.policies_current()
        approvals_current = reads is None or "approvals" in self.view.current_kinds
        model, requester = self.parsed.get("Promotion", obj, self._promotion)
        namespace, name = view.key_of(obj)
        if fresh and reads is not None and not policies_current:
            read, labels = await reads.policies(namespace, self.view.policy_models)
            matched = policies.matching(read, labels)
        else:
            labels = self.view.namespaces.get(namespace, {})
            matched = policies.matching(self.view.policy_models.values(), labels)
        if fresh and reads is not None and not approvals_current:  # one withdrawn meanwhile must not count
            raw_approvals = await reads.approvals(namespace, name)
        else:
            raw_approvals = self.view.approvals_for((namespace, name))
        judged = [self.parsed.get("Approval", a, self._approval) for a in raw_approvals]
        approvals = [a for a, _ in judged]
        verified = frozenset(a.metadata.name for a, stamped in judged if stamped)
        identities = {
            (a.spec.approver, tuple(a.spec.groups))
            for a in approvals
            if a.metadata.name in verified and a.spec.approver
        }
        asked = sorted(identities)
        answers = [self.access.known(user, groups, namespace, fresh=fresh) for user, groups in asked]
        if None in answers:  # ask the authorizer only about those without a cached answer (no task otherwise)
            missing = [i for i, answer in enumerate(answers) if answer is None]
            got = await asyncio.gather(*(self.access.can_approve(*asked[i], namespace, fresh=fresh) for i in missing))
            for i, reply in zip(missing, got, strict=True):
                answers[i] = reply
        can_approve: dict[str, bool] = {}
        for (user, _), answer in zip(asked, answers, strict=True):
            can_approve[user] = can_approve.get(user, False) or bool(answer and answer[0])
        source = None
        if model.spec.source is not None:
            src = model.spec.source
            container = model.spec.target.container or model.spec.target.name
            source = source_state(self.view.workloads.get((src.kind, src.namespace, src.name)), src.kind, container)
        gathered = facts.Facts(
            can_approve=can_approve,
            verified_approvals=verified,
            requester=requester,
            source=source,
            namespace_labels=labels,
        )
        made = engine.evaluate(model, approvals, matched, gathered, now)
        comments = {str(a["metadata"]["name"]): a.get("spec", {}).get("comment") for a in raw_approvals}
        unchanged = watched and self.access.watching_rbac and self.access.generation == generation
        shaped = self._shape(obj, made, requester, comments)
        return dataclasses.replace(shaped, fresh=fresh or (unchanged and policies_current and approvals_current))

    def _shape(
        self,
        obj: Mapping[str, Any],
        made: decision.Decision,
        requester: facts.Identity | None,
        comments: Mapping[str, Any],
    ) -> GateResult:
        namespace, name = view.key_of(obj)
        status = made.status_fields()
        if requester is not None:
            status["requestedBy"] = {"username": requester.username, "groups": list(requester.groups)}
        elsewhere = [
            {
                "approval": f"{a['metadata']['namespace']}/{a['metadata']['name']}",
                "approver": a.get("spec", {}).get("approver"),
                "groups": a.get("spec", {}).get("groups") or [],
                "decision": a.get("spec", {}).get("decision"),
                "counted": False,
                "reason": "OtherNamespace",
                "message": f"Approvals count only in the Promotion's namespace ({namespace}); create it in {namespace}",
            }
            for a in self.view.approvals_elsewhere((namespace, name))
        ]
        status["approvals"] = list(status.get("approvals") or []) + elsewhere
        verdicts = [a.to_status() for a in made.approvals]
        rbac = f"SubjectAccessReview: may approve promotions.lockgate.dev in {namespace}"
        approvers = [  # every counted decision (Approve or Reject), with the approver's own words
            {**v, "username": v.get("approver"), "comment": comments.get(str(v.get("approval"))), "rbac": rbac}
            for v in verdicts
            if v.get("counted")
        ]
        for gate in made.gates:
            if not gate.passed and self.metrics is not None and gate.kind in ("Rule", "Policy"):
                label = gate.name.split("/", 1)[0] if "/" in gate.name else "(none)"  # NoMatchingPolicy: none
                rule = gate.name.split("/", 1)[1] if "/" in gate.name else gate.reason
                self.metrics.policy_denial(f"{namespace}/{name}", label, rule)
        policy_results = decision.by_policy(status.get("gates") or [])
        approval_statuses = {str(v["approval"]): decision.approval_status(v) for v in verdicts}
        if self.metrics is not None:
            self.metrics.approval_verdicts(namespace, verdicts)
        gate_view = steps.GateView(
            may_deploy=made.phase is phases.Phase.APPROVED,
            rejected=made.phase is phases.Phase.REJECTED,
            summary=made.summary,
            next_look_at=made.next_look_at,
        )
        phase = made.phase.value
        approvals_done = all(g.passed for g in made.gates if g.kind == "Approvals")
        if made.phase is phases.Phase.AWAITING_APPROVAL and approvals_done and made.required_approvals > 0:
            phase = phases.Phase.APPROVED.value  # every approval is in; a window, timer or soak holds it
        return GateResult(
            view=gate_view,
            phase=phase,
            status=status,
            approvers=approvers,
            policies=policy_results,
            approval_statuses=approval_statuses,
            ready_for_approval=made.ready_for_approval,
            emergency=made.emergency,
            decision=made,
        )
