"""Evidence for auditors: one change's records mapped to the controls they satisfy.

It answers, from the records alone, the four questions an assessor asks of every
production change, and maps the answers to NIST 800-53 CM-3, CM-5, AU-9, AU-11,
NIST 800-171 3.4.3 and CMMC CM.L2-3.4.3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from lockgate.audit import chain, record


@dataclasses.dataclass(frozen=True)
class Answer:
    """One auditor question, its answer, and the evidence behind it."""

    key: str
    question: str
    satisfied: bool
    evidence: str


@dataclasses.dataclass(frozen=True)
class Control:
    """One control and whether this change's records satisfy it."""

    control: str
    framework: str
    title: str
    satisfied: bool
    how: str


@dataclasses.dataclass(frozen=True)
class ChangeEvidence:
    """Everything an auditor needs about one change (one Promotion cycle)."""

    promotion: str
    uid: str
    spec_hash: str
    image: str
    stream: str
    records: tuple[record.AuditRecord, ...]
    answers: tuple[Answer, ...]
    controls: tuple[Control, ...]
    chain: chain.VerifyReport | None

    @property
    def satisfied(self) -> bool:
        """Whether every question is answered yes."""
        return all(a.satisfied for a in self.answers) and all(c.satisfied for c in self.controls)

    def document(self) -> dict[str, Any]:
        """A JSON-ready form for ``-o json``."""
        return {
            "promotion": self.promotion,
            "uid": self.uid,
            "specHash": self.spec_hash,
            "image": self.image,
            "stream": self.stream,
            "satisfied": self.satisfied,
            "questions": [dataclasses.asdict(a) for a in self.answers],
            "controls": [dataclasses.asdict(c) for c in self.controls],
            "chain": dataclasses.asdict(self.chain) if self.chain else None,
            "records": [r.document() for r in self.records],
        }


class NoRecords(LookupError):
    """There are no audit records for the requested Promotion."""


def _first(records: Sequence[record.AuditRecord], event: str) -> record.AuditRecord | None:
    return next((r for r in records if r.event == event), None)


def _who(approver: record.Approver) -> str:
    groups = ", ".join(approver.groups) or "no groups"
    rule = f"; rule {approver.rule}" if approver.rule else ""
    rbac = f"; RBAC {approver.rbac}" if approver.rbac else ""
    return f"{approver.username} (groups: {groups}{rule}{rbac})"


def select_cycle(
    records: Sequence[record.AuditRecord], namespace: str, name: str
) -> list[record.AuditRecord]:
    """The records of the Promotion's latest cycle that reached deployment (else its latest cycle)."""
    mine = [r for r in records if r.promotion.namespace == namespace and r.promotion.name == name]
    if not mine:
        raise NoRecords(f"no audit records for Promotion {namespace}/{name}")
    cycles: dict[tuple[str, str], list[record.AuditRecord]] = {}
    for r in sorted(mine, key=lambda r: (r.at, r.seq)):
        cycles.setdefault((r.promotion.uid, r.promotion.spec_hash), []).append(r)
    ordered = sorted(cycles.values(), key=lambda rs: rs[-1].at)
    deployed = [rs for rs in ordered if any(r.event in ("deploying", "deployed") for r in rs)]
    chosen = (deployed or ordered)[-1]
    return sorted(chosen, key=lambda r: r.seq)


def assess(cycle: Sequence[record.AuditRecord], report: chain.VerifyReport | None = None) -> ChangeEvidence:
    """Answer the four questions and map them to controls for one cycle's records."""
    first = cycle[0]
    approved = _first(cycle, "approved")
    deploying = _first(cycle, "deploying")
    deployed = _first(cycle, "deployed")
    bypass = _first(cycle, "emergency-bypass")
    retro = _first(cycle, "retro-review")
    decision = approved or deploying or retro
    approvers = decision.approvers if decision else ()
    if bypass and retro:
        approvers = retro.approvers
    requester = first.requester.username if first.requester else None
    self_approved = [a.username for a in approvers if a.username in (requester, first.author)]

    # 1. A qualified person reviewed it.
    if bypass and not retro:
        q1 = Answer(
            "reviewed",
            "A qualified person reviewed the change",
            False,
            f"emergency bypass by {_names(bypass.approvers) or 'unknown'}; the retro review is missing",
        )
    elif not approvers:
        q1 = Answer(
            "reviewed", "A qualified person reviewed the change", False, "no counted approver recorded"
        )
    elif self_approved:
        q1 = Answer(
            "reviewed",
            "A qualified person reviewed the change",
            False,
            f"approved by the requester or author: {', '.join(self_approved)}",
        )
    else:
        unqualified = [a.username for a in approvers if not (a.rule or a.rbac)]
        q1 = Answer(
            "reviewed",
            "A qualified person reviewed the change",
            not unqualified,
            "; ".join(_who(a) for a in approvers)
            + (f"; requester {requester}" if requester else "")
            + (f"; author {first.author}" if first.author else "")
            + (f"; not tied to an approval rule: {', '.join(unqualified)}" if unqualified else ""),
        )
    # 2. That person explicitly approved it.
    explicit = [a for a in approvers if a.decision == "Approve" and a.approval]
    q2 = Answer(
        "approved",
        "That person explicitly approved it",
        bool(approvers) and len(explicit) == len(approvers),
        "; ".join(f"{a.username}: {a.decision} (Approval {a.approval or 'unrecorded'})" for a in approvers)
        or "no Approve decision recorded",
    )
    # 3. The approval carries identity and timestamp.
    stamped = [a for a in approvers if a.username and a.at]
    q3 = Answer(
        "identity-time",
        "The approval carries identity and timestamp",
        bool(approvers) and len(stamped) == len(approvers),
        "; ".join(f"{a.username} at {record.format_time(a.at) if a.at else 'NO TIME'}" for a in approvers)
        or "no approvals recorded",
    )
    # 4. The change did not proceed without it.
    q4 = _proceeded(cycle, approved, deploying, deployed, bypass, approvers, report)

    chain_ok = report.ok if report else False
    retention_ok = all(r.retention_until > r.at for r in cycle)
    retention = min(r.retention_until for r in cycle)
    integrity = report.summary() if report else "chain not verified"
    controls = (
        Control(
            "CM-3",
            "NIST SP 800-53 Rev. 5",
            "Configuration Change Control",
            q1.satisfied and q2.satisfied and q4.satisfied,
            "change reviewed, explicitly approved and recorded before it was implemented",
        ),
        Control(
            "CM-5",
            "NIST SP 800-53 Rev. 5",
            "Access Restrictions for Change",
            q1.satisfied and q4.satisfied,
            "only approvers authorised by group and RBAC counted; the operator deployed only after approval",
        ),
        Control("AU-9", "NIST SP 800-53 Rev. 5", "Protection of Audit Information", chain_ok, integrity),
        Control(
            "AU-11",
            "NIST SP 800-53 Rev. 5",
            "Audit Record Retention",
            retention_ok,
            f"records retained until at least {record.format_time(retention)} ({first.retention})",
        ),
        Control(
            "3.4.3",
            "NIST SP 800-171 Rev. 2",
            "Track, review, approve or disapprove, and log changes",
            q1.satisfied and q2.satisfied and q3.satisfied and q4.satisfied,
            "every decision of the change is a chained audit record",
        ),
        Control(
            "CM.L2-3.4.3",
            "CMMC 2.0 Level 2",
            "System Change Management",
            q1.satisfied and q2.satisfied and q3.satisfied and q4.satisfied,
            "as NIST SP 800-171 3.4.3",
        ),
    )
    return ChangeEvidence(
        promotion=f"{first.promotion.namespace}/{first.promotion.name}",
        uid=first.promotion.uid,
        spec_hash=first.promotion.spec_hash,
        image=first.image,
        stream=first.stream,
        records=tuple(cycle),
        answers=(q1, q2, q3, q4),
        controls=controls,
        chain=report,
    )


def _names(approvers: Sequence[record.Approver]) -> str:
    return ", ".join(a.username for a in approvers)


def _proceeded(
    cycle: Sequence[record.AuditRecord],
    approved: record.AuditRecord | None,
    deploying: record.AuditRecord | None,
    deployed: record.AuditRecord | None,
    bypass: record.AuditRecord | None,
    approvers: Sequence[record.Approver],
    report: chain.VerifyReport | None,
) -> Answer:
    question = "The change did not proceed without it"
    if deploying is None:
        if deployed is not None:
            return Answer("gated", question, False, f"deployed (seq {deployed.seq}) with no deploying record")
        return Answer("gated", question, True, "the change was not deployed in this cycle")
    facts = [f"deploying record seq {deploying.seq} at {record.format_time(deploying.at)}"]
    ok = True
    gate = bypass or approved
    if gate is not None:
        if gate.seq < deploying.seq:
            facts.append(f"{gate.event} record seq {gate.seq} precedes it")
        else:
            ok = False
            facts.append(f"{gate.event} record seq {gate.seq} does NOT precede it")
    elif not approvers:
        ok = False
        facts.append("no approval recorded before it")
    late = [a.username for a in approvers if a.at and a.at > deploying.at]
    if late:
        ok = False
        facts.append(f"approved only after deploying began: {', '.join(late)}")
    elif approvers:
        facts.append("every approval is timestamped before it")
    if deployed is not None:
        if deploying.seq < deployed.seq:
            facts.append(f"deployed record seq {deployed.seq} follows it")
        else:
            ok = False
            facts.append(f"deployed record seq {deployed.seq} does NOT follow it")
    if report is not None and not report.ok:
        ok = False
        facts.append("the chain is broken, so the order cannot be trusted")
    return Answer("gated", question, ok, "; ".join(facts))
