"""The real kubectl authenticates, impersonates and is authorized by the embedded API as by a real cluster."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

# The server and its runner land separately from these modules; until then these tests are skipped.
runner = pytest.importorskip("lockgate.devcluster.runner")

pytestmark = pytest.mark.kubectl


@pytest.fixture(scope="module")
def cluster() -> Iterator[runner.RunningCluster]:
    with runner.start_in_thread(crd_dir=runner.default_crd_dir(), workload_delay=0.2) as running:
        yield running


def kubectl(cluster: runner.RunningCluster, context: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    return subprocess.run(
        ["kubectl", "--context", context, "--request-timeout=20s", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_approver_can_approve_promotions_in_production(cluster: runner.RunningCluster) -> None:
    answer = kubectl(
        cluster, "bob", "auth", "can-i", "approve", "promotions.lockgate.dev", "-n", "production"
    )
    assert (answer.returncode, answer.stdout.strip()) == (0, "yes"), answer.stderr
    answer = kubectl(
        cluster, "mallory", "auth", "can-i", "approve", "promotions.lockgate.dev", "-n", "production"
    )
    assert (answer.returncode, answer.stdout.strip()) == (1, "no"), answer.stderr


def test_user_without_rights_gets_the_kubernetes_forbidden_error(cluster: runner.RunningCluster) -> None:
    answer = kubectl(cluster, "mallory", "get", "promotions.lockgate.dev", "-n", "production")
    assert answer.returncode == 1
    assert (
        'Error from server (Forbidden): promotions.lockgate.dev is forbidden: User "mallory" cannot list '
        'resource "promotions" in API group "lockgate.dev" in the namespace "production"'
    ) in answer.stderr


def test_impersonation_with_as_and_as_group(cluster: runner.RunningCluster) -> None:
    as_mallory = kubectl(
        cluster,
        "admin",
        "auth",
        "can-i",
        "approve",
        "promotions.lockgate.dev",
        "-n",
        "production",
        "--as",
        "mallory",
    )
    assert as_mallory.stdout.strip() == "no", as_mallory.stderr
    as_lead = kubectl(
        cluster,
        "admin",
        "auth",
        "can-i",
        "approve",
        "promotions.lockgate.dev",
        "-n",
        "production",
        "--as",
        "someone",
        "--as-group",
        "engineering-leads",
    )
    assert as_lead.stdout.strip() == "yes", as_lead.stderr
    whoami = kubectl(
        cluster, "admin", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", "--as", "mallory"
    )
    if whoami.returncode == 0:  # SelfSubjectReview is optional in the embedded API
        assert whoami.stdout == "mallory"


def test_impersonation_needs_the_impersonate_verb(cluster: runner.RunningCluster) -> None:
    answer = kubectl(cluster, "alice", "get", "deployments", "-n", "staging", "--as", "bob")
    assert answer.returncode == 1
    assert (
        'users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" '
        "at the cluster scope"
    ) in answer.stderr


def test_can_i_list_shows_the_rules(cluster: runner.RunningCluster) -> None:
    answer = kubectl(cluster, "bob", "auth", "can-i", "--list", "-n", "production")
    assert answer.returncode == 0, answer.stderr
    lines = [line.split() for line in answer.stdout.splitlines()]
    assert any(
        line and line[0] == "promotions.lockgate.dev" and "approve" in " ".join(line) for line in lines
    ), answer.stdout
    mallory = kubectl(cluster, "mallory", "auth", "can-i", "--list", "-n", "production")
    assert mallory.returncode == 0, mallory.stderr
    assert "promotions.lockgate.dev" not in mallory.stdout


def test_unknown_token_is_unauthorized(cluster: runner.RunningCluster) -> None:
    answer = kubectl(cluster, "admin", "--token", "not-a-token", "get", "namespaces")
    assert answer.returncode == 1
    assert "Unauthorized" in answer.stderr or "provide credentials" in answer.stderr
