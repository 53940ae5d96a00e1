"""The promotion lifecycle driven with the real kubectl as the sample users (issue 4's acceptance)."""

from __future__ import annotations

from typing import Any

from lockgate.handlers import testing
from tests.lifecycle import manifests

WEB_2 = f"registry.example/web:2.0@{manifests.DIGEST}"


def approvals_by_name(promo: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["approval"]: a for a in promo["status"].get("approvals", [])}


def test_two_approvals_deploy_verify_and_make_it_ready(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    promo = lockgate.wait_phase("web-2", "AwaitingApproval")
    assert "engineering-leads" in promo["status"]["message"] and "security-leads" in promo["status"]["message"]
    assert promo["status"]["requestedBy"]["username"] == "alice"

    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    promo = lockgate.wait_for(
        lambda: (p := lockgate.get("promo", "web-2"))["status"].get("countedApprovals") == 1 and p,
        message="bob's approval counted",
    )
    assert promo["status"]["phase"] == "AwaitingApproval"
    assert "security-leads" in promo["status"]["message"]
    assert lockgate.image() != WEB_2

    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    lockgate.wait_for(lambda: lockgate.image() == WEB_2, message="the image to change")
    rollout = lockgate.kubectl("rollout", "status", "deployment/web", "-n", "production", "--timeout=20s")
    assert "successfully rolled out" in rollout.stdout
    lockgate.kubectl("wait", "--for=condition=Ready", "promo/web-2", "-n", "production", "--timeout=20s")
    promo = lockgate.get("promo", "web-2")
    status = promo["status"]
    assert status["phase"] == "Succeeded"
    assert status["previousImage"] == "registry.example/web:1.0"
    assert status["gateLatencySeconds"] >= 0
    for field in ("readyForApprovalAt", "approvedAt", "deployedAt", "completedAt"):
        assert status[field]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == conditions["Deployed"] == conditions["Verified"] == conditions["Approved"] == "True"
    workload = lockgate.get("deployment", "web")
    assert workload["metadata"]["annotations"]["lockgate.dev/promotion"] == "production/web-2"
    assert workload["metadata"]["annotations"]["lockgate.dev/approved-by"] == "bob,carol"
    events = lockgate.kubectl("get", "events", "-n", "production", "-o", "json").stdout
    assert "web-2" in events and "Deploying" in events


def test_approvals_that_do_not_count_say_why(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(author="alice"), context="alice")
    promo = lockgate.wait_phase("web-2", "AwaitingApproval")
    spec_hash = promo["status"]["specHash"]
    lockgate.apply(manifests.approval("web-2-alice", "web-2"), context="alice")  # her own change
    lockgate.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: elsewhere}\n")
    refused = lockgate.apply(
        manifests.approval("web-2-bob-elsewhere", "web-2", namespace="elsewhere"),
        context="admin",
        check=False,
    )
    assert refused.returncode != 0 and "does not exist in namespace elsewhere" in refused.stderr
    lockgate.apply(
        manifests.approval("web-2-bob-elsewhere", "web-2", namespace="elsewhere", extra=f"  specHash: '{spec_hash}'"),
        context="admin",
    )
    stale = "sha256:" + "f" * 64
    lockgate.apply(manifests.approval("web-2-bob-stale", "web-2", extra=f"  specHash: '{stale}'"), context="bob")
    lockgate.kubectl("create", "-f", "-", context="mallory", input=manifests.approval("web-2-mallory", "web-2"))

    def listed() -> dict[str, dict[str, Any]] | None:
        table = approvals_by_name(lockgate.get("promo", "web-2"))
        wanted = {"web-2-alice", "elsewhere/web-2-bob-elsewhere", "web-2-bob-stale", "web-2-mallory"}
        return table if wanted <= set(table) else None

    table = lockgate.wait_for(listed, message="every approval listed")
    assert not any(a["counted"] for a in table.values())
    assert table["web-2-alice"]["reason"] == "SelfApproval"  # said before her missing approve permission
    assert table["elsewhere/web-2-bob-elsewhere"]["reason"] == "OtherNamespace"
    assert "spec" in table["web-2-bob-stale"]["message"].lower()
    assert "approve" in table["web-2-mallory"]["message"].lower()
    assert lockgate.get("promo", "web-2")["status"]["specHash"] == spec_hash
    approval = lockgate.get("appr", "web-2-alice")
    assert approval["status"]["counted"] is False


def test_a_failing_rollout_is_rolled_back(lockgate: testing.Stack) -> None:
    broken = "registry.example/web:2.0-broken"
    lockgate.apply(manifests.promotion(image=broken), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    promo = lockgate.wait_phase("web-2", "RolledBack", "Failed", timeout=30)
    assert promo["status"]["phase"] == "RolledBack", promo["status"]
    assert lockgate.image() == "registry.example/web:1.0"
    assert "ProgressDeadlineExceeded" in str(promo["status"]["conditions"])
    ready = next(c for c in promo["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"


def test_a_newer_promotion_supersedes_a_waiting_one(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion("web-2"), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.promotion("web-3", image="registry.example/web:3.0"), context="alice")
    promo = lockgate.wait_phase("web-2", "Superseded")
    assert "web-3" in promo["status"]["message"]
    assert lockgate.phase("web-3") == "AwaitingApproval"


def test_kubectl_wait_returns_only_when_ready(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    waited = lockgate.kubectl(
        "wait", "--for=condition=Ready", "promo/web-2", "-n", "production", "--timeout=1s", check=False
    )
    assert waited.returncode != 0


def test_the_declared_author_cannot_approve_their_own_change(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(author="Bob Builder <bob@example.com>"), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    table = lockgate.wait_for(
        lambda: (
            (t := approvals_by_name(lockgate.get("promo", "web-2"))) and "web-2-bob" in t and "web-2-carol" in t and t
        ),
        message="both approvals judged",
    )
    assert table["web-2-bob"]["counted"] is False
    assert "author" in table["web-2-bob"]["message"].lower()
    assert table["web-2-carol"]["counted"] is True
    assert lockgate.phase("web-2") == "AwaitingApproval"
    assert lockgate.image() == "registry.example/web:1.0"


def test_kubectl_get_lockgate_shows_all_three_kinds_with_their_columns(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")

    def table() -> str | None:
        out = lockgate.kubectl("get", "lockgate", "-n", "production").stdout
        return out if "gatepolicy.lockgate.dev/production   2" in out and " true" in out.lower() else None

    out = lockgate.wait_for(table, message="printer columns filled")
    assert "promotion.lockgate.dev/web-2" in out and "AwaitingApproval" in out and "1/2" in out
    assert "approval.lockgate.dev/web-2-bob" in out and "bob" in out
