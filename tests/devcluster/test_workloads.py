"""The rollout controller progresses workload status as a cluster does, as ``kubectl rollout status`` sees."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lockgate.devcluster import workloads

NOW = "2024-05-01T12:00:00Z"


def deployment(
    image: str = "registry.example/web:1",
    replicas: int | None = 3,
    generation: int = 1,
    annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "staging",
            "generation": generation,
            "annotations": annotations or {},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }
    if replicas is not None:
        obj["spec"]["replicas"] = replicas
    if status is not None:
        obj["status"] = status
    return obj


def rollout_status(obj: dict[str, Any]) -> str:
    """kubectl's DeploymentStatusViewer (kubectl/pkg/polymorphichelpers/rollout_status.go)."""
    status = obj.get("status") or {}
    if obj["metadata"]["generation"] > status.get("observedGeneration", 0):
        return "waiting"
    for cond in status.get("conditions") or []:
        if cond["type"] == "Progressing" and cond["reason"] == "ProgressDeadlineExceeded":
            return "failed"
    replicas = obj["spec"].get("replicas", 1)
    if status.get("updatedReplicas", 0) < replicas:
        return "waiting"
    if status.get("replicas", 0) > status.get("updatedReplicas", 0):
        return "waiting"
    if status.get("availableReplicas", 0) < status.get("updatedReplicas", 0):
        return "waiting"
    return "done"


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_rollout_failure_markers() -> None:
    assert not workloads.is_rollout_failure(deployment("registry.example/web:2"))
    assert workloads.is_rollout_failure(deployment("registry.example/web:broken"))
    assert workloads.is_rollout_failure(deployment("registry.example/web@sha256:" + "dead" + "0" * 60))
    assert not workloads.is_rollout_failure(deployment("registry.example/web@sha256:" + "beef" + "0" * 60))
    assert workloads.is_rollout_failure(deployment(annotations={workloads.FAIL_ANNOTATION: "true"}))


def test_new_deployment_progresses_then_completes() -> None:
    obj = deployment()
    progressing = workloads.next_status("Deployment", obj, "progressing", now=NOW)
    assert progressing["observedGeneration"] == 1
    assert conditions(progressing) == {
        "Available": ("False", "MinimumReplicasUnavailable"),
        "Progressing": ("True", "NewReplicaSetCreated"),
    }
    assert rollout_status({**obj, "status": progressing}) == "waiting"
    complete = workloads.next_status("Deployment", {**obj, "status": progressing}, "complete", now=NOW)
    assert {
        k: complete[k] for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    } == {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
    assert conditions(complete) == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    rs = f"web-{workloads.template_hash(obj)}"
    assert complete["conditions"][1]["message"] == f'ReplicaSet "{rs}" has successfully progressed.'
    assert rollout_status({**obj, "status": complete}) == "done"


def test_image_change_keeps_old_replicas_available_while_progressing() -> None:
    done = workloads.next_status("Deployment", deployment(), "complete", now=NOW)
    updated = deployment("registry.example/web:2", generation=2, status=done)
    progressing = workloads.next_status("Deployment", updated, "progressing", now="2024-05-01T12:01:00Z")
    assert progressing["observedGeneration"] == 2
    assert progressing["updatedReplicas"] == 1 and progressing["availableReplicas"] == 3
    assert conditions(progressing)["Progressing"] == ("True", "ReplicaSetUpdated")
    # Available did not flip, so its transition time stays.
    assert progressing["conditions"][0]["lastTransitionTime"] == NOW
    assert rollout_status({**updated, "status": progressing}) == "waiting"


def test_broken_image_times_out_with_progress_deadline_exceeded() -> None:
    done = workloads.next_status("Deployment", deployment(), "complete", now=NOW)
    broken = deployment("registry.example/web:broken", generation=2, status=done)
    progressing = workloads.next_status("Deployment", broken, "progressing", now=NOW)
    failed = workloads.next_status("Deployment", {**broken, "status": progressing}, "failed", now=NOW)
    progress = failed["conditions"][1]
    assert (progress["status"], progress["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert (
        progress["message"]
        == f'ReplicaSet "web-{workloads.template_hash(broken)}" has timed out progressing.'
    )
    assert failed["updatedReplicas"] < 3 and failed["availableReplicas"] == 3
    assert conditions(failed)["Available"] == ("True", "MinimumReplicasAvailable")
    assert rollout_status({**broken, "status": failed}) == "failed"


def test_scaling_only_changes_counts() -> None:
    done = workloads.next_status("Deployment", deployment(), "complete", now=NOW)
    scaled = workloads.next_status(
        "Deployment", deployment(replicas=5, generation=2, status=done), "scaled", now=NOW
    )
    assert scaled["replicas"] == scaled["availableReplicas"] == 5
    assert scaled["conditions"][1] == done["conditions"][1]


def test_statefulset_revisions() -> None:
    sts = deployment() | {"kind": "StatefulSet"}
    first = workloads.next_status("StatefulSet", sts, "complete")
    assert first["currentRevision"] == first["updateRevision"] and first["readyReplicas"] == 3
    changed = copy.deepcopy(sts)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/web:broken"
    changed["status"] = first
    progressing = workloads.next_status("statefulsets", changed, "progressing")
    assert progressing["updateRevision"] != progressing["currentRevision"] == first["currentRevision"]
    assert progressing["updatedReplicas"] == 1 and progressing["readyReplicas"] == 2
    failed = workloads.next_status("statefulsets", {**changed, "status": progressing}, "failed")
    assert failed["currentRevision"] == first["currentRevision"] and failed["readyReplicas"] < 3
    complete = workloads.next_status("statefulsets", {**changed, "status": progressing}, "complete")
    assert complete["currentRevision"] == complete["updateRevision"] and complete["updatedReplicas"] == 3


def test_daemonset_counts() -> None:
    ds = deployment(replicas=None) | {"kind": "DaemonSet"}
    progressing = workloads.next_status("DaemonSet", ds, "progressing")
    assert progressing["numberAvailable"] < progressing["desiredNumberScheduled"]
    complete = workloads.next_status("DaemonSet", ds, "complete")
    assert (
        complete["updatedNumberScheduled"]
        == complete["numberAvailable"]
        == complete["desiredNumberScheduled"]
    )
    assert complete["observedGeneration"] == 1


@given(replicas=st.integers(min_value=0, max_value=50), broken=st.booleans(), old=st.integers(0, 50))
def test_final_phase_is_what_kubectl_reports(replicas: int, broken: bool, old: int) -> None:
    image = "registry.example/web:broken" if broken else "registry.example/web:2"
    obj = deployment(
        image, replicas=replicas, generation=2, status={"availableReplicas": old, "observedGeneration": 1}
    )
    progressing = workloads.next_status("Deployment", obj, "progressing", now=NOW)
    if replicas:
        assert rollout_status({**obj, "status": progressing}) == "waiting"
    final = "failed" if workloads.is_rollout_failure(obj) else "complete"
    status = workloads.next_status("Deployment", {**obj, "status": progressing}, final, now=NOW)
    assert rollout_status({**obj, "status": status}) == ("failed" if broken else "done")
    assert status["availableReplicas"] <= max(replicas, 0)


class Recorder:
    def __init__(self) -> None:
        self.writes: list[tuple[str, str, str, dict[str, Any]]] = []

    async def __call__(self, resource: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.writes.append((resource, namespace, name, status))


async def test_controller_writes_progressing_then_complete_after_delay() -> None:
    recorder = Recorder()
    controller = workloads.WorkloadController(recorder, delay=0.05)
    obj = deployment()
    controller.observe("deployments", None, obj)
    await asyncio.sleep(0.01)
    assert [w[:3] for w in recorder.writes] == [("deployments", "staging", "web")]
    assert rollout_status({**obj, "status": recorder.writes[-1][3]}) == "waiting"
    await asyncio.wait_for(controller.idle(), timeout=2)
    assert rollout_status({**obj, "status": recorder.writes[-1][3]}) == "done"
    # A change that is not to the spec (labels, annotations) leaves the status alone.
    relabelled = copy.deepcopy(obj)
    relabelled["metadata"]["labels"] = {"team": "web"}
    controller.observe("deployments", obj, relabelled)
    await asyncio.wait_for(controller.idle(), timeout=2)
    assert len(recorder.writes) == 2
    broken = deployment("registry.example/web:broken", generation=2)
    controller.observe("deployments", obj, broken)
    await asyncio.wait_for(controller.idle(), timeout=2)
    assert rollout_status({**broken, "status": recorder.writes[-1][3]}) == "failed"
    assert recorder.writes[-1][3]["availableReplicas"] == 3
    await controller.close()


async def test_controller_ignores_other_resources_and_stops_on_close() -> None:
    recorder = Recorder()
    controller = workloads.WorkloadController(recorder, delay=10)
    controller.observe("configmaps", None, {"metadata": {"name": "x", "namespace": "y"}})
    controller.observe("statefulsets", None, deployment() | {"kind": "StatefulSet"})
    await asyncio.sleep(0.01)
    await asyncio.wait_for(controller.close(), timeout=2)
    assert [w[0] for w in recorder.writes] == ["statefulsets"]
