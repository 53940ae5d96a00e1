import datetime

from lockgate.api import conditions, meta

T0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(minutes=5)


def test_new_condition_gets_now() -> None:
    result = conditions.set_condition([], "Ready", "False", "AwaitingApproval", "waiting", T0, 1)
    assert result == [
        meta.Condition(
            type="Ready",
            status="False",
            reason="AwaitingApproval",
            message="waiting",
            last_transition_time=T0,
            observed_generation=1,
        )
    ]


def test_transition_time_stays_when_status_does_not_flip() -> None:
    first = conditions.set_condition([], "Ready", "False", "AwaitingApproval", "waiting for 2", T0, 1)
    second = conditions.set_condition(
        first, "Ready", "False", "OutsideChangeWindow", "window opens 09:00", T1, 2
    )
    assert second[0].last_transition_time == T0
    assert (second[0].reason, second[0].message, second[0].observed_generation) == (
        "OutsideChangeWindow",
        "window opens 09:00",
        2,
    )


def test_transition_time_moves_when_status_flips() -> None:
    first = conditions.set_condition([], "Ready", "False", "AwaitingApproval", "", T0, 1)
    second = conditions.set_condition(first, "Ready", "True", "Succeeded", "", T1, 1)
    assert second[0].last_transition_time == T1


def test_other_conditions_are_kept_in_order_and_input_is_not_mutated() -> None:
    start = conditions.set_condition([], "Ready", "False", "A", "", T0, 1)
    start = conditions.set_condition(start, "Approved", "False", "B", "", T0, 1)
    snapshot = list(start)
    result = conditions.set_condition(start, "Ready", "True", "C", "", T1, 1)
    assert [c.type for c in result] == ["Ready", "Approved"]
    assert start == snapshot
    assert conditions.get_condition(result, "Approved") == start[1]
    assert conditions.get_condition(result, "Deployed") is None


def test_condition_dumps_in_metav1_shape() -> None:
    (condition,) = conditions.set_condition([], "Ready", "True", "Succeeded", "done", T0, 3)
    assert condition.to_k8s() == {
        "type": "Ready",
        "status": "True",
        "reason": "Succeeded",
        "message": "done",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
        "observedGeneration": 3,
    }
