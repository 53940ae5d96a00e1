"""The emergency path with retro review, risk thresholds, and several matching policies."""

import datetime

from lockgate.api import phases, samples
from lockgate.gates import policies


def _emergency(world) -> None:
    world.change(emergency={"justification": "checkout is down for every customer"})


def test_emergency_needs_only_emergency_approvers_and_skips_windows(world, find) -> None:
    world.policy(changeWindows={"allow": [{"days": ["Sun"]}]}, waitTimer="4h")
    _emergency(world)
    world.approve("bob", "engineering-leads")
    d = world.evaluate()
    assert d.emergency
    assert d.phase is phases.Phase.AWAITING_APPROVAL
    assert find.verdict(d, "bob").reason == "NotInApproverGroups"
    world.approve("olga", "oncall-leads")
    d = world.evaluate()
    assert d.phase is phases.Phase.APPROVED
    assert d.required_approvals == 1
    assert d.retro_review_due_at == world.now + datetime.timedelta(hours=24)
    assert d.next_look_at == world.minutes(-30) + datetime.timedelta(
        hours=24
    )  # olga's approval expires first
    assert "retro review due" in d.summary


def test_retro_review_closes_with_a_retro_approval_from_a_normal_approver(world, find) -> None:
    _emergency(world)
    world.approve("olga", "oncall-leads", "security-leads")
    world.promotion.status.spec_hash = world.spec_hash
    world.promotion.status.approved_at = world.minutes(-60)
    world.approve("olga", "oncall-leads", "security-leads", purpose="RetroReview", name="retro-olga")
    world.approve("alice", "security-leads", purpose="RetroReview", name="retro-alice")
    d = world.evaluate()
    assert d.retro_review_due_at == world.minutes(-60) + datetime.timedelta(hours=24)
    assert d.retro_reviewed_by is None
    assert find.verdict(d, "retro-olga").reason == "OwnEmergencyApproval"
    assert find.verdict(d, "retro-alice").reason == "SelfApproval"
    world.approve("carol", "security-leads", purpose="RetroReview", name="retro-carol")
    d = world.evaluate()
    assert d.retro_reviewed_by == "carol"
    assert find.verdict(d, "retro-carol").counted
    assert d.status_fields()["retroReviewedBy"] == "carol"


def test_retro_review_on_a_normal_change_does_not_count(world, find) -> None:
    world.approve("carol", "security-leads", purpose="RetroReview", name="retro-carol")
    assert find.verdict(world.evaluate(), "retro-carol").reason == "NotEmergency"


def test_emergency_under_a_policy_without_break_glass_uses_the_normal_path(world, find) -> None:
    world.policy(emergency=None)
    _emergency(world)
    world.approve("olga", "oncall-leads")
    d = world.evaluate()
    assert not d.emergency
    assert find.gate(d, "production/emergency").reason == "EmergencyNotAllowed"
    assert d.required_approvals == 2


LOW_RISK = {
    "name": "low-risk",
    "when": "has(promotion.spec.risk) && promotion.spec.risk == 'Low'",
    "counts": {"security": 0},
}


def test_low_risk_needs_fewer_approvals(world, find) -> None:
    world.policy(riskThresholds=[LOW_RISK])
    world.change(risk="Low")
    world.approve("bob", "engineering-leads")
    d = world.evaluate()
    assert d.phase is phases.Phase.APPROVED
    assert d.required_approvals == 1
    assert find.gate(d, "production/low-risk").reason == "RiskThresholdApplied"


def test_risk_threshold_never_goes_below_one_human_approval(world) -> None:
    world.policy(riskThresholds=[{**LOW_RISK, "counts": {"security": 0, "technical": 0}}])
    world.change(risk="Low")
    d = world.evaluate()
    assert (d.phase, d.required_approvals) == (phases.Phase.AWAITING_APPROVAL, 1)


def test_zero_approvals_only_when_the_policy_says_so_explicitly(world) -> None:
    world.policy(
        riskThresholds=[
            {**LOW_RISK, "counts": {"security": 0, "technical": 0}, "allowWithoutHumanApproval": True}
        ]
    )
    world.change(risk="Low")
    d = world.evaluate()
    assert (d.phase, d.required_approvals) == (phases.Phase.APPROVED, 0)


def test_risk_threshold_error_keeps_the_full_requirement(world, find) -> None:
    world.policy(riskThresholds=[{**LOW_RISK, "when": "promotion.spec.risk == 'Low'"}])  # no risk: error
    d = world.evaluate()
    assert find.gate(d, "production/low-risk").reason == "RiskThresholdError"
    assert d.required_approvals == 2


def test_higher_risk_can_require_more(world) -> None:
    world.policy(
        riskThresholds=[{"name": "high", "when": "promotion.spec.risk == 'High'", "counts": {"technical": 2}}]
    )
    world.change(risk="High")
    assert world.evaluate().required_approvals == 3


def test_all_matching_policies_must_pass(world, find) -> None:
    extra = samples.gate_policy(
        "compliance",
        namespaceSelector={
            "matchExpressions": [
                {"key": "lockgate.dev/environment", "operator": "In", "values": ["production", "staging"]}
            ]
        },
        approvals={"rules": [{"name": "compliance", "groups": ["compliance-officers"]}]},
        rules=[{"name": "ticket", "expression": "has(promotion.spec.change.ticket)"}],
        emergency=None,
    )
    unrelated = samples.gate_policy("dev", namespaceSelector={"matchLabels": {"env": "dev"}})
    world.policies = [world.policies[0], extra, unrelated]
    world.approve("bob", "engineering-leads")
    world.approve("carol", "security-leads")
    d = world.evaluate()
    assert d.policies == ("compliance", "production")
    assert (d.phase, d.approvals_summary) == (phases.Phase.AWAITING_APPROVAL, "2/3")
    assert find.gate(d, "compliance/approvals").reason == "AwaitingApprovals"
    world.approve("cora", "compliance-officers")
    assert world.evaluate().phase is phases.Phase.APPROVED


def test_matching_label_selectors() -> None:
    def pol(**selector):
        return samples.gate_policy("p", namespaceSelector=selector)

    labels = {"env": "prod", "tier": "web"}
    assert policies.matching([pol()], labels)  # empty selector: every namespace
    assert policies.matching([pol(matchLabels={"env": "prod"})], labels)
    assert not policies.matching([pol(matchLabels={"env": "dev"})], labels)
    expr = lambda op, vals=(): pol(matchExpressions=[{"key": "env", "operator": op, "values": list(vals)}])  # noqa: E731
    assert policies.matching([expr("In", ["prod", "x"])], labels)
    assert not policies.matching([expr("NotIn", ["prod"])], labels)
    assert policies.matching([expr("Exists")], labels)
    assert not policies.matching([expr("DoesNotExist")], labels)
    assert policies.matching([expr("NotIn", ["prod"])], {})


def test_validate_policy_reports_each_problem() -> None:
    bad = samples.gate_policy(
        approvals={"rules": [{"name": "ghost", "count": 1}]},
        rules=[{"name": "broken", "expression": "1 +"}],
        riskThresholds=[{"name": "r", "when": "(", "counts": {"nope": 0}}],
        changeWindows={
            "timezone": "Nowhere/Land",
            "freeze": [{"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z", "reason": "x"}],
        },
    )
    problems = policies.validate_policy(bad)
    assert len(problems) == 6, problems
    for fragment in (
        "approvals.rules[ghost]",
        "rules[broken].expression",
        "riskThresholds[r].when",
        "riskThresholds[r].counts",
        "changeWindows.timezone",
        "changeWindows.freeze[0]",
    ):
        assert any(fragment in p for p in problems), fragment
    assert policies.validate_policy(samples.gate_policy()) == []


def test_validate_policy_refuses_forbid_self_approval_false_naming_the_rule() -> None:
    problems = policies.validate_policy(samples.gate_policy(approvals={"forbidSelfApproval": False}))
    assert len(problems) == 1
    assert problems[0].startswith("approvals.forbidSelfApproval cannot be false")
    assert "separation of duties" in problems[0]
