"""Stamp, spec hash, RBAC and separation-of-duties checks on each Approval."""

import pytest

from lockgate.api import phases, samples


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"verified": False}, "SignatureInvalid"),
        ({"sar": False}, "NotAuthorized"),
        ({"spec_hash": False}, "SpecHashMissing"),
        ({"spec_hash": samples.SPEC_HASH}, "SpecChanged"),
    ],
)
def test_refused_approvals_never_count(world, find, kwargs, reason) -> None:
    world.approve("carol", "security-leads")
    world.approve("bob", "engineering-leads", **kwargs)
    d = world.evaluate()
    v = find.verdict(d, "bob")
    assert (v.counted, v.reason) == (False, reason)
    assert d.phase is phases.Phase.AWAITING_APPROVAL


def test_unstamped_approval_never_counts(world, find) -> None:
    item = world.approve("bob", "engineering-leads")
    item.spec.stamp = None
    assert find.verdict(world.evaluate(), "bob").reason == "Unstamped"


def test_unverified_reject_does_not_reject(world) -> None:
    world.approve("carol", "security-leads", decision="Reject", verified=False)
    assert world.evaluate().phase is phases.Phase.AWAITING_APPROVAL


def test_spec_change_starts_a_new_cycle(world, find) -> None:
    world.approve("bob", "engineering-leads")
    world.approve("carol", "security-leads")
    assert world.evaluate().phase is phases.Phase.APPROVED
    world.change(image="registry.example/web:1.4.3")
    d = world.evaluate()
    assert d.phase is phases.Phase.AWAITING_APPROVAL
    assert d.counted_approvals == 0
    assert {v.reason for v in d.approvals} == {"SpecChanged"}


def test_requester_cannot_approve(world, find) -> None:
    world.requester = world.requester.__class__("erin", ("engineering-leads",))
    world.approve("erin", "engineering-leads")
    v = find.verdict(world.evaluate(), "erin")
    assert (v.counted, v.reason) == (False, "SelfApproval")


@pytest.mark.parametrize("author", ["bob", "BOB", "bob@example.com", "Bob Smith <bob@example.com>"])
def test_declared_author_cannot_approve(world, find, author) -> None:
    world.change(change={"description": "x", "author": author})
    world.approve("bob", "engineering-leads")
    v = find.verdict(world.evaluate(), "bob")
    assert (v.counted, v.reason) == (False, "AuthorApproval")


def test_author_reject_does_not_reject(world) -> None:
    world.change(change={"description": "x", "author": "carol"})
    world.approve("carol", "security-leads", decision="Reject")
    assert world.evaluate().phase is phases.Phase.AWAITING_APPROVAL


@pytest.mark.parametrize(("approver", "reason"), [("alice", "SelfApproval"), ("bob", "AuthorApproval")])
def test_a_policy_stored_with_forbid_self_approval_false_still_never_counts_requester_or_author(
    world, find, approver, reason
) -> None:
    # Admission refuses forbidSelfApproval: false; a policy stored before that (or around the webhook) is
    # judged as if it said true: separation of duties is not a policy's choice.
    world.policy(approvals={"rules": [{"name": "technical", "groups": ["developers"]}], "forbidSelfApproval": False})
    world.change(change={"description": "x", "author": "bob"})
    world.approve(approver, "developers")
    d = world.evaluate()
    assert d.phase is phases.Phase.AWAITING_APPROVAL
    v = find.verdict(d, approver)
    assert (v.counted, v.reason) == (False, reason)


def test_unknown_requester_holds_the_promotion(world, find) -> None:
    world.requester = None
    world.approve("bob", "engineering-leads")
    world.approve("carol", "security-leads")
    d = world.evaluate()
    assert d.phase is phases.Phase.PENDING
    assert find.gate(d, "requester").reason == "RequesterUnknown"
    assert not d.ready_for_approval
    assert "webhook" in d.summary


def test_no_matching_policy_holds_the_promotion(world, find) -> None:
    world.labels = {"lockgate.dev/environment": "staging"}
    d = world.evaluate()
    assert d.phase is phases.Phase.PENDING
    assert find.gate(d, "policy").reason == "NoMatchingPolicy"
    assert d.policies == ()


def test_policy_without_approval_rules_is_not_enough(world, find) -> None:
    world.policy(approvals={"rules": []})
    d = world.evaluate()
    assert d.phase is phases.Phase.PENDING
    assert find.gate(d, "approvals").reason == "NoApproversConfigured"
