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


def statefulset(updated: int, *, partition: int | None = None, strategy: str = "RollingUpdate") -> dict[str, Any]:
    update: dict[str, Any] = {"type": strategy}
    if partition is not None:
        update["rollingUpdate"] = {"partition": partition}
    return {
        "metadata": {"generation": 2},
        "spec": {"replicas": 5, "updateStrategy": update},
        "status": {
            "observedGeneration": 2,
            "readyReplicas": 5,
            "updatedReplicas": updated,
            "currentRevision": "a",  # the controller leaves it at the old revision while a partition holds Pods back
            "updateRevision": "b",
        },
    }


def test_a_partitioned_statefulset_is_complete_once_the_ordinals_above_the_partition_are_updated() -> None:
    """A staged rollout (partition 3 of 5): Pods 3 and 4 take the new image, 0-2 keep the old one until the
    partition is lowered; kubectl rollout status calls that complete, and so does the verification."""
    assert health.judge("StatefulSet", statefulset(1, partition=3)).reason == "UpdatingPartition"
    done = health.judge("StatefulSet", statefulset(2, partition=3))
    assert done.state is health.RolloutState.COMPLETE and done.reason == "PartitionedRolloutComplete"
    assert "2 of 5 pods at the new revision" in done.message and "keeps the other 3" in done.message
    # partition 0 (the API server's default) is a whole rollout: every Pod, at the new revision
    assert health.judge("StatefulSet", statefulset(5, partition=0)).reason == "WaitingForRevision"
    assert health.judge("StatefulSet", statefulset(4, partition=0)).reason == "UpdatingReplicas"


def test_a_rollback_under_a_partition_waits_until_every_pod_is_back() -> None:
    """The rollback restores the template the Pods below the partition run: its revision is the current one
    again, and those 3 Pods count as updated; Pods 3 and 4 still run the bad image until they are replaced."""
    rolling_back = statefulset(3, partition=3)
    rolling_back["status"]["updateRevision"] = "a"  # = currentRevision
    assert health.judge("StatefulSet", rolling_back).reason == "UpdatingReplicas"
    rolling_back["status"]["updatedReplicas"] = 5
    assert health.judge("StatefulSet", rolling_back).state is health.RolloutState.COMPLETE


def test_a_partition_that_holds_back_every_pod_is_not_a_finished_rollout() -> None:
    held = health.judge("StatefulSet", statefulset(0, partition=5))
    assert held.state is health.RolloutState.PROGRESSING and held.reason == "PartitionHoldsAllPods"
    assert "until the partition is lowered" in held.message


def test_an_on_delete_workload_says_its_pods_take_the_image_only_when_deleted() -> None:
    judged = health.judge("StatefulSet", statefulset(0, strategy="OnDelete"))
    assert judged.state is health.RolloutState.PROGRESSING and judged.reason == "OnDeleteStrategy"
    assert "only when it is deleted" in judged.message and "RollingUpdate" in judged.message
    # Every Pod deleted and replaced: complete, though the controller may leave currentRevision behind with
    # OnDelete (kubernetes#106055); the fixture's currentRevision "a" is that.
    assert health.judge("StatefulSet", statefulset(5, strategy="OnDelete")).state is health.RolloutState.COMPLETE
    ds = {
        "metadata": {"generation": 1},
        "spec": {"updateStrategy": {"type": "OnDelete"}},
        "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 1},
    }
    assert health.judge("DaemonSet", ds).reason == "OnDeleteStrategy"
