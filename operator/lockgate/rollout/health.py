"""Judging a workload's rollout from its status, as ``kubectl rollout status`` does. Pure."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any


class RolloutState(enum.StrEnum):
    PROGRESSING = "Progressing"
    COMPLETE = "Complete"
    FAILED = "Failed"


@dataclasses.dataclass(frozen=True)
class RolloutHealth:
    state: RolloutState
    reason: str
    message: str


def _progressing(reason: str, message: str) -> RolloutHealth:
    return RolloutHealth(RolloutState.PROGRESSING, reason, message)


def _int(value: Any) -> int:
    return int(value or 0)


def judge(kind: str, workload: Mapping[str, Any], min_generation: int = 0) -> RolloutHealth:
    """Where the rollout of ``workload`` stands; ``min_generation`` is the generation our patch produced."""
    judged = _judge(kind, workload, min_generation)
    if judged.state is RolloutState.PROGRESSING and paused(kind, workload):  # it waits for a resume: say so
        why = f"the Deployment is paused (spec.paused): its rollout waits until it is resumed ({judged.message})"
        return _progressing("DeploymentPaused", why)
    return judged


def _judge(kind: str, workload: Mapping[str, Any], min_generation: int) -> RolloutHealth:
    meta = workload.get("metadata", {})
    spec = workload.get("spec", {})
    status = workload.get("status") or {}
    generation = max(_int(meta.get("generation")), min_generation)
    observed = _int(status.get("observedGeneration"))
    if observed < generation:
        return _progressing(
            "WaitingForController", f"waiting for the {kind} controller to observe generation {generation}"
        )
    if kind == "Deployment":
        return _deployment(spec, status)
    if kind == "StatefulSet":
        return _statefulset(spec, status)
    if kind == "DaemonSet":
        return _daemonset(spec, status)
    return RolloutHealth(RolloutState.FAILED, "UnsupportedKind", f"cannot judge rollouts of kind {kind}")


def paused(kind: str, workload: Mapping[str, Any]) -> bool:
    """Whether ``workload`` is a paused Deployment: its controller rolls nothing out until it is resumed."""
    return kind == "Deployment" and bool((workload.get("spec") or {}).get("paused"))


def _deployment(spec: Mapping[str, Any], status: Mapping[str, Any]) -> RolloutHealth:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return RolloutHealth(
                RolloutState.FAILED,
                "ProgressDeadlineExceeded",
                f"the Deployment exceeded its progress deadline: {condition.get('message', '')}".rstrip(": "),
            )
    replicas = _int(spec.get("replicas", 1))
    updated = _int(status.get("updatedReplicas"))
    if updated < replicas:
        return _progressing("UpdatingReplicas", f"{updated} of {replicas} replicas updated")
    if _int(status.get("replicas")) > updated:
        old = _int(status.get("replicas")) - updated
        return _progressing("TerminatingOldReplicas", f"{old} old replicas pending termination")
    available = _int(status.get("availableReplicas"))
    if available < updated:
        return _progressing("WaitingForAvailability", f"{available} of {updated} updated replicas available")
    return RolloutHealth(
        RolloutState.COMPLETE, "RolloutComplete", f"{updated} of {replicas} replicas updated and available"
    )


def _on_delete(kind: str, spec: Mapping[str, Any], updated: int, total: int) -> RolloutHealth | None:
    """A workload whose Pods take a new template only when deleted, not all of them yet: say what to do."""
    if not _is_on_delete(spec) or updated >= total:
        return None
    return _progressing(
        "OnDeleteStrategy",
        f"{updated} of {total} pods updated: the {kind}'s spec.updateStrategy is OnDelete, so a Pod takes the new "
        "template only when it is deleted; delete its Pods to roll it out, or use RollingUpdate",
    )


def _is_on_delete(spec: Mapping[str, Any]) -> bool:
    return (spec.get("updateStrategy") or {}).get("type") == "OnDelete"


def _statefulset(spec: Mapping[str, Any], status: Mapping[str, Any]) -> RolloutHealth:
    replicas = _int(spec.get("replicas", 1))
    updated = _int(status.get("updatedReplicas"))
    on_delete = _on_delete("StatefulSet", spec, updated, replicas)
    if on_delete is not None:
        return on_delete
    ready = _int(status.get("readyReplicas"))
    if ready < replicas:
        return _progressing("WaitingForReadiness", f"{ready} of {replicas} pods ready")
    partition = _int(((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition"))
    revision, current = status.get("updateRevision"), status.get("currentRevision")
    # A staged rollout (kubectl's rule): only ordinals >= partition take the new revision, and the controller
    # never makes it current. When the template's revision is the current one (a rollback, or a deploy of what
    # the Pods below the partition run), every Pod must be back at it: updatedReplicas counts them all.
    if partition > 0 and not _is_on_delete(spec) and revision and revision != current:
        wanted = replicas - partition
        if wanted <= 0:
            return _progressing(
                "PartitionHoldsAllPods",
                f"spec.updateStrategy.rollingUpdate.partition {partition} is not below the {replicas} replicas: no "
                "Pod takes the new image until the partition is lowered",
            )
        if updated < wanted:
            return _progressing(
                "UpdatingPartition",
                f"{updated} of {wanted} pods updated (partition {partition}: ordinals {partition} and up take it)",
            )
        return RolloutHealth(
            RolloutState.COMPLETE,
            "PartitionedRolloutComplete",
            f"{updated} of {replicas} pods at the new revision; spec.updateStrategy.rollingUpdate.partition "
            f"{partition} keeps the other {replicas - updated} on the previous one until it is lowered",
        )
    if updated < replicas:
        return _progressing("UpdatingReplicas", f"{updated} of {replicas} pods updated")
    # With OnDelete the controller may never make the new revision current (kubernetes#106055): every Pod
    # updated and ready is the whole rollout.
    if not _is_on_delete(spec) and revision and current != revision:
        return _progressing("WaitingForRevision", f"waiting for revision {revision}")
    return RolloutHealth(RolloutState.COMPLETE, "RolloutComplete", f"{replicas} pods at the new revision")


def _daemonset(spec: Mapping[str, Any], status: Mapping[str, Any]) -> RolloutHealth:
    desired = _int(status.get("desiredNumberScheduled"))
    updated = _int(status.get("updatedNumberScheduled"))
    on_delete = _on_delete("DaemonSet", spec, updated, desired)
    if on_delete is not None:
        return on_delete
    if updated < desired:
        return _progressing("UpdatingPods", f"{updated} of {desired} pods updated")
    available = _int(status.get("numberAvailable"))
    if available < desired:
        return _progressing("WaitingForAvailability", f"{available} of {desired} updated pods available")
    return RolloutHealth(RolloutState.COMPLETE, "RolloutComplete", f"{desired} pods updated and available")
