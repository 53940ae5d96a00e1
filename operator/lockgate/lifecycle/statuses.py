"""Building a Promotion's status for each lifecycle step: phase, conditions, timestamps. Pure.

Conditions follow metav1.Condition: ``lastTransitionTime`` moves only when a status flips, and
each carries the generation it was computed from. ``Ready`` is True only when the cycle succeeded,
so ``kubectl wait --for=condition=Ready`` returns exactly when the rollout is verified.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any, Protocol

import pydantic

from lockgate.api import conditions, gatepolicy, meta
from lockgate.gates import decision, policies, spechash
from lockgate.lifecycle import steps
from lockgate.rollout import plan

CYCLE_FIELDS = (
    "approvals",
    "requiredApprovals",
    "approvalsSummary",
    "gates",
    "readyForApprovalAt",
    "approvedAt",
    "deployedAt",
    "completedAt",
    "gateLatencySeconds",
    "previousImage",
    "rollout",
    "rollback",
    "retroReviewDueAt",
    "emergency",
    "auditRecorded",
)


class GateResultLike(Protocol):
    phase: str
    status: dict[str, Any]
    ready_for_approval: bool
    emergency: bool



def cycle_hash(obj: Mapping[str, Any]) -> str:
    """The spec hash of the cycle a Promotion is in: its status's, or with none yet its spec's as it is now."""
    return str((obj.get("status") or {}).get("specHash") or spec_hash(obj))


def spec_hash(obj: Mapping[str, Any]) -> str:
    """The gate's spec hash (``gates.spechash.of_object``), memoised by uid and generation."""
    meta = obj.get("metadata", {})
    uid, generation = meta.get("uid"), meta.get("generation")  # the spec changes only with a new generation
    identity = ("generation", str(uid), int(generation)) if uid and generation else None
    return spechash.remembered(identity, lambda: spechash.of_object(obj))


def fmt(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # RFC 3339, microseconds


def parse_time(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def created_order(obj: Mapping[str, Any]) -> tuple[str, int, str]:
    """Newer promotions sort later: creation time, then resourceVersion-independent name."""
    meta_ = obj.get("metadata", {})
    return (
        str(meta_.get("creationTimestamp") or ""),
        int(meta_.get("generation") or 0) * 0,
        str(meta_.get("name")),
    )


def _conditions(
    obj: Mapping[str, Any], now: datetime.datetime, updates: list[tuple[str, str, str, str]]
) -> list[dict[str, Any]]:
    current = [meta.Condition.model_validate(c) for c in (obj.get("status") or {}).get("conditions") or []]
    generation = _observed_generation(obj)
    for type_, status, reason, message in updates:
        value: meta.ConditionStatus = "True" if status == "True" else "False" if status == "False" else "Unknown"
        current = conditions.set_condition(
            current, type_, value, reason, message, now, int(generation) if generation else None
        )
    order = {t: i for i, t in enumerate(conditions.PROMOTION_TYPES)}
    current.sort(key=lambda c: order.get(c.type, len(order)))
    return [c.to_k8s() for c in current]


def _observed_generation(obj: Mapping[str, Any]) -> Any:
    """The generation this status describes: the current one, unless a rollout of an earlier spec is
    still being finished (kstatus must not read a Ready=True of that cycle as the new spec's)."""
    status = obj.get("status") or {}
    cycle = status.get("specHash")
    if cycle and status.get("observedGeneration") is not None and cycle != spec_hash(obj):
        return status.get("observedGeneration")
    return obj.get("metadata", {}).get("generation")


def _base(obj: Mapping[str, Any]) -> dict[str, Any]:
    status = dict(obj.get("status") or {})
    status["observedGeneration"] = _observed_generation(obj)
    return status


def new_cycle(obj: Mapping[str, Any], now: datetime.datetime) -> dict[str, Any]:
    status = _base(obj)
    for name in CYCLE_FIELDS:
        status[name] = None
    status["phase"] = "Pending"
    status["specHash"] = spec_hash(obj)
    status["message"] = "the spec changed: a new approval cycle starts; earlier approvals no longer count"
    status["conditions"] = _conditions(
        obj,
        now,
        [
            ("Ready", "False", "NewCycle", status["message"]),
            ("Approved", "False", "NewCycle", "approvals of the earlier spec no longer count"),
            ("Deployed", "False", "NewCycle", ""),
            ("Verified", "Unknown", "NewCycle", ""),
        ],
    )
    return status


def waiting(obj: Mapping[str, Any], result: GateResultLike, step: steps.Step, now: datetime.datetime) -> dict[str, Any]:
    status = _base(obj)
    status.update(result.status)
    status["specHash"] = status.get("specHash") or spec_hash(obj)
    phase = result.phase
    if step.action is steps.Action.WAIT_FOR_TARGET:
        phase = "Approved"
    elif step.action in (steps.Action.TARGET_MISSING, steps.Action.HOLD):
        phase = "Pending"
    status["phase"] = phase
    status["message"] = step.message
    if result.ready_for_approval and not status.get("readyForApprovalAt"):
        status["readyForApprovalAt"] = fmt(now)
    if phase == "Approved" and not status.get("approvedAt"):  # approved, held by a window/timer/soak/target
        status["approvedAt"] = fmt(now)
    policy_ok = phase != "Pending"
    status["conditions"] = _conditions(
        obj,
        now,
        [
            ("Ready", "False", step.reason, step.message),
            (
                "PolicyPassed",
                "True" if policy_ok else "False",
                "PoliciesPassed" if policy_ok else step.reason,
                "every policy rule passed" if policy_ok else step.message,
            ),
            (
                "Approved",
                "True" if phase == "Approved" else "False",
                "Approved" if phase == "Approved" else "AwaitingApproval",
                step.message,
            ),
        ],
    )
    return status


def deploying(
    obj: Mapping[str, Any],
    result: GateResultLike,
    change: plan.ImageChange,
    previous: str | None,
    now: datetime.datetime,
) -> dict[str, Any]:
    status = _base(obj)
    status.update(result.status)
    status["specHash"] = status.get("specHash") or spec_hash(obj)
    status["phase"] = "Deploying"
    status["approvedAt"] = status.get("approvedAt") or fmt(now)
    approved = parse_time(status["approvedAt"]) or now
    ready = parse_time(status.get("readyForApprovalAt")) or approved
    status["readyForApprovalAt"] = status.get("readyForApprovalAt") or fmt(ready)
    status["gateLatencySeconds"] = round(max(0.0, (approved - ready).total_seconds()), 3)
    status["previousImage"] = previous
    status["emergency"] = True if result.emergency else None
    status["auditRecorded"] = True
    status["rollout"] = {
        "kind": change.kind,
        "name": change.name,
        "container": change.container,
        "image": change.image,
        "startedAt": fmt(now),
    }
    status["message"] = f"approved; setting {change.kind}/{change.name} container {change.container} to {change.image}"
    status["conditions"] = _conditions(
        obj,
        now,
        [
            ("Ready", "False", "Deploying", status["message"]),
            ("PolicyPassed", "True", "PoliciesPassed", "every policy rule passed"),
            ("Approved", "True", "Approved", str(result.status.get("message") or "enough counted approvals")),
            (
                "AuditRecorded",
                "True",
                "Recorded",
                "the approval and the deploying decision are in the audit trail",
            ),
            ("Deployed", "False", "Deploying", status["message"]),
        ],
    )
    return status


def deployed(obj: Mapping[str, Any], generation: int, now: datetime.datetime) -> dict[str, Any]:
    status = _base(obj)
    status["phase"] = "Verifying"
    status["deployedAt"] = status.get("deployedAt") or fmt(now)
    status["rollout"] = {**(status.get("rollout") or {}), "generation": generation}
    status["message"] = "image set; waiting for the rollout to complete"
    status["conditions"] = _conditions(
        obj,
        now,
        [
            ("Ready", "False", "Verifying", status["message"]),
            ("Deployed", "True", "ImageSet", f"generation {generation} carries the new image"),
            ("Verified", "Unknown", "Verifying", status["message"]),
        ],
    )
    return status


def progress(obj: Mapping[str, Any], step: steps.Step, now: datetime.datetime) -> dict[str, Any]:
    status = _base(obj)
    status["message"] = step.message
    kind = "Verified" if status.get("phase") == "Verifying" else "Ready"
    status["conditions"] = _conditions(
        obj, now, [(kind, "Unknown" if kind == "Verified" else "False", step.reason, step.message)]
    )
    return status


def rolling_back(obj: Mapping[str, Any], step: steps.Step, now: datetime.datetime) -> dict[str, Any]:
    status = _base(obj)
    status["phase"] = "RollingBack"
    status["rollback"] = {"reason": step.reason, "message": step.message, "startedAt": fmt(now)}
    status["message"] = step.message
    status["conditions"] = _conditions(
        obj,
        now,
        [
            ("Ready", "False", "RollingBack", step.message),
            ("Verified", "False", step.reason, step.message),
        ],
    )
    return status


def rollback_patched(obj: Mapping[str, Any], generation: int, now: datetime.datetime) -> dict[str, Any]:
    status = _base(obj)
    status["rollback"] = {**(status.get("rollback") or {}), "generation": generation}
    return status


def ended(
    obj: Mapping[str, Any],
    step: steps.Step,
    now: datetime.datetime,
    *,
    phase: str | None = None,
    result: GateResultLike | None = None,
) -> dict[str, Any]:
    status = _base(obj)
    if result is not None:
        status.update(result.status)
    final = phase or ("Superseded" if step.action is steps.Action.SUPERSEDE else "Rejected")
    status["phase"] = final
    status["specHash"] = status.get("specHash") or spec_hash(obj)
    status["completedAt"] = fmt(now)
    status["message"] = step.message
    updates = [("Ready", "True" if final == "Succeeded" else "False", step.reason, step.message)]
    if final == "Succeeded":
        updates.append(("Verified", "True", step.reason, step.message))
    elif final == "Failed":
        updates.append(("Verified", "False", step.reason, step.message))
    elif final == "Rejected":
        updates.append(("Approved", "False", "Rejected", step.message))
    if result is not None:  # a gate decision (rejected, superseded) the reconciler has just audited
        status["auditRecorded"] = True
        updates.append(("AuditRecorded", "True", "Recorded", f"the {final.lower()} decision is in the audit trail"))
    status["conditions"] = _conditions(obj, now, updates)
    return status


def audit_down(obj: Mapping[str, Any], message: str, now: datetime.datetime) -> dict[str, Any]:
    status = _base(obj)
    status["auditRecorded"] = False
    if str((obj.get("status") or {}).get("phase") or "") in steps.ACTIVE:
        text = f"{message}; the change is applied, its next audit record is not: the rollout waits for it (retrying)"
    else:
        text = f"{message}; nothing deploys until the audit trail records the decision (retrying)"
    status["message"] = text
    status["conditions"] = _conditions(obj, now, [("AuditRecorded", "False", "AuditSinkUnavailable", text)])
    return status


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch turning ``old`` into ``new`` at the top level (None removes a field)."""
    patch: dict[str, Any] = {}
    for name, value in new.items():
        if old.get(name) != value and not (value is None and name not in old):
            patch[name] = value
    return patch


@dataclasses.dataclass(frozen=True)
class RecordedDecision:
    """A Promotion whose status says a decision of its cycle is in the audit trail, and one record that
    cycle must then have."""

    promotion: str
    """``namespace/name``."""
    uid: str
    spec_hash: str
    event: str


def recorded_decision(promotion: Mapping[str, Any]) -> RecordedDecision | None:
    """What the audit trail must hold for ``promotion``, by its status (None: nothing recorded yet)."""
    status = promotion.get("status") or {}
    phase = status.get("phase")
    if status.get("auditRecorded") is not True or phase not in steps.ACTIVE | steps.TERMINAL:
        return None
    # A cycle that deployed recorded ``deploying`` before its patch; one that never did, its end.
    deployed = "deploying" if status.get("rollout") else "failed"
    event = str(phase).lower() if phase in ("Rejected", "Superseded") else deployed
    meta = promotion.get("metadata", {})
    return RecordedDecision(
        promotion=f"{meta.get('namespace')}/{meta.get('name')}",
        uid=str(meta.get("uid") or ""),
        spec_hash=str(status.get("specHash") or ""),
        event=event,
    )


def audit_context(status: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Counted approvers and policy verdicts as recorded in status, for audit records after approval."""
    approvers = [dict(a) for a in status.get("approvals") or [] if a.get("counted")]
    return approvers, decision.by_policy(status.get("gates") or [])


def retro_review_open(status: Mapping[str, Any], current_hash: str) -> bool:
    """An emergency cycle that deployed and still waits for its retro review."""
    return bool(
        status.get("emergency")
        and status.get("retroReviewDueAt")
        and not status.get("retroReviewedAt")
        and status.get("deployedAt")
        and status.get("specHash") == current_hash
    )


def retro_review(obj: Mapping[str, Any], result: GateResultLike, now: datetime.datetime) -> dict[str, Any]:
    """Publish the retro review's state (the approvals table shows each RetroReview Approval's verdict)."""
    status = _base(obj)
    status["approvals"] = result.status.get("approvals", status.get("approvals"))
    for field in ("retroReviewedBy", "retroReviewedAt"):
        if result.status.get(field):
            status[field] = result.status[field]
    if status.get("retroReviewedBy"):
        closed = f"retro review closed by {status['retroReviewedBy']}"
        status["message"] = f"{status.get('message', '')}; {closed}".lstrip("; ")
    return status


def policy_status(obj: Mapping[str, Any]) -> dict[str, Any]:
    """requiredApprovals and problems of a GatePolicy (admission refuses invalid ones; this shows old ones)."""
    try:
        model = gatepolicy.GatePolicy.from_k8s(obj)
    except pydantic.ValidationError as exc:
        return {
            "problems": [str(e.get("msg")) for e in exc.errors()],
            "observedGeneration": obj.get("metadata", {}).get("generation"),
        }
    return {
        "requiredApprovals": gatepolicy.required_approvals(model.spec),
        "problems": policies.validate_policy(model),
        "observedGeneration": obj.get("metadata", {}).get("generation"),
    }


def policy_conditions(
    obj: Mapping[str, Any], now: datetime.datetime, updates: list[tuple[str, str, str, str]]
) -> list[dict[str, Any]]:
    """A GatePolicy's conditions with ``updates`` (type, status, reason, message) set; a condition whose status
    does not change keeps its lastTransitionTime."""
    return _conditions(obj, now, updates)


def recorded(obj: Mapping[str, Any], new_status: dict[str, Any], now: datetime.datetime, event: str) -> dict[str, Any]:
    """``new_status`` with AuditRecorded=True: the ``event`` record is durable (clears an earlier outage)."""
    status = dict(new_status)
    status["auditRecorded"] = True
    status["conditions"] = _conditions(
        {**obj, "status": status},
        now,
        [("AuditRecorded", "True", "Recorded", f"the {event} record is in the audit trail")],
    )
    return status
