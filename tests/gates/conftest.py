"""A small world for gate tests: one Promotion by alice, the seed production policy, approvals."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

import pytest

from lockgate.api import approval, gatepolicy, promotion, samples
from lockgate.gates import decision, engine, facts, spechash

NOW = datetime.datetime(2025, 1, 6, 15, 0, tzinfo=datetime.UTC)  # a Monday
LABELS = {"lockgate.dev/environment": "production"}


@dataclasses.dataclass
class World:
    promotion: promotion.Promotion = dataclasses.field(default_factory=samples.promotion)
    policies: list[gatepolicy.GatePolicy] = dataclasses.field(default_factory=lambda: [samples.gate_policy()])
    approvals: list[approval.Approval] = dataclasses.field(default_factory=list)
    can_approve: dict[str, bool] = dataclasses.field(default_factory=dict)
    verified: set[str] = dataclasses.field(default_factory=set)
    requester: facts.Identity | None = dataclasses.field(
        default_factory=lambda: facts.Identity("alice", ("developers",))
    )
    source: facts.SourceState | None = None
    labels: dict[str, str] = dataclasses.field(default_factory=lambda: dict(LABELS))
    now: datetime.datetime = NOW

    @property
    def spec_hash(self) -> str:
        return spechash.of_promotion(self.promotion)

    def approve(
        self,
        who: str,
        *groups: str,
        decision: str = "Approve",
        at: datetime.datetime | None = None,
        name: str | None = None,
        verified: bool = True,
        sar: bool = True,
        spec_hash: str | bool | None = True,
        purpose: str = "Change",
    ) -> approval.Approval:
        name = name or f"{self.promotion.metadata.name}-{who}-{len(self.approvals)}"
        item = samples.approval(
            name,
            promotion=self.promotion.metadata.name,
            approver=who,
            groups=groups,
            decision=decision,
            at=at or self.now - datetime.timedelta(minutes=30),
            spec_hash=self.spec_hash if spec_hash is True else (None if spec_hash is False else spec_hash),
            purpose=purpose,
        )
        self.approvals.append(item)
        if verified:
            self.verified.add(name)
        self.can_approve.setdefault(who, sar)
        return item

    def policy(self, **spec: Any) -> gatepolicy.GatePolicy:
        """Replace the policies with one policy whose spec is the seed's, updated."""
        self.policies = [samples.gate_policy(**spec)]
        return self.policies[0]

    def change(self, **spec: Any) -> None:
        """Replace the Promotion's spec keys (a new cycle)."""
        raw = self.promotion.to_k8s()
        raw["spec"].update(spec)
        self.promotion = promotion.Promotion.from_k8s(raw)

    def facts(self) -> facts.Facts:
        return facts.Facts(
            can_approve=dict(self.can_approve),
            verified_approvals=frozenset(self.verified),
            requester=self.requester,
            source=self.source,
            namespace_labels=dict(self.labels),
        )

    def evaluate(self, now: datetime.datetime | None = None) -> decision.Decision:
        when = now or self.now
        return engine.evaluate(self.promotion, list(self.approvals), list(self.policies), self.facts(), when)

    def minutes(self, n: float) -> datetime.datetime:
        """``now`` plus n minutes."""
        return self.now + datetime.timedelta(minutes=n)


@pytest.fixture(scope="session")
def make_world() -> Callable[..., World]:
    return World


@pytest.fixture
def world() -> World:
    return World()


def verdict(d: decision.Decision, name_part: str) -> decision.ApprovalVerdict:
    (found,) = [v for v in d.approvals if name_part in v.approval]
    return found


def gate(d: decision.Decision, name: str) -> decision.GateVerdict:
    (found,) = [g for g in d.gates if g.name == name]
    return found


@pytest.fixture(scope="session")
def find() -> Any:
    """Helpers: ``find.verdict(decision, name_part)``, ``find.gate(decision, name)``."""
    return type("Find", (), {"verdict": staticmethod(verdict), "gate": staticmethod(gate)})
