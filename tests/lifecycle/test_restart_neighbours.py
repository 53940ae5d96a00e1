"""What a restart costs, and what Kopf leaves on the objects it watches.

A restart lists every Promotion; an ended one (terminal phase, for its current spec) that stays ended
concerns none of its neighbours, so it touches no other Promotion of its target: the restart takes one
``Done`` pass per Promotion, not one per pair (``handlers/watching.py``; touching them all made 100
ended Promotions of one Deployment take ~5,000 passes).

Kopf watches nothing of ours (the view's informers do, ``handlers/watching.py``), so it writes no
``last-handled-configuration`` annotation or handler progress on anything: GitOps tools see no drift.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from lockgate.handlers import testing
from lockgate.lifecycle import statuses, steps
from tests.lifecycle import manifests

ENDED = 100  # ended Promotions of the one workload: a quadratic restart makes thousands of passes
PHASES = sorted(steps.TERMINAL)
STEP = re.compile(r"^promotion (?P<namespace>[^/]+)/(?P<name>\S+): (?P<action>\w+) \(")


class Steps(logging.Filter):
    """Counts the reconciler's steps (``promotion ns/name: <Action> (<reason>) ...``) per Promotion.

    A filter on ``lockgate.lifecycle``, whose level is lowered to DEBUG (DONE steps are logged at
    DEBUG): it counts, then lets only INFO and above on to the handlers, so that thousands of DEBUG
    lines do not fill a failure report.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock_counts = threading.Lock()
        self.done: collections.Counter[str] = collections.Counter()
        self.other: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        match = STEP.match(record.getMessage())
        if match is not None and match["namespace"] == "production":
            with self._lock_counts:
                if match["action"] == steps.Action.DONE:
                    self.done[match["name"]] += 1
                else:
                    self.other.append(record.getMessage())
        return record.levelno >= logging.INFO

    def total(self) -> int:
        with self._lock_counts:
            return sum(self.done.values())


@pytest.fixture
def reconciler_steps() -> Iterator[Steps]:
    counted = Steps()
    logger = logging.getLogger("lockgate.lifecycle")
    level = logger.level
    logger.addFilter(counted)
    logger.setLevel(logging.DEBUG)
    try:
        yield counted
    finally:
        logger.setLevel(level)
        logger.removeFilter(counted)


def ended_promotion(name: str, phase: str) -> dict[str, Any]:
    """A Promotion of Deployment production/web whose cycle ended in ``phase`` for its current spec."""
    obj: dict[str, Any] = {
        "apiVersion": "lockgate.dev/v1alpha1",
        "kind": "Promotion",
        "metadata": {"name": name, "namespace": "production"},
        "spec": {
            "target": {"kind": "Deployment", "name": "web", "container": "web"},
            "image": f"registry.example/web:{name}@{manifests.DIGEST}",
            "change": {"description": f"Release {name}", "ticket": "CHG-1", "author": "dave"},
            "verification": {"timeout": "20s", "rollbackOnFailure": True},
        },
    }
    obj["status"] = {
        "phase": phase,
        "specHash": statuses.spec_hash(obj),
        "observedGeneration": 1,
        "completedAt": "2026-01-05T11:05:00Z",
        "auditRecorded": True,
    }
    return obj


def seed(stack: testing.Stack, objects: list[dict[str, Any]]) -> None:
    """Store ``objects`` with their status directly in the embedded API (no admission), on its own loop."""

    async def store() -> None:
        for obj in objects:
            stack.cluster.cluster.seed({k: v for k, v in obj.items() if k != "status"}, status=obj["status"])

    asyncio.run_coroutine_threadsafe(store(), stack.cluster.loop).result(timeout=30)


def settled(counted: Steps, stack: testing.Stack, quiet: float = 1.5) -> int:
    """The number of DONE steps once the count has not moved for ``quiet`` seconds."""
    seen = [-1, 0]

    def unchanged() -> bool:
        now = counted.total()
        if now != seen[0]:
            seen[0], seen[1] = now, 0
            return False
        seen[1] += 1
        return seen[1] * 0.1 >= quiet

    stack.wait_for(unchanged, timeout=60, interval=0.1, message="the reconciler to go quiet")
    return counted.total()


def test_a_restart_takes_one_pass_per_ended_promotion_not_one_per_pair(
    lockgate: testing.Stack, reconciler_steps: Steps
) -> None:
    lockgate.stop_operator()
    names = [f"web-{i:03d}" for i in range(ENDED)]
    seed(lockgate, [ended_promotion(name, PHASES[i % len(PHASES)]) for i, name in enumerate(names)])

    lockgate.start_operator()
    lockgate.wait_for(
        lambda: set(reconciler_steps.done) >= set(names), timeout=30, message="a Done pass of every Promotion"
    )
    passes = settled(reconciler_steps, lockgate)

    assert reconciler_steps.other == []  # nothing to do for any of them: no status written, no new cycle
    # One pass each from the listing; a few more from the Namespace, GatePolicy and Deployment events,
    # each of which touches a Promotion once. Touching every neighbour would be ~ENDED**2 / 2.
    assert passes <= 3 * ENDED, f"{passes} passes for {ENDED} ended Promotions of one workload"
    assert max(reconciler_steps.done.values()) <= 4, reconciler_steps.done.most_common(3)
    for i, name in enumerate(names[: len(PHASES)]):
        assert lockgate.phase(name) == PHASES[i]


def kopf_annotations(obj: dict[str, Any]) -> dict[str, str]:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    return {k: v for k, v in annotations.items() if "kopf.zalando.org/" in k or "last-handled-configuration" in k}


def test_kopf_writes_nothing_on_our_objects(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    promo = lockgate.wait_phase("web-2", "Succeeded", timeout=30)

    seen = {
        "promotion": promo,
        "approval web-2-bob": lockgate.get("approval", "web-2-bob"),
        "approval web-2-carol": lockgate.get("approval", "web-2-carol"),
        "deployment web": lockgate.get("deployment", "web"),
    }
    assert {what: found for what, obj in seen.items() if (found := kopf_annotations(obj))} == {}
    assert "kopf" not in promo["status"]  # no handler progress either
