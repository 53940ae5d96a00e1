"""``kubectl rollout status`` for StatefulSets and DaemonSets, driven by the embedded workload controller."""

from __future__ import annotations

import pytest

from lockgate.devcluster import runner, testing

pytestmark = [pytest.mark.kubectl, pytest.mark.usefixtures("kubectl_available")]

STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "registry.example/db:1"}]}
"""

DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: "registry.example/agent:1"}]}
"""


def rollout(cluster: runner.RunningCluster, workload: str, timeout: str = "20s") -> tuple[int, str]:
    result = testing.kubectl(
        cluster, "rollout", "status", workload, "-n", "staging", f"--timeout={timeout}", timeout=40
    )
    return result.returncode, result.stdout + result.stderr


def jsonpath(cluster: runner.RunningCluster, workload: str, path: str) -> str:
    return testing.kubectl(cluster, "get", workload, "-n", "staging", "-o", f"jsonpath={path}").stdout


def test_statefulset_rollout_status_completes_and_a_broken_image_never_does(
    devcluster: runner.RunningCluster,
) -> None:
    applied = testing.kubectl(devcluster, "apply", "-n", "staging", "-f", "-", input=STATEFULSET)
    assert applied.returncode == 0, applied.stderr
    code, out = rollout(devcluster, "statefulset/db")
    # updateStrategy.rollingUpdate.partition is defaulted to 0, so kubectl reports a partitioned roll out
    assert code == 0 and "partitioned roll out complete: 2 new pods have been updated" in out, out

    changed = testing.kubectl(devcluster, "set", "image", "statefulset/db", "db=registry.example/db:2", "-n", "staging")
    assert changed.returncode == 0, changed.stderr
    code, out = rollout(devcluster, "statefulset/db")
    assert code == 0 and "partitioned roll out complete: 2 new pods have been updated" in out, out
    revisions = jsonpath(devcluster, "statefulset/db", "{.status.currentRevision} {.status.updateRevision}")
    current, update = revisions.split()
    assert current == update
    assert jsonpath(devcluster, "statefulset/db", "{.status.observedGeneration}") == "2"

    testing.kubectl(devcluster, "set", "image", "statefulset/db", "db=registry.example/db:broken", "-n", "staging")
    code, out = rollout(devcluster, "statefulset/db", timeout="3s")
    assert code == 1, out
    assert "timed out waiting for the condition" in out or "Waiting for" in out, out


def test_daemonset_rollout_status_completes_and_a_broken_image_never_does(
    devcluster: runner.RunningCluster,
) -> None:
    applied = testing.kubectl(devcluster, "apply", "-n", "staging", "-f", "-", input=DAEMONSET)
    assert applied.returncode == 0, applied.stderr
    code, out = rollout(devcluster, "daemonset/agent")
    assert code == 0 and 'daemon set "agent" successfully rolled out' in out, out

    changed = testing.kubectl(
        devcluster, "set", "image", "daemonset/agent", "agent=registry.example/agent:2", "-n", "staging"
    )
    assert changed.returncode == 0, changed.stderr
    code, out = rollout(devcluster, "daemonset/agent")
    assert code == 0 and 'daemon set "agent" successfully rolled out' in out, out
    assert jsonpath(devcluster, "daemonset/agent", "{.status.observedGeneration}") == "2"

    testing.kubectl(
        devcluster, "set", "image", "daemonset/agent", "agent=registry.example/agent:broken", "-n", "staging"
    )
    code, out = rollout(devcluster, "daemonset/agent", timeout="3s")
    assert code == 1, out
    assert "timed out waiting for the condition" in out or "Waiting for" in out, out
