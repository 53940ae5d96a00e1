"""What must hold after any trial, whatever crashed or failed: the auditor's four facts, checked from outside.

Each check reads only what an auditor could read — the audit trail, the objects in the API, the
workload's annotations and the API server's request log — and returns the violations it found
(an empty list when the invariant holds). ``check`` runs them all.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lockgate.audit import record, trail
from lockgate.devcluster import server, world
from lockgate.rollout import plan

#: The User-Agent comment the operator puts on every workload patch (``plan.ImageChange.agent``).
AGENT = re.compile(r"\((?P<op>deploy|rollback) promotion=(?P<ns>[^/]+)/(?P<name>\S+) spec=(?P<spec>\S+) approvers=")
DEPLOYED_PHASES = frozenset({"Deploying", "Verifying", "Succeeded"})
ROLLBACK_PHASES = frozenset({"RollingBack", "RolledBack", "Failed"})


@dataclasses.dataclass(frozen=True)
class Patch:
    """One successful workload patch by the operator, as the API server logged it."""

    time: float
    operation: str
    namespace: str
    promotion: str
    spec_prefix: str  # the first 19 characters of the cycle's spec hash
    path: str


@dataclasses.dataclass
class Snapshot:
    """Everything the invariants read, taken once after a trial."""

    requests: Sequence[server.RequestRecord]
    records: Sequence[record.AuditRecord]
    durable_at: Mapping[str, float]
    promotions: Sequence[Mapping[str, Any]]
    approvals: Sequence[Mapping[str, Any]]
    workloads: Sequence[Mapping[str, Any]]  # each with a container named ``web``
    seed_image: str
    required: int


def workload_patches(requests: Iterable[server.RequestRecord]) -> list[Patch]:
    """The operator's successful PATCHes to workloads, with the promotion cycle their agent names."""
    found = []
    for req in list(requests):
        if req.user != world.OPERATOR_USERNAME or req.method != "PATCH" or req.api_group != "apps":
            continue
        if req.subresource or not (200 <= req.code < 300):
            continue
        match = AGENT.search(req.user_agent)
        assert match, f"a workload patch by the operator does not name its promotion: {req.user_agent!r}"
        found.append(
            Patch(
                time=req.time,
                operation=match["op"],
                namespace=match["ns"],
                promotion=match["name"],
                spec_prefix=match["spec"],
                path=req.path,
            )
        )
    return found


def deploys(requests: Iterable[server.RequestRecord]) -> list[Patch]:
    """The rollouts among the operator's workload patches (not its rollbacks)."""
    return [p for p in workload_patches(requests) if p.operation == "deploy"]


def _records_for(
    records: Iterable[record.AuditRecord], namespace: str, name: str, spec_prefix: str, event: str
) -> list[record.AuditRecord]:
    return [
        r
        for r in records
        if r.event == event
        and r.promotion.namespace == namespace
        and r.promotion.name == name
        and r.promotion.spec_hash.startswith(spec_prefix)
    ]


def _approved_properly(snap: Snapshot, rec: record.AuditRecord) -> list[str]:
    """The ``approved`` record names enough approvers, each backed by their own Approval of that spec."""
    problems = []
    where = f"{rec.promotion.namespace}/{rec.promotion.name} cycle {rec.promotion.spec_hash[:19]}"
    names = [a.username for a in rec.approvers if a.decision == "Approve"]
    if len(set(names)) < snap.required:
        problems.append(f"{where}: approved with {sorted(set(names))}, fewer than {snap.required} approvers")
    requester = rec.requester.username if rec.requester else None
    for username in set(names):
        if username in (requester, rec.author):
            problems.append(f"{where}: {username} approved their own change and was counted")
        backing = [
            a
            for a in snap.approvals
            if a["metadata"].get("namespace") == rec.promotion.namespace
            and a["spec"].get("promotion") == rec.promotion.name
            and a["spec"].get("decision") == "Approve"
            and a["spec"].get("approver") == username
            and a["spec"].get("specHash") == rec.promotion.spec_hash
        ]
        if not backing:
            problems.append(f"{where}: {username} was counted without an Approval of exactly this spec")
    return problems


def every_deploy_was_approved(snap: Snapshot) -> list[str]:
    """Each deploy patch belongs to a cycle whose ``approved`` record has enough real approvals."""
    problems = []
    for patch in deploys(snap.requests):
        approved = _records_for(snap.records, patch.namespace, patch.promotion, patch.spec_prefix, "approved")
        if not approved:
            problems.append(f"deploy of {patch.promotion} ({patch.spec_prefix}) has no approved record")
        for rec in approved:
            problems += _approved_properly(snap, rec)
    return problems


def one_rollout_per_cycle(snap: Snapshot) -> list[str]:
    """At most one deploy patch per promotion cycle (the rollback patch is not a rollout)."""
    counts = collections.Counter((p.namespace, p.promotion, p.spec_prefix) for p in deploys(snap.requests))
    return [f"{ns}/{name} cycle {spec} was rolled out {n} times" for (ns, name, spec), n in counts.items() if n > 1]


def audit_before_deploy(snap: Snapshot) -> list[str]:
    """A durable ``deploying`` record exists for every deploy, written before the API saw the patch."""
    problems = []
    for patch in deploys(snap.requests):
        deploying = _records_for(snap.records, patch.namespace, patch.promotion, patch.spec_prefix, "deploying")
        if len(deploying) != 1:
            problems.append(f"deploy of {patch.promotion} ({patch.spec_prefix}): {len(deploying)} deploying records")
            continue
        rec = deploying[0]
        durable = snap.durable_at.get(rec.id)
        if durable is None:
            problems.append(f"deploy of {patch.promotion}: its deploying record's write time is unknown")
        elif durable >= patch.time:
            problems.append(
                f"deploy of {patch.promotion}: the deploying record became durable {durable - patch.time:.3f}s "
                "after the API received the patch"
            )
        if rec.at.timestamp() > patch.time:
            problems.append(f"deploy of {patch.promotion}: the deploying record is dated after the patch")
    return problems


def workloads_are_approved(snap: Snapshot) -> list[str]:
    """The image each workload runs now is the seed image, or one an approved, audited cycle put there."""
    return [problem for workload in snap.workloads for problem in workload_is_approved(snap, workload)]


def workload_is_approved(snap: Snapshot, workload: Mapping[str, Any]) -> list[str]:
    meta = workload.get("metadata", {})
    annotations = meta.get("annotations") or {}
    image = plan.current_image(workload, "web")
    owner = annotations.get(plan.ANNOTATION_PROMOTION)
    if owner is None:
        return [] if image == snap.seed_image else [f"{meta.get('name')} runs {image} with no promotion annotation"]
    namespace, _, name = owner.partition("/")
    spec_hash = str(annotations.get(plan.ANNOTATION_SPEC_HASH) or "")
    operation = annotations.get(plan.ANNOTATION_OPERATION)
    where = f"{meta.get('name')} running {image} for {owner} cycle {spec_hash[:19]} ({operation})"
    deploying = _records_for(snap.records, namespace, name, spec_hash, "deploying")
    if not deploying:
        return [f"{where}: no deploying record for that cycle"]
    problems = []
    for rec in _records_for(snap.records, namespace, name, spec_hash, "approved") or [None]:
        if rec is None:
            problems.append(f"{where}: no approved record for that cycle")
        else:
            problems += _approved_properly(snap, rec)
    promo = next(
        (p for p in snap.promotions if p["metadata"]["namespace"] == namespace and p["metadata"]["name"] == name),
        None,
    )
    status = (promo or {}).get("status") or {}
    if operation == "deploy":
        if image != deploying[0].image:
            problems.append(f"{where}: the audited image of that cycle is {deploying[0].image}")
        if status.get("specHash") == spec_hash and status.get("phase") not in DEPLOYED_PHASES:
            problems.append(f"{where}: but the Promotion says {status.get('phase')}")
    elif operation == "rollback":
        if image != deploying[0].previous_image:
            problems.append(f"{where}: the image before that cycle was {deploying[0].previous_image}")
        if status.get("specHash") == spec_hash and status.get("phase") not in ROLLBACK_PHASES:
            problems.append(f"{where}: but the Promotion says {status.get('phase')}")
    else:
        problems.append(f"{where}: unknown operation")
    return problems


def trail_verifies(audit: trail.AuditTrail) -> list[str]:
    """Every stream of every sink walks from genesis to head without a broken link."""
    return [
        f"audit stream {r.stream} broken at seq {r.first_broken_seq}: {r.problem}" for r in audit.verify() if not r.ok
    ]


def check(snap: Snapshot) -> list[str]:
    return (
        every_deploy_was_approved(snap)
        + one_rollout_per_cycle(snap)
        + audit_before_deploy(snap)
        + workloads_are_approved(snap)
    )
