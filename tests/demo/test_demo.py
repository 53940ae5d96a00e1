"""``lockgate demo`` (``make demo``) tells the whole story and exits 0, with or without kubectl."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

LOCKGATE = pathlib.Path(sys.executable).parent / "lockgate"

KEY_LINES = (
    "Waiting for: waiting for 1 approval from engineering-leads (production/technical) and 1 approval from",
    "not counted: alice requested this change and cannot approve it (SelfApproval)",
    "counted: bob's approval counts for technical (1/2 approvals)",
    "counted: carol's approval counts for security (2/2 approvals)",
    'deployment "web" successfully rolled out',
    "refused at admission:",
    "It is RolledBack:",
    "rolled back: production runs registry.example/web:2.0@sha256:",
    "chain intact",
    "The four auditor questions",
    "lockgate_gate_latency_seconds (ready for approval -> approved)",
    "Lockgate demo passed: 10 steps in",
)


def run_demo(path: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [str(LOCKGATE), "demo"],
        env=dict(os.environ, PATH=path, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, time.monotonic() - started


@pytest.mark.kubectl
def test_the_demo_tells_the_story_with_kubectl_and_exits_0() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    result, seconds = run_demo(os.environ.get("PATH", ""))

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    out = " ".join(result.stdout.split())
    for line in (*KEY_LINES, "$ kubectl --context alice apply -f -", "$ kubectl --context alice get promo"):
        assert " ".join(line.split()) in out, line
    assert seconds < 120
    assert result.stderr == ""


def test_the_demo_uses_the_python_client_without_kubectl(tmp_path: pathlib.Path) -> None:
    result, _ = run_demo(str(tmp_path))  # an empty PATH: no kubectl

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    out = " ".join(result.stdout.split())
    assert "kubectl is not on PATH: the kubectl steps use the Kubernetes Python client" in out
    for line in KEY_LINES:
        if "successfully rolled out" in line:
            continue
        assert " ".join(line.split()) in out, line
    assert "(python client) wait until deployment/web is rolled out" in out
