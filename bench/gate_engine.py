"""Benchmark: gate decisions per second for a 10-rule CEL policy with 5 approvals, on one core.

Run: ``.venv/bin/python bench/gate_engine.py`` (``make bench``). Reports two figures:

* warm: the same Promotion re-evaluated (the operator's common case: timers, new Approvals); the
  CEL ``promotion`` value is converted once per spec hash and reused;
* cold: a different spec every decision (every conversion and hash done from scratch);
* uncached: the warm case with objects that carry no resourceVersion, so the engine's Decision memo
  (per exact input, at most ``engine.CACHE_SECONDS`` old) cannot apply: the cost of a real evaluation.
"""

from __future__ import annotations

import argparse
import datetime
import time

from lockgate.api import samples
from lockgate.gates import engine, facts, spechash

RULES = [
    *samples.DEFAULT_EVIDENCE_RULES,
    {"name": "digest-pinned", "expression": "promotion.spec.image.contains('@sha256:')"},
    {"name": "has-ticket", "expression": "has(promotion.spec.change.ticket)"},
    {"name": "ticket-format", "expression": "promotion.spec.change.ticket.matches('^CHG-[0-9]+$')"},
    {"name": "scan-passed", "expression": "promotion.spec.evidence.securityScan.status == 'Passed'"},
    {"name": "has-sbom", "expression": "size(promotion.spec.evidence.sbom.licenses) > 0"},
    {"name": "not-weekend", "expression": "now.getDayOfWeek() >= 1 && now.getDayOfWeek() <= 5"},
]


def scenario(
    image: str = samples.IMAGE, version: str | None = "1"
) -> tuple[object, list[object], list[object], facts.Facts]:
    policy = samples.gate_policy(
        rules=RULES,
        approvals={
            "rules": [
                {"name": "technical", "groups": ["engineering-leads"], "count": 2},
                {"name": "security", "groups": ["security-leads"], "count": 1},
            ],
            "maxAge": "24h",
        },
        changeWindows={
            "timezone": "America/New_York",
            "allow": [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"]}],
        },
    )
    assert len(policy.spec.rules) == 10
    promo = samples.promotion(image=image)
    spec_hash = spechash.of_promotion(promo)
    people = [
        ("bob", "engineering-leads"),
        ("erin", "engineering-leads"),
        ("carol", "security-leads"),
        ("dave", "security-leads"),
        ("frank", "engineering-leads"),
    ]
    approvals = [
        samples.approval(
            f"a-{who}",
            approver=who,
            groups=(group,),
            spec_hash=spec_hash,
            at=samples.AT + datetime.timedelta(minutes=i),
        )
        for i, (who, group) in enumerate(people)
    ]
    known = facts.Facts(
        can_approve={who: True for who, _ in people},
        verified_approvals=frozenset(a.metadata.name for a in approvals),
        requester=facts.Identity("alice", ("developers",)),
        namespace_labels={"lockgate.dev/environment": "production"},
    )
    for model in (promo, *approvals, policy):  # as if read from the API (the memo keys on these)
        model.metadata.resource_version = version
    return promo, approvals, [policy], known


def run(seconds: float, cold: bool, version: str | None = "1") -> float:
    now = samples.AT + datetime.timedelta(hours=1)
    promo, approvals, policies, known = scenario(version=version)
    first = engine.evaluate(promo, approvals, policies, known, now)  # type: ignore[arg-type]
    assert first.phase == "Approved", first.summary
    variants = [scenario(f"registry.example/web:1.4.{i}", version=None)[0] for i in range(2000)] if cold else [promo]
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            engine.evaluate(variants[n % len(variants)], approvals, policies, known, now)  # type: ignore[arg-type]
            n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    warm = run(args.seconds, cold=False)
    cold = run(args.seconds, cold=True)
    uncached = run(args.seconds, cold=False, version=None)
    print("gate engine: 10 CEL rules, 2 approval rules, 5 approvals, change window, one core")
    print(f"  warm (same spec re-evaluated): {warm:,.0f} decisions/s ({1e6 / warm:.1f} us each)")
    print(f"  cold (new spec every time):    {cold:,.0f} decisions/s ({1e6 / cold:.1f} us each)")
    print(f"  uncached (warm, memo off):     {uncached:,.0f} decisions/s ({1e6 / uncached:.1f} us each)")
    print(f"  target 20,000/s: {'met' if warm >= 20000 else 'NOT met'} (warm)")


if __name__ == "__main__":
    main()
