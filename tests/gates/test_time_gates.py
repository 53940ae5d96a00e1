"""Change windows, freezes, the wait timer and source soak."""

import datetime

import pytest

from lockgate.api import gatepolicy, phases
from lockgate.gates import facts, windows

UTC = datetime.UTC
BUSINESS = {
    "timezone": "America/New_York",
    "allow": [{"days": ["Mon", "Tue", "Wed", "Thu"], "start": "09:00", "end": "16:00"}],
}


def _windows(**spec) -> gatepolicy.ChangeWindows:
    return gatepolicy.ChangeWindows.model_validate(spec)


def _approved(world) -> None:
    world.approve("bob", "engineering-leads")
    world.approve("carol", "security-leads")


@pytest.mark.parametrize(
    ("utc", "open_"),
    [
        (datetime.datetime(2025, 1, 6, 15, 0, tzinfo=UTC), True),  # Mon 10:00 EST
        (datetime.datetime(2025, 1, 6, 13, 59, tzinfo=UTC), False),  # Mon 08:59 EST
        (datetime.datetime(2025, 1, 6, 21, 0, tzinfo=UTC), False),  # Mon 16:00 EST (end exclusive)
        (datetime.datetime(2025, 1, 10, 15, 0, tzinfo=UTC), False),  # Fri
        (datetime.datetime(2025, 7, 7, 13, 30, tzinfo=UTC), True),  # Mon 09:30 EDT
    ],
)
def test_windows_are_in_the_policy_time_zone(utc, open_) -> None:
    assert windows.is_open(_windows(**BUSINESS), utc) is open_


def test_next_open_is_reported_and_respects_dst() -> None:
    friday = datetime.datetime(2025, 3, 7, 18, 0, tzinfo=UTC)
    verdict = windows.evaluate(_windows(**BUSINESS), friday)
    assert (verdict.open, verdict.reason) == (False, "OutsideChangeWindow")
    assert verdict.next_open == datetime.datetime(2025, 3, 10, 13, 0, tzinfo=UTC)  # Mon 09:00 EDT
    assert "Mon 2025-03-10 09:00 EDT" in verdict.message


def test_overnight_window_spans_midnight() -> None:
    night = _windows(allow=[{"days": ["Sat"], "start": "22:00", "end": "04:00"}])
    assert windows.is_open(night, datetime.datetime(2025, 1, 11, 23, 0, tzinfo=UTC))
    assert windows.is_open(night, datetime.datetime(2025, 1, 12, 3, 59, tzinfo=UTC))
    assert not windows.is_open(night, datetime.datetime(2025, 1, 12, 4, 0, tzinfo=UTC))
    assert not windows.is_open(night, datetime.datetime(2025, 1, 11, 3, 0, tzinfo=UTC))


def test_freeze_overrides_windows_and_next_open_skips_it() -> None:
    frozen = _windows(
        **BUSINESS,
        freeze=[{"start": "2025-01-06T00:00:00Z", "end": "2025-01-08T00:00:00Z", "reason": "year-end audit"}],
    )
    verdict = windows.evaluate(frozen, datetime.datetime(2025, 1, 6, 15, 0, tzinfo=UTC))
    assert (verdict.open, verdict.reason) == (False, "ChangeFreeze")
    assert "year-end audit" in verdict.message
    assert verdict.next_open == datetime.datetime(2025, 1, 8, 14, 0, tzinfo=UTC)


def test_freeze_without_allow_windows_reopens_at_its_end() -> None:
    frozen = _windows(
        freeze=[{"start": "2025-01-06T00:00:00Z", "end": "2025-01-07T00:00:00Z", "reason": "r"}]
    )
    verdict = windows.evaluate(frozen, datetime.datetime(2025, 1, 6, 15, 0, tzinfo=UTC))
    assert verdict.next_open == datetime.datetime(2025, 1, 7, tzinfo=UTC)


def test_closed_window_holds_an_approved_change_and_says_when(world, find) -> None:
    world.policy(
        changeWindows={"timezone": "UTC", "allow": [{"days": ["Tue"], "start": "09:00", "end": "17:00"}]}
    )
    _approved(world)
    d = world.evaluate()
    assert d.phase is phases.Phase.AWAITING_APPROVAL
    assert d.ready_for_approval
    assert find.gate(d, "production/change-windows").reason == "OutsideChangeWindow"
    assert d.next_look_at == datetime.datetime(2025, 1, 7, 9, 0, tzinfo=UTC)
    assert world.evaluate(d.next_look_at).phase is phases.Phase.APPROVED


def test_invalid_time_zone_blocks(world, find) -> None:
    world.policy(changeWindows={"timezone": "Mars/Olympus"})
    d = world.evaluate()
    assert d.phase is phases.Phase.PENDING
    assert find.gate(d, "production/change-windows").reason == "InvalidTimeZone"


def test_wait_timer_counts_from_ready_for_approval(world, find) -> None:
    world.policy(waitTimer="2h")
    _approved(world)
    world.promotion.status.spec_hash = world.spec_hash
    world.promotion.status.ready_for_approval_at = world.minutes(-60)
    d = world.evaluate()
    assert d.phase is phases.Phase.AWAITING_APPROVAL
    assert find.gate(d, "production/wait-timer").reason == "WaitTimerRunning"
    assert d.next_look_at == world.minutes(60)
    assert world.evaluate(world.minutes(60)).phase is phases.Phase.APPROVED


def test_wait_timer_restarts_with_a_new_spec(world, find) -> None:
    world.policy(waitTimer="2h")
    world.promotion.status.spec_hash = "sha256:" + "1" * 64  # an earlier cycle
    world.promotion.status.ready_for_approval_at = world.minutes(-600)
    assert find.gate(world.evaluate(), "production/wait-timer").passed is False


SOAK_IMAGE = "registry.example/web:1.4.2@sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (None, "SourceNotFound"),
        (facts.SourceState(image="registry.example/web:1.4.1", healthy=True), "SourceImageMismatch"),
        (facts.SourceState(image=SOAK_IMAGE, healthy=False), "SourceUnhealthy"),
        ("recent", "Soaking"),
        ("old", "Soaked"),
    ],
)
def test_source_soak(world, find, state, reason) -> None:
    world.change(source={"namespace": "staging", "name": "web", "minSoak": "30m"})
    if state == "recent":
        state = facts.SourceState(image=SOAK_IMAGE, healthy=True, available_since=world.minutes(-10))
    elif state == "old":
        state = facts.SourceState(
            image="registry.example/web@sha256:" + "0123456789abcdef" * 4,
            healthy=True,
            available_since=world.minutes(-31),
        )
    world.source = state
    _approved(world)
    d = world.evaluate()
    assert find.gate(d, "source").reason == reason
    assert d.phase is (phases.Phase.APPROVED if reason == "Soaked" else phases.Phase.AWAITING_APPROVAL)
    if reason == "Soaking":
        assert d.next_look_at == world.minutes(20)
