"""Evidence answers the auditor's questions honestly: emergencies, late approvals, broken chains."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.audit import chain, evidence, record


def _chained(recs: list[record.AuditRecord]) -> list[record.AuditRecord]:
    head: chain.ChainHead | None = None
    out = []
    for rec in recs:
        linked = chain.link(rec, head)
        head = chain.head_of(linked)
        out.append(linked)
    return out


def _answers(change: evidence.ChangeEvidence) -> dict[str, bool]:
    return {a.key: a.satisfied for a in change.answers}


def test_emergency_bypass_needs_its_retro_review(samples: Any) -> None:
    promo = samples.promotion()
    oncall = [
        {"username": "olga", "groups": ["oncall-leads"], "at": "2026-03-02T08:59:00Z", "approval": "bg"}
    ]
    recs = _chained(
        [
            samples.make("emergency-bypass", promo, 0, approvers=oncall),
            samples.make("deploying", promo, 1, approvers=oncall),
            samples.make("deployed", promo, 2, approvers=oncall),
        ]
    )
    pending = evidence.assess(evidence.select_cycle(recs, "production", "web-2026-03"), chain.verify(recs))
    assert _answers(pending)["reviewed"] is False
    assert "retro review is missing" in pending.answers[0].evidence
    assert not pending.satisfied

    recs = _chained([*recs, samples.make("retro-review", promo, 60)])
    reviewed = evidence.assess(evidence.select_cycle(recs, "production", "web-2026-03"), chain.verify(recs))
    assert _answers(reviewed) == {"reviewed": True, "approved": True, "identity-time": True, "gated": True}
    assert "emergency-bypass record seq 1 precedes it" in reviewed.answers[3].evidence


def test_approval_timestamped_after_deploying_fails_the_gate_question(samples: Any) -> None:
    promo = samples.promotion()
    late = [{**samples.APPROVERS[0], "at": "2026-03-02T10:00:00Z"}]
    recs = _chained(
        [samples.make(e, promo, i, approvers=late) for i, e in enumerate(("approved", "deploying"))]
    )
    change = evidence.assess(recs, chain.verify(recs))
    assert _answers(change)["gated"] is False
    assert "approved only after deploying began: alice" in change.answers[3].evidence


def test_broken_chain_fails_au9_and_the_gate_question(samples: Any) -> None:
    recs = _chained(samples.lifecycle())
    broken = chain.verify(recs[:1] + recs[2:])
    change = evidence.assess(recs, broken)
    controls = {c.control: c.satisfied for c in change.controls}
    assert controls["AU-9"] is False and controls["CM-3"] is False
    assert controls["AU-11"] is True


def test_latest_deployed_cycle_is_chosen(samples: Any) -> None:
    first = samples.promotion(uid="u-1", spec_hash="sha256:a")
    second = samples.promotion(uid="u-1", spec_hash="sha256:b")
    recs = _chained(
        [
            samples.make("superseded", first, 0),
            samples.make("approved", second, 1),
            samples.make("deploying", second, 2),
        ]
    )
    cycle = evidence.select_cycle(recs, "production", "web-2026-03")
    assert {r.promotion.spec_hash for r in cycle} == {"sha256:b"}
    with pytest.raises(evidence.NoRecords):
        evidence.select_cycle(recs, "staging", "web-2026-03")
