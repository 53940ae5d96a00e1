"""The engine's answer: the phase the gate allows, each gate's verdict, how each Approval was judged."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from lockgate.api import phases

#: The reason of the gate verdict saying a policy's emergency path decided (the change is an emergency change).
EMERGENCY_PATH = "EmergencyPath"


def _ts(at: datetime.datetime | None) -> str | None:
    return None if at is None else at.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


@dataclasses.dataclass(frozen=True)
class GateVerdict:
    """One gate: ``name`` is ``<policy>/<gate>`` (or a global name), ``reason`` is CamelCase."""

    name: str
    kind: str
    """Requester, Policy, Rule, ChangeWindow, WaitTimer, SourceSoak, Approvals, RiskThreshold, Emergency."""
    passed: bool
    reason: str
    message: str
    blocking: bool = False
    """A failing blocking gate holds the Promotion in Pending (approvals do not matter yet)."""

    def to_status(self) -> dict[str, Any]:
        """The ``status.gates[]`` entry."""
        return {
            "name": self.name,
            "kind": self.kind,
            "passed": self.passed,
            "reason": self.reason,
            "message": self.message,
        }


@dataclasses.dataclass(frozen=True)
class ApprovalVerdict:
    """How one Approval was judged for the current spec."""

    approval: str
    approver: str | None
    groups: tuple[str, ...]
    decision: str
    at: datetime.datetime | None
    counted: bool
    rule: str | None
    """The rule(s) filled, ``policy/rule`` (comma-separated when several policies count it)."""
    reason: str
    message: str
    purpose: str = "Change"

    def to_status(self) -> dict[str, Any]:
        """The ``status.approvals[]`` entry of the Promotion (also the Approval's own status)."""
        out: dict[str, Any] = {
            "approval": self.approval,
            "groups": list(self.groups),
            "decision": self.decision,
            "counted": self.counted,
            "reason": self.reason,
            "message": self.message,
        }
        if self.approver is not None:
            out["approver"] = self.approver
        if self.at is not None:
            out["at"] = _ts(self.at)
        if self.rule is not None:
            out["rule"] = self.rule
        return out


#: What an Approval's own status holds of its verdict (the Promotion's ``status.approvals[]`` entry holds more).
APPROVAL_STATUS_FIELDS = ("counted", "reason", "message", "rule")


def approval_status(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An Approval's own status from its entry in the Promotion's ``status.approvals[]``."""
    return {field: entry.get(field) for field in APPROVAL_STATUS_FIELDS}


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the gate allows now, and why."""

    phase: phases.Phase
    """Pending (a blocking gate failed: approvals do not matter yet), AwaitingApproval (approvals or
    a time gate outstanding), Approved (every gate passed) or Rejected (an eligible approver rejected)."""
    spec_hash: str
    gates: tuple[GateVerdict, ...]
    approvals: tuple[ApprovalVerdict, ...]
    required_approvals: int
    counted_approvals: int
    summary: str
    """One sentence a human acts on."""
    next_look_at: datetime.datetime | None
    """When the answer may change by itself (window opens, timer ends, approval expires, retro due)."""
    emergency: bool
    retro_review_due_at: datetime.datetime | None
    retro_reviewed_by: str | None
    retro_reviewed_at: datetime.datetime | None
    ready_for_approval: bool
    """True when approvers should act (no blocking gate fails and nothing rejected)."""
    policies: tuple[str, ...]
    """Names of the policies applied."""

    @property
    def approvals_summary(self) -> str:
        """``counted/required``, e.g. ``1/2`` (the Approvals printer column)."""
        return f"{self.counted_approvals}/{self.required_approvals}"

    @property
    def policy_passed(self) -> bool:
        """Every non-approval gate passed (the PolicyPassed condition)."""
        return all(g.passed for g in self.gates if g.kind != "Approvals")

    def failed_gates(self) -> tuple[GateVerdict, ...]:
        """The gates that did not pass, in evaluation order."""
        return tuple(g for g in self.gates if not g.passed)

    def status_fields(self) -> dict[str, Any]:
        """The status fields the gate owns, camelCase (the operator adds phase, conditions, times)."""
        out: dict[str, Any] = {
            "specHash": self.spec_hash,
            "requiredApprovals": self.required_approvals,
            "countedApprovals": self.counted_approvals,
            "approvalsSummary": self.approvals_summary,
            "approvals": [a.to_status() for a in self.approvals],
            "gates": [g.to_status() for g in self.gates],
            "message": self.summary,
            "emergency": self.emergency,
        }
        for key, value in (
            ("nextCheckAt", self.next_look_at),
            ("retroReviewDueAt", self.retro_review_due_at),
            ("retroReviewedAt", self.retro_reviewed_at),
        ):
            if value is not None:
                out[key] = _ts(value)
        if self.retro_reviewed_by is not None:
            out["retroReviewedBy"] = self.retro_reviewed_by
        return out


def by_policy(gates: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Gate verdicts (``status.gates[]`` entries, named ``policy/gate``) grouped by the policy that made
    them: ``{name, passed, verdicts}``, the shape audit records carry, in policy name order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for gate in gates:
        grouped.setdefault(str(gate.get("name", "")).split("/", 1)[0], []).append(dict(gate))
    return [
        {"name": policy, "passed": all(v.get("passed") for v in verdicts), "verdicts": verdicts}
        for policy, verdicts in sorted(grouped.items())
    ]
