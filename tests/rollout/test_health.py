"""Rollout health is judged as `kubectl rollout status` judges it."""

from __future__ import annotations

from typing import Any

from lockgate.rollout import health


def deployment(
    generation: int = 2,
    observed: int = 2,
    replicas: int = 2,
    updated: int = 2,
    available: int = 2,
    total: int | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "replicas": total if total is not None else updated,
            "conditions": conditions or [],
        },
    }


def test_complete_when_all_replicas_updated_and_available() -> None:
    assert health.judge("Deployment", deployment()).state is health.RolloutState.COMPLETE


def test_waits_for_the_controller_to_observe_our_generation() -> None:
    judged = health.judge("Deployment", deployment(observed=1))
    assert judged.state is health.RolloutState.PROGRESSING
    assert judged.reason == "WaitingForController"


def test_a_stale_status_from_before_our_patch_is_not_complete() -> None:
    judged = health.judge("Deployment", deployment(generation=2, observed=2), min_generation=3)
    assert judged.state is health.RolloutState.PROGRESSING


def test_progress_deadline_exceeded_is_a_failure() -> None:
    judged = health.judge(
        "Deployment",
        deployment(
            updated=1,
            conditions=[
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": "timed out",
                }
            ],
        ),
    )
    assert judged.state is health.RolloutState.FAILED
    assert judged.reason == "ProgressDeadlineExceeded"


def test_partial_update_and_old_replicas_and_availability_are_progress() -> None:
    assert health.judge("Deployment", deployment(updated=1)).reason == "UpdatingReplicas"
    assert health.judge("Deployment", deployment(total=3)).reason == "TerminatingOldReplicas"
    assert health.judge("Deployment", deployment(available=1)).reason == "WaitingForAvailability"


def test_statefulset_and_daemonset() -> None:
    sts = {
        "metadata": {"generation": 1},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 1,
            "readyReplicas": 2,
            "updatedReplicas": 2,
            "currentRevision": "a",
            "updateRevision": "b",
        },
    }
    assert health.judge("StatefulSet", sts).reason == "WaitingForRevision"
    sts["status"]["currentRevision"] = "b"
    assert health.judge("StatefulSet", sts).state is health.RolloutState.COMPLETE
    ds = {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "desiredNumberScheduled": 3,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
        },
    }
    assert health.judge("DaemonSet", ds).reason == "WaitingForAvailability"


def test_a_paused_deployment_waits_for_a_resume_and_says_so() -> None:
    stalled = deployment(updated=1)
    stalled["spec"]["paused"] = True
    judged = health.judge("Deployment", stalled)
    assert (judged.state, judged.reason) == (health.RolloutState.PROGRESSING, "DeploymentPaused")
    assert "its rollout waits until it is resumed (1 of 2 replicas updated)" in judged.message
    done = deployment()
    done["spec"]["paused"] = True
    assert health.judge("Deployment", done).state is health.RolloutState.COMPLETE  # paused after it finished
