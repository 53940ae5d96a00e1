"""Attacks on the gate, end to end against the embedded API and the operator, where no other test covers them."""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from lockgate.handlers import testing
from tests.lifecycle import manifests

REPO = pathlib.Path(__file__).resolve().parents[2]

ALICE_APPROVER = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-approver, namespace: production}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lockgate-approver}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
"""


@pytest.fixture
def stack() -> Iterator[testing.Stack]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH: these tests drive the real kubectl binary")
    with testing.stack() as running:
        yield running


def policy(max_age: str = "24h") -> str:
    text = (REPO / "examples" / "gatepolicy-production.yaml").read_text()
    return text.replace("maxAge: 24h", f"maxAge: {max_age}")


def verdicts(stack: testing.Stack, promotion: str = "web-2") -> dict[str, dict[str, Any]]:
    return {a["approval"]: a for a in stack.get("promo", promotion)["status"].get("approvals", [])}


def test_a_requester_who_holds_the_approve_permission_still_cannot_approve_her_own_change(
    stack: testing.Stack,
) -> None:
    stack.apply(policy())
    stack.apply(ALICE_APPROVER)
    assert (
        stack.kubectl(
            "auth", "can-i", "approve", "promotions.lockgate.dev", "-n", "production", context="alice"
        ).stdout.strip()
        == "yes"
    )
    stack.apply(manifests.promotion(author="dave"), context="alice")
    stack.wait_phase("web-2", "AwaitingApproval")

    stack.apply(manifests.approval("web-2-alice", "web-2"), context="alice")

    table = stack.wait_for(lambda: "web-2-alice" in (t := verdicts(stack)) and t, message="alice's approval judged")
    assert table["web-2-alice"]["counted"] is False
    assert table["web-2-alice"]["reason"] == "SelfApproval"
    assert table["web-2-alice"]["message"] == "alice requested this change and cannot approve it"
    assert stack.get("promo", "web-2")["status"]["countedApprovals"] == 0


def test_an_approval_older_than_max_age_expires_and_stops_counting(stack: testing.Stack) -> None:
    stack.apply(policy(max_age="3s"))
    stack.apply(manifests.promotion(), context="alice")
    stack.wait_phase("web-2", "AwaitingApproval")
    stack.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    stack.wait_for(lambda: verdicts(stack).get("web-2-bob", {}).get("counted"), message="bob's approval counted")

    def expired() -> dict[str, Any] | None:
        bob = verdicts(stack).get("web-2-bob", {})
        return bob if bob.get("reason") == "Expired" else None

    bob = stack.wait_for(expired, timeout=15, message="bob's approval to expire")
    assert bob["counted"] is False
    status = stack.get("promo", "web-2")["status"]
    assert status["countedApprovals"] == 0 and status["phase"] == "AwaitingApproval"
    assert "engineering-leads" in status["message"]
    stack.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    stack.wait_for(lambda: verdicts(stack).get("web-2-carol", {}).get("counted"), message="carol counted")
    assert stack.phase("web-2") == "AwaitingApproval"  # an expired approval never completes the gate
    assert stack.image() == "registry.example/web:1.0"
