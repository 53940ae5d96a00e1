"""Approval rules: distinct approvers, one rule each, counts, Rejects, expiry, duplicates."""

import datetime

from lockgate.api import phases


def test_one_approval_per_rule_approves(world, find) -> None:
    world.approve("bob", "engineering-leads")
    world.approve("carol", "security-leads")
    d = world.evaluate()
    assert d.phase is phases.Phase.APPROVED
    assert (d.counted_approvals, d.required_approvals, d.approvals_summary) == (2, 2, "2/2")
    assert find.verdict(d, "bob").rule == "production/technical"
    assert find.verdict(d, "carol").rule == "production/security"
    assert d.ready_for_approval


def test_missing_rule_keeps_waiting_and_says_for_whom(world) -> None:
    world.approve("bob", "engineering-leads")
    d = world.evaluate()
    assert d.phase is phases.Phase.AWAITING_APPROVAL
    assert d.approvals_summary == "1/2"
    assert "waiting for 1 approval from security-leads" in d.summary
    assert "bob's approval counts for technical" in d.summary


def test_one_person_in_both_groups_fills_only_one_rule(world, find) -> None:
    world.approve("dave", "engineering-leads", "security-leads")
    d = world.evaluate()
    assert d.phase is phases.Phase.AWAITING_APPROVAL
    assert d.counted_approvals == 1
    assert find.verdict(d, "dave").counted


def test_assignment_maximises_filled_rules(world, find) -> None:
    # dave could fill either rule; bob only technical. A greedy first-come assignment would give
    # dave technical and leave security empty; the matching moves dave to security.
    world.approve("dave", "engineering-leads", "security-leads", at=world.minutes(-50))
    world.approve("bob", "engineering-leads", at=world.minutes(-40))
    d = world.evaluate()
    assert d.phase is phases.Phase.APPROVED
    assert find.verdict(d, "dave").rule == "production/security"
    assert find.verdict(d, "bob").rule == "production/technical"


def test_counts_need_distinct_approvers(world, find) -> None:
    world.policy(approvals={"rules": [{"name": "technical", "groups": ["engineering-leads"], "count": 2}]})
    world.approve("bob", "engineering-leads", at=world.minutes(-20))
    world.approve("bob", "engineering-leads", at=world.minutes(-10))
    d = world.evaluate()
    assert d.phase is phases.Phase.AWAITING_APPROVAL
    assert d.counted_approvals == 1
    assert [v.reason for v in d.approvals] == ["Duplicate", "Counted"]
    world.approve("erin", "engineering-leads")
    assert world.evaluate().phase is phases.Phase.APPROVED


def test_users_can_fill_rules_by_name(world) -> None:
    world.policy(approvals={"rules": [{"name": "owner", "users": ["frank"], "count": 1}]})
    world.approve("frank")
    assert world.evaluate().phase is phases.Phase.APPROVED


def test_extra_approvals_are_reported_as_not_needed(world, find) -> None:
    world.approve("bob", "engineering-leads")
    world.approve("erin", "engineering-leads")
    world.approve("carol", "security-leads")
    d = world.evaluate()
    assert d.phase is phases.Phase.APPROVED
    assert find.verdict(d, "erin").reason == "NotNeeded"


def test_approver_outside_the_groups_does_not_count(world, find) -> None:
    world.approve("mallory", "interns")
    d = world.evaluate()
    v = find.verdict(d, "mallory")
    assert (v.counted, v.reason) == (False, "NotInApproverGroups")
    assert "engineering-leads" in v.message


def test_counted_reject_rejects_the_cycle(world, find) -> None:
    world.approve("bob", "engineering-leads")
    world.approve("carol", "security-leads", decision="Reject")
    d = world.evaluate()
    assert d.phase is phases.Phase.REJECTED
    assert not d.ready_for_approval
    assert find.verdict(d, "carol").reason == "Rejected"
    assert "rejected by carol" in d.summary
    assert d.next_look_at is None


def test_reject_is_sticky_even_if_the_same_person_approves_later(world) -> None:
    world.approve("carol", "security-leads", decision="Reject", at=world.minutes(-20))
    world.approve("carol", "security-leads", at=world.minutes(-10))
    world.approve("bob", "engineering-leads")
    assert world.evaluate().phase is phases.Phase.REJECTED


def test_reject_from_someone_outside_the_groups_does_not_count(world, find) -> None:
    world.approve("mallory", "interns", decision="Reject")
    d = world.evaluate()
    assert d.phase is phases.Phase.AWAITING_APPROVAL
    assert find.verdict(d, "mallory").reason == "NotInApproverGroups"


def test_rejects_do_not_expire(world) -> None:
    world.approve("carol", "security-leads", decision="Reject", at=world.minutes(-60 * 48))
    assert world.evaluate().phase is phases.Phase.REJECTED


def test_approvals_older_than_max_age_expire(world, find) -> None:
    world.approve("bob", "engineering-leads", at=world.now - datetime.timedelta(hours=24, seconds=1))
    world.approve("carol", "security-leads", at=world.minutes(-60))
    d = world.evaluate()
    assert d.phase is phases.Phase.AWAITING_APPROVAL
    v = find.verdict(d, "bob")
    assert (v.counted, v.reason) == (False, "Expired")
    assert "approve again" in v.message


def test_next_look_is_the_first_expiry_of_a_counted_approval(world) -> None:
    world.approve("bob", "engineering-leads", at=world.minutes(-120))
    d = world.evaluate()
    assert d.next_look_at == world.minutes(-120) + datetime.timedelta(hours=24)
    # and at that moment the approval no longer counts
    assert world.evaluate(d.next_look_at).counted_approvals == 0


def test_without_max_age_approvals_do_not_expire(world) -> None:
    world.policy(
        approvals={"rules": [{"name": "technical", "groups": ["engineering-leads"]}], "maxAge": None}
    )
    world.approve("bob", "engineering-leads", at=world.now - datetime.timedelta(days=30))
    assert world.evaluate().phase is phases.Phase.APPROVED


def test_approvals_of_other_promotions_are_ignored(world) -> None:
    item = world.approve("bob", "engineering-leads")
    item.spec.promotion = "something-else"
    d = world.evaluate()
    assert d.approvals == ()
