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
    if (spec.get("updateStrategy") or {}).get("type") != "OnDelete" or updated >= total:
        return None
    return _progressing(
        "OnDeleteStrategy",
        f"{updated} of {total} pods updated: the {kind}'s spec.updateStrategy is OnDelete, so a Pod takes the new "
        "image only when it is deleted; delete its Pods before the verification timeout, or use RollingUpdate",
    )


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
    if partition > 0:  # only ordinals >= partition take the new revision (a staged rollout): kubectl's rule
        wanted = max(replicas - partition, 0)
        if updated < wanted:
            return _progressing(
                "UpdatingPartition", f"{updated} of {wanted} pods updated (ordinals {partition} and up: partition)"
            )
        return RolloutHealth(
            RolloutState.COMPLETE,
            "PartitionedRolloutComplete",
            f"{wanted} pods at the new revision (ordinals {partition} and up); spec.updateStrategy.rollingUpdate."
            f"partition {partition} keeps the {min(partition, replicas)} below it on the previous image until lowered",
        )
    if updated < replicas:
        return _progressing("UpdatingReplicas", f"{updated} of {replicas} pods updated")
    if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
        return _progressing("WaitingForRevision", f"waiting for revision {status.get('updateRevision')}")
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
