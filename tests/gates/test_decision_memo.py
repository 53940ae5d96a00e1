"""The Decision memo: the same inputs within a second reuse a Decision, never one older than that.

The operator memoises a Decision per exact input (resourceVersions of the Promotion, its Approvals and
the policies, and the facts). A rule may read ``now``, so a cached Decision must not outlive the
second after the evaluation that made it; past it, the entry is useless and is dropped (memory).
"""

from __future__ import annotations

import collections
import datetime
from typing import Any

import pytest

from lockgate.api import phases
from lockgate.gates import engine

CUTOFF_AFTER = datetime.timedelta(milliseconds=500)


@pytest.fixture(autouse=True)
def own_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """A memo of this test's own (the process-wide one holds other tests' decisions, made at other times)."""
    monkeypatch.setattr(engine, "_cache", collections.OrderedDict())


def from_the_api(world: Any) -> None:
    """Give every input a resourceVersion, as objects read from the API have (else nothing is memoised)."""

    def versioned(model: Any, version: str) -> Any:
        return model.model_copy(update={"metadata": model.metadata.model_copy(update={"resource_version": version})})

    world.promotion = versioned(world.promotion, "10")
    world.policies = [versioned(p, "3") for p in world.policies]
    world.approvals = [versioned(a, f"2{i}") for i, a in enumerate(world.approvals)]


def test_a_rule_reading_now_is_judged_again_once_the_memoised_decision_is_a_second_old(world) -> None:
    cutoff = world.now + CUTOFF_AFTER
    world.policy(
        rules=[
            {
                "name": "before-cutoff",
                "expression": f"now < timestamp('{cutoff.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}')",
                "message": "past the cutoff",
            }
        ]
    )
    world.approve("bob", "engineering-leads")
    world.approve("carol", "security-leads")
    from_the_api(world)

    first = world.evaluate()
    assert first.phase is phases.Phase.APPROVED
    # Within the second: the very same Decision (the rule is not run again, by design).
    assert world.evaluate(world.now + datetime.timedelta(milliseconds=700)) is first
    # A second later the rule runs again and the cutoff has passed.
    later = world.evaluate(world.now + datetime.timedelta(milliseconds=1200))
    assert later is not first
    assert later.phase is phases.Phase.PENDING
    assert any(g.name.endswith("before-cutoff") and not g.passed for g in later.gates)


def test_memoised_decisions_past_their_second_are_dropped(world) -> None:
    world.approve("bob", "engineering-leads")
    from_the_api(world)
    world.evaluate()
    world.evaluate(world.now + datetime.timedelta(seconds=5))
    oldest = min(at for at, _ in engine._cache.values())
    assert oldest >= world.now + datetime.timedelta(seconds=4), "an entry no evaluation can use is still kept"
