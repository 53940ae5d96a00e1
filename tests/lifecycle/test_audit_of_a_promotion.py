"""After a promotion, the audit trail holds one record per decision, in order, and detects tampering."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from lockgate.handlers import testing
from tests.lifecycle import manifests


def lockgate_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from lockgate.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_promotion(stack: testing.Stack) -> None:
    stack.apply(manifests.promotion(author="dave"), context="alice")
    stack.wait_phase("web-2", "AwaitingApproval")
    stack.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    stack.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    stack.wait_phase("web-2", "Succeeded", timeout=30)


def test_one_record_per_decision_with_who_approved_before_the_deploy(lockgate: testing.Stack) -> None:
    run_promotion(lockgate)
    exported = lockgate_cli("audit", "export", "--sqlite", str(lockgate.audit_path), "--format", "json")
    assert exported.returncode == 0, exported.stderr
    records = [r for r in json.loads(exported.stdout) if r["promotion"]["name"] == "web-2"]
    events = [r["event"] for r in records]
    assert events == ["approved", "deploying", "deployed", "verified"]
    deploying = records[1]
    assert deploying["requester"]["username"] == "alice"
    assert deploying["author"] == "dave"
    assert sorted(a["username"] for a in deploying["approvers"]) == ["bob", "carol"]
    assert deploying["previousImage"] == "registry.example/web:1.0"
    assert deploying["image"].endswith(manifests.DIGEST)
    assert all(r["stream"] == "DEPLOY#production" for r in records)
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    # Every record of the cycle names the policies that decided it the same way: {name, passed, verdicts}.
    assert [p["name"] for p in deploying["policies"]] == ["production"], deploying["policies"]
    assert all(r["policies"] == deploying["policies"] for r in records), [r["policies"] for r in records]

    verified = lockgate_cli("audit", "verify", "--sqlite", str(lockgate.audit_path))
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout + verified.stderr


def test_editing_one_byte_of_the_audit_file_names_the_broken_record(lockgate: testing.Stack) -> None:
    run_promotion(lockgate)
    lockgate.stop_operator()
    data = bytearray(lockgate.audit_path.read_bytes())
    at = data.find(b"registry.example/web:1.0")
    assert at > 0
    data[at + len("registry.example/web:")] = ord("9")  # previousImage 1.0 -> 9.0 in one stored record
    lockgate.audit_path.write_bytes(bytes(data))
    with sqlite3.connect(lockgate.audit_path) as db:  # the file is still a readable database
        db.execute("select count(*) from sqlite_master").fetchone()
    verified = lockgate_cli("audit", "verify", "--sqlite", str(lockgate.audit_path))
    assert verified.returncode == 1
    assert "edited" in verified.stdout + verified.stderr
    assert "seq" in (verified.stdout + verified.stderr).lower() or "record" in (verified.stdout + verified.stderr)
