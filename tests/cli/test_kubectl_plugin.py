"""``kubectl lockgate ...``: the console script ``kubectl-lockgate`` works as a kubectl plugin."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from lockgate.handlers import testing
from tests.lifecycle import manifests

BIN = pathlib.Path(sys.executable).parent


def kubectl_lockgate(stack: testing.Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        KUBECONFIG=str(stack.cluster.kubeconfig),
        KUBECACHEDIR=str(stack.cluster.kubeconfig.parent / "kube-cache"),
    )
    return subprocess.run(
        ["kubectl", "lockgate", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_kubectl_lockgate_status_says_what_it_waits_for(lockgate: testing.Stack) -> None:
    assert (BIN / "kubectl-lockgate").exists(), "the kubectl-lockgate console script is not installed"
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")

    result = kubectl_lockgate(lockgate, "status", "web-2", "-n", "production", "--context", "bob")

    assert result.returncode == 0, result.stderr
    assert (
        "Waiting for: waiting for 1 approval from engineering-leads (production/technical) and "
        "1 approval from security-leads (production/security)"
    ) in result.stdout

    approved = kubectl_lockgate(lockgate, "approve", "web-2", "-n", "production", "--context", "bob")
    assert approved.returncode == 0, approved.stderr
    assert "counted: bob's approval counts for technical (1/2 approvals)" in approved.stdout


def test_kubectl_lockgate_errors_are_one_line_without_a_traceback(lockgate: testing.Stack) -> None:
    result = kubectl_lockgate(lockgate, "status", "missing", "-n", "production", "--context", "mallory")

    assert result.returncode == 1
    assert result.stderr.startswith('error: promotions.lockgate.dev "missing" is forbidden: User "mallory"')
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1

    usage = kubectl_lockgate(lockgate, "--help")
    assert "kubectl lockgate" in usage.stdout
