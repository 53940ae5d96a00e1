"""The rollout controller of Deployments, StatefulSets and DaemonSets: status progresses as the real ones do.

``next_status`` computes each step's status as a pure function (what kube-controller-manager would write);
``WorkloadController`` only schedules the steps after writes, so ``kubectl rollout status`` succeeds, or
fails with ``ProgressDeadlineExceeded`` for images/annotations marked as broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

FAIL_ANNOTATION = "devcluster.lockgate.dev/fail-rollout"
BROKEN_IMAGE_MARK = "broken"
BROKEN_DIGEST_PREFIX = "sha256:dead"
DAEMONSET_NODES = 1  # the number of nodes a DaemonSet schedules onto in the embedded cluster

Phase = Literal["progressing", "complete", "failed", "scaled"]
WriteStatus = Callable[[str, str, str, dict[str, Any]], Awaitable[None]]

KINDS = {"deployments": "Deployment", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet"}
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand.SafeEncodeString


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _template(obj: dict[str, Any]) -> dict[str, Any]:
    template = (obj.get("spec") or {}).get("template") or {}
    return template if isinstance(template, dict) else {}


def template_hash(obj: dict[str, Any]) -> str:
    """A stable pod-template-hash: the same template always gives the same ReplicaSet/revision suffix."""
    digest = hashlib.sha256(json.dumps(_template(obj), sort_keys=True).encode()).digest()
    return "".join(_SAFE_ALPHABET[byte % len(_SAFE_ALPHABET)] for byte in digest[:10])


def template_changed(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    return old is None or _template(old) != _template(new)


def _images(obj: dict[str, Any]) -> list[str]:
    pod_spec = _template(obj).get("spec") or {}
    images = []
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or []:
            if isinstance(container, dict) and container.get("image"):
                images.append(str(container["image"]))
    return images


def is_rollout_failure(obj: dict[str, Any]) -> bool:
    """Whether the embedded cluster lets this workload's current template fail to roll out.

    Any image containing ``broken``, any image digest starting with ``sha256:dead``, or the annotation
    ``devcluster.lockgate.dev/fail-rollout: "true"``.
    """
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if str(annotations.get(FAIL_ANNOTATION, "")).lower() == "true":
        return True
    for image in _images(obj):
        if BROKEN_IMAGE_MARK in image:
            return True
        _, at, digest = image.partition("@")
        if at and digest.startswith(BROKEN_DIGEST_PREFIX):
            return True
    return False


def _replicas(obj: dict[str, Any]) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else max(int(value), 0)


def _generation(obj: dict[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 1)


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _condition(
    ctype: str, status: str, reason: str, message: str, now: str, previous: list[dict[str, Any]]
) -> dict[str, Any]:
    """A Deployment condition; ``lastTransitionTime`` moves only when the status flips."""
    transition = now
    for old in previous:
        if old.get("type") == ctype and old.get("status") == status and old.get("lastTransitionTime"):
            transition = str(old["lastTransitionTime"])
    return {
        "type": ctype,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }


def next_status(kind: str, obj: dict[str, Any], phase: Phase, *, now: str | None = None) -> dict[str, Any]:
    """The full status the controller writes for ``obj`` at ``phase`` of its rollout.

    ``obj`` carries the status before this step (the previous rollout's counts are kept where the real
    controller keeps them). ``kind`` is ``Deployment``, ``StatefulSet`` or ``DaemonSet`` (or the plural).
    Phases: ``progressing`` (the new template was just observed), ``complete``, ``failed`` (the progress
    deadline passed), ``scaled`` (replicas changed, template unchanged).
    """
    kind = KINDS.get(kind, kind)
    timestamp = now or _now()
    if kind == "Deployment":
        return _deployment_status(obj, phase, timestamp)
    if kind == "StatefulSet":
        return _statefulset_status(obj, phase)
    if kind == "DaemonSet":
        return _daemonset_status(obj, phase)
    raise ValueError(f"no rollout controller for kind {kind!r}")


def _succeeded_message(rs_name: str) -> str:
    return f'ReplicaSet "{rs_name}" has successfully progressed.'


def _deployment_status(obj: dict[str, Any], phase: Phase, now: str) -> dict[str, Any]:
    old: dict[str, Any] = obj.get("status") or {}
    previous_conditions: list[dict[str, Any]] = list(old.get("conditions") or [])
    desired = _replicas(obj)
    rs_name = f"{_name(obj)}-{template_hash(obj)}"
    old_available = min(int(old.get("availableReplicas") or 0), desired)
    status: dict[str, Any] = {"observedGeneration": _generation(obj)}

    if phase == "complete" or (phase == "progressing" and desired == 0):
        counts = {
            "replicas": desired,
            "updatedReplicas": desired,
            "readyReplicas": desired,
            "availableReplicas": desired,
        }
        progressing = _condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            _succeeded_message(rs_name),
            now,
            previous_conditions,
        )
    elif phase == "scaled":
        previous_progressing = [c for c in previous_conditions if c.get("type") == "Progressing"]
        failed = any(
            c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
            for c in previous_conditions
        )
        if failed:
            updated = min(int(old.get("updatedReplicas") or 0), desired)
            counts = {
                "replicas": max(desired, old_available + updated),
                "updatedReplicas": updated,
                "readyReplicas": old_available,
                "availableReplicas": old_available,
            }
        else:
            counts = {
                "replicas": desired,
                "updatedReplicas": desired,
                "readyReplicas": desired,
                "availableReplicas": desired,
            }
        progressing = (
            previous_progressing[0]
            if previous_progressing
            else _condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                _succeeded_message(rs_name),
                now,
                previous_conditions,
            )
        )
    else:
        # One surge pod of the new ReplicaSet is created; it becomes ready (complete) or never does (failed).
        updated = 1 if old_available else desired
        counts = {
            "replicas": old_available + updated,
            "updatedReplicas": updated,
            "readyReplicas": old_available,
            "availableReplicas": old_available,
        }
        if phase == "failed":
            progressing = _condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
                now,
                previous_conditions,
            )
        elif old_available:
            progressing = _condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                now,
                previous_conditions,
            )
        else:
            progressing = _condition(
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{rs_name}"',
                now,
                previous_conditions,
            )
    status.update(counts)
    unavailable = max(counts["replicas"] - counts["availableReplicas"], 0)
    if unavailable:
        status["unavailableReplicas"] = unavailable
    # maxUnavailable 25% (rounded down): the Deployment is available while enough replicas are.
    minimum = desired - desired // 4
    if counts["availableReplicas"] >= minimum:
        available = _condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now,
            previous_conditions,
        )
    else:
        available = _condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now,
            previous_conditions,
        )
    status["conditions"] = [available, progressing]
    return status


def _statefulset_status(obj: dict[str, Any], phase: Phase) -> dict[str, Any]:
    old: dict[str, Any] = obj.get("status") or {}
    desired = _replicas(obj)
    update_revision = f"{_name(obj)}-{template_hash(obj)}"
    current_revision = str(old.get("currentRevision") or update_revision)
    old_ready = min(int(old.get("readyReplicas") or 0), desired)
    status: dict[str, Any] = {
        "observedGeneration": _generation(obj),
        "replicas": desired,
        "updateRevision": update_revision,
        "collisionCount": 0,
    }
    if phase == "complete" or desired == 0 or (phase == "scaled" and current_revision == update_revision):
        status.update(
            readyReplicas=desired,
            availableReplicas=desired,
            currentReplicas=desired,
            updatedReplicas=desired,
            currentRevision=update_revision,
        )
        return status
    # Pods are replaced from the highest ordinal down; the first new one is not ready (yet, or ever).
    updated = 1 if current_revision != update_revision else 0
    if phase == "scaled":
        updated = min(int(old.get("updatedReplicas") or 0), desired)
    ready = min(old_ready, desired - 1) if current_revision != update_revision else 0
    status.update(
        readyReplicas=ready,
        availableReplicas=ready,
        currentReplicas=desired - updated,
        updatedReplicas=updated,
        currentRevision=current_revision,
    )
    if current_revision == update_revision:  # first rollout: every pod is new and not ready yet
        status.update(currentReplicas=desired, updatedReplicas=desired)
    return status


def _daemonset_status(obj: dict[str, Any], phase: Phase) -> dict[str, Any]:
    old: dict[str, Any] = obj.get("status") or {}
    desired = DAEMONSET_NODES
    if phase == "complete":
        updated, ready = desired, desired
    elif phase == "scaled":
        updated = min(int(old.get("updatedNumberScheduled") or 0), desired)
        ready = min(int(old.get("numberAvailable") or 0), desired)
    else:
        # maxUnavailable 1 on the single node: the old pod is replaced by a new one that is not ready yet
        # (progressing) or never becomes ready (failed).
        updated, ready = desired, 0
    status: dict[str, Any] = {
        "observedGeneration": _generation(obj),
        "currentNumberScheduled": desired,
        "desiredNumberScheduled": desired,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "updatedNumberScheduled": updated,
    }
    if desired - ready:
        status["numberUnavailable"] = desired - ready
    return status


class WorkloadController:
    """Schedules each workload's rollout steps after CORE reports a write of its main resource."""

    def __init__(self, write_status: WriteStatus, *, delay: float = 0.3) -> None:
        self._write_status = write_status
        self._delay = delay
        self._tasks: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._statuses: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._closed = False

    def observe(self, resource: str, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        """React to a create/update/patch of a Deployment, StatefulSet or DaemonSet (others are ignored)."""
        if self._closed or resource not in KINDS:
            return
        metadata = new.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            return
        key = (resource, str(metadata.get("namespace", "")), str(metadata.get("name", "")))
        changed = template_changed(old, new)
        scaled = old is not None and _replicas(old) != _replicas(new)
        generation_moved = old is None or _generation(old) != _generation(new)
        if not changed and not scaled and not generation_moved:
            return
        if old is None:
            self._statuses.pop(key, None)
        obj = copy.deepcopy(new)
        obj["status"] = copy.deepcopy(self._statuses.get(key, new.get("status") or {}))
        previous = self._tasks.pop(key, None)
        if previous is not None and not changed and not previous.done():
            # Scaling mid-rollout: let the rollout finish with the new replica count.
            previous.cancel()
            changed = True
        elif previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._tasks[key] = loop.create_task(self._run(key, obj, rollout=changed))

    async def _run(self, key: tuple[str, str, str], obj: dict[str, Any], *, rollout: bool) -> None:
        kind = KINDS[key[0]]
        if not rollout:
            await self._write(key, next_status(kind, obj, "scaled"))
            return
        obj["status"] = await self._write(key, next_status(kind, obj, "progressing"))
        await asyncio.sleep(self._delay)
        final: Phase = "failed" if is_rollout_failure(obj) else "complete"
        await self._write(key, next_status(kind, obj, final))

    async def _write(self, key: tuple[str, str, str], status: dict[str, Any]) -> dict[str, Any]:
        self._statuses[key] = status
        resource, namespace, name = key
        await self._write_status(resource, namespace, name, copy.deepcopy(status))
        return status

    def forget(self, resource: str, namespace: str, name: str) -> None:
        """Drop a deleted workload's rollout (optional for CORE to call)."""
        key = (resource, namespace, name)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
        self._statuses.pop(key, None)

    async def idle(self) -> None:
        """Wait until every scheduled rollout step has been written (for tests and clean shutdowns)."""
        while pending := [task for task in self._tasks.values() if not task.done()]:
            await asyncio.wait(pending)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
