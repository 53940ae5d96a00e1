"""Property tests for the gate's invariants, over random sets of approvals."""

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from lockgate.api import phases, samples

PEOPLE = ["alice", "bob", "carol", "dave", "erin", "olga", "mallory"]
GROUPS = ["engineering-leads", "security-leads", "oncall-leads", "developers", "interns"]

approval_st = st.fixed_dictionaries(
    {
        "who": st.sampled_from(PEOPLE),
        "groups": st.lists(st.sampled_from(GROUPS), max_size=3, unique=True),
        "decision": st.sampled_from(["Approve", "Approve", "Approve", "Reject"]),
        "minutes_ago": st.integers(min_value=0, max_value=60 * 30),
        "verified": st.booleans() | st.just(True),
        "stale": st.booleans(),
    }
)

scenario_st = st.fixed_dictionaries(
    {
        "approvals": st.lists(approval_st, max_size=8),
        "requester": st.sampled_from(PEOPLE),
        "author": st.sampled_from([*PEOPLE, "Bob Smith <bob@example.com>"]),
        "emergency": st.booleans(),
        "counts": st.tuples(st.integers(0, 2), st.integers(0, 2)),
        "no_rbac": st.sets(st.sampled_from(PEOPLE), max_size=2),
        # absent, true, or false as stored before admission refused it: separation of duties holds in all three
        "forbid_self_approval": st.sampled_from([None, True, False]),
    }
)


def build(make_world, scenario, approvals=None, names=None):
    world = make_world()
    world.requester = world.requester.__class__(scenario["requester"], ("developers",))
    world.change(change={"description": "d", "author": scenario["author"]})
    if scenario["emergency"]:
        world.change(emergency={"justification": "production is down"})
    technical, security = scenario["counts"]
    forbid = scenario.get("forbid_self_approval")
    world.policy(
        approvals={
            "rules": [
                {"name": "technical", "groups": ["engineering-leads"], "count": technical},
                {"name": "security", "groups": ["security-leads", "engineering-leads"], "count": security},
            ]
        }
        | ({} if forbid is None else {"forbidSelfApproval": forbid})
    )
    items = scenario["approvals"] if approvals is None else approvals
    for i, a in enumerate(items):
        world.approve(
            a["who"],
            *a["groups"],
            decision=a["decision"],
            at=world.now - datetime.timedelta(minutes=a["minutes_ago"]),
            name=f"appr-{names[i] if names else i}",
            verified=a["verified"],
            sar=a["who"] not in scenario["no_rbac"],
            spec_hash="sha256:" + "1" * 64 if a["stale"] else True,
        )
    return world


@settings(max_examples=150, deadline=None)
@given(scenario=scenario_st)
def test_requester_and_author_never_count(make_world, scenario) -> None:
    world = build(make_world, scenario)
    d = world.evaluate()
    excluded = {scenario["requester"], "bob" if "bob@" in scenario["author"] else scenario["author"]}
    for v in d.approvals:
        if v.approver in excluded:
            assert not v.counted, v


@settings(max_examples=150, deadline=None)
@given(scenario=scenario_st)
def test_a_changed_spec_never_inherits_approvals(make_world, scenario) -> None:
    world = build(make_world, scenario)
    world.change(image="registry.example/web:9.9.9")
    d = world.evaluate()
    assert not any(v.counted for v in d.approvals)
    assert d.counted_approvals == 0
    assert d.phase is not phases.Phase.REJECTED
    assert d.phase is not phases.Phase.APPROVED or d.required_approvals == 0


@settings(max_examples=150, deadline=None)
@given(scenario=scenario_st, extra=approval_st)
def test_adding_an_approval_never_turns_rejected_into_approved(make_world, scenario, extra) -> None:
    before = build(make_world, scenario).evaluate()
    after = build(make_world, scenario, [*scenario["approvals"], extra]).evaluate()
    if before.phase is phases.Phase.REJECTED:
        assert after.phase is phases.Phase.REJECTED


@settings(max_examples=100, deadline=None)
@given(scenario=scenario_st)
def test_the_decision_is_deterministic(make_world, scenario) -> None:
    world = build(make_world, scenario)
    first = world.evaluate()
    assert world.evaluate() == first
    n = len(scenario["approvals"])
    shuffled = build(make_world, scenario, list(reversed(scenario["approvals"])), list(reversed(range(n))))
    again = shuffled.evaluate()
    assert again == first


@settings(max_examples=150, deadline=None)
@given(scenario=scenario_st)
def test_one_person_never_fills_two_rules(make_world, scenario) -> None:
    d = build(make_world, scenario).evaluate()
    counted_approvers = [v.approver for v in d.approvals if v.counted and v.decision == "Approve"]
    assert len(counted_approvers) == len(set(counted_approvers))
    for v in d.approvals:
        assert v.rule is None or "," not in v.rule  # one policy here: at most one rule each
    assert d.counted_approvals <= d.required_approvals


@settings(max_examples=100, deadline=None)
@given(scenario=scenario_st)
def test_approved_only_with_enough_distinct_eligible_approvers(make_world, scenario) -> None:
    d = build(make_world, scenario).evaluate()
    if d.phase is phases.Phase.APPROVED:
        assert d.required_approvals >= 1
        assert d.counted_approvals == d.required_approvals
        counted = {v.approval for v in d.approvals if v.counted}
        world = build(make_world, scenario)
        for item in world.approvals:
            if item.metadata.name in counted:
                assert item.metadata.name in world.verified
                assert world.can_approve[item.spec.approver]
                assert item.spec.spec_hash == world.spec_hash


def test_sample_scenario_is_approved(make_world) -> None:
    # guards the generators: the invariants above must see approved outcomes too
    world = make_world()
    world.approve("bob", "engineering-leads")
    world.approve("carol", "security-leads")
    assert world.evaluate().phase is phases.Phase.APPROVED
    assert world.spec_hash != samples.SPEC_HASH
