"""``kubectl rollout status`` completes for a good image and fails at the progress deadline for a bad one."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

# The server and its runner land separately from these modules; until then these tests are skipped.
runner = pytest.importorskip("lockgate.devcluster.runner")

pytestmark = pytest.mark.kubectl


@pytest.fixture
def cluster() -> Iterator[runner.RunningCluster]:
    with runner.start_in_thread(crd_dir=runner.default_crd_dir(), workload_delay=0.3) as running:
        yield running


def kubectl(cluster: runner.RunningCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    return subprocess.run(
        ["kubectl", "--context", "admin", "--request-timeout=20s", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rollout_status_completes_after_set_image(cluster: runner.RunningCluster) -> None:
    changed = kubectl(
        cluster, "set", "image", "deployment/web", "web=registry.example/web:2", "-n", "staging"
    )
    assert changed.returncode == 0, changed.stderr
    status = kubectl(cluster, "rollout", "status", "deployment/web", "-n", "staging", "--timeout=30s")
    assert status.returncode == 0, status.stderr
    assert 'deployment "web" successfully rolled out' in status.stdout
    ready = kubectl(
        cluster,
        "get",
        "deployment/web",
        "-n",
        "staging",
        "-o",
        "jsonpath={.status.updatedReplicas}/{.spec.replicas}",
    )
    replicas = ready.stdout.split("/")
    assert replicas[0] == replicas[1]


def test_rollout_status_fails_for_a_broken_image(cluster: runner.RunningCluster) -> None:
    changed = kubectl(
        cluster, "set", "image", "deployment/web", "web=registry.example/web:broken", "-n", "staging"
    )
    assert changed.returncode == 0, changed.stderr
    status = kubectl(cluster, "rollout", "status", "deployment/web", "-n", "staging", "--timeout=30s")
    assert status.returncode == 1
    assert 'deployment "web" exceeded its progress deadline' in status.stderr
    reason = kubectl(
        cluster,
        "get",
        "deployment/web",
        "-n",
        "staging",
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Progressing")].reason}',
    )
    assert reason.stdout == "ProgressDeadlineExceeded"


def test_fail_annotation_fails_the_rollout_and_a_fix_recovers(cluster: runner.RunningCluster) -> None:
    patch = (
        '{"metadata":{"annotations":{"devcluster.lockgate.dev/fail-rollout":"true"}},'
        '"spec":{"template":{"metadata":{"labels":{"try":"1"}}}}}'
    )
    assert kubectl(cluster, "patch", "deployment/web", "-n", "staging", "-p", patch).returncode == 0
    failed = kubectl(cluster, "rollout", "status", "deployment/web", "-n", "staging", "--timeout=30s")
    assert failed.returncode == 1 and "exceeded its progress deadline" in failed.stderr
    fix = (
        '{"metadata":{"annotations":{"devcluster.lockgate.dev/fail-rollout":null}},'
        '"spec":{"template":{"metadata":{"labels":{"try":"2"}}}}}'
    )
    assert kubectl(cluster, "patch", "deployment/web", "-n", "staging", "-p", fix).returncode == 0
    recovered = kubectl(cluster, "rollout", "status", "deployment/web", "-n", "staging", "--timeout=30s")
    assert recovered.returncode == 0, recovered.stderr
