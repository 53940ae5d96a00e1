"""Gate verdicts grouped by policy: the shape every audit record carries, whatever step wrote it."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lockgate.gates import decision

_verdicts = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.builds(
                lambda policy, gate: f"{policy}/{gate}" if gate else policy,
                st.sampled_from(["production", "security", "NoMatchingPolicy"]),
                st.sampled_from(["", "approvals", "window", "no-critical"]),
            ),
            "kind": st.sampled_from(["Approvals", "Rule", "Window"]),
            "passed": st.booleans(),
            "reason": st.just("R"),
            "message": st.just("m"),
        }
    ),
    max_size=12,
)


@given(_verdicts)
def test_every_verdict_is_kept_once_under_its_policy(gates: list[dict[str, Any]]) -> None:
    grouped = decision.by_policy(gates)
    assert [g["name"] for g in grouped] == sorted({v["name"].split("/", 1)[0] for v in gates})
    kept = [v for g in grouped for v in g["verdicts"]]
    assert sorted(kept, key=repr) == sorted(gates, key=repr)
    for group in grouped:
        assert all(v["name"].split("/", 1)[0] == group["name"] for v in group["verdicts"])
        assert group["passed"] == all(v["passed"] for v in group["verdicts"])


def test_a_policy_with_one_failed_gate_did_not_pass() -> None:
    gates = [
        {"name": "production/approvals", "passed": True},
        {"name": "production/window", "passed": False},
        {"name": "security/no-critical", "passed": True},
    ]
    assert [(g["name"], g["passed"], len(g["verdicts"])) for g in decision.by_policy(gates)] == [
        ("production", False, 2),
        ("security", True, 1),
    ]
