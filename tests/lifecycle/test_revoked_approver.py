"""An approver whose RBAC permission is revoked before the deploy no longer counts (no stale cache opens the gate)."""

from __future__ import annotations

import json

from lockgate.handlers import testing
from tests.lifecycle import manifests


def test_revoking_approve_permission_before_the_last_approval_holds_the_gate(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.wait_for(
        lambda: lockgate.get("promo", "web-2")["status"].get("countedApprovals") == 1, message="bob counted"
    )
    binding = lockgate.get("clusterrolebinding", "lockgate-approvers", namespace="")
    binding["subjects"] = [s for s in binding["subjects"] if s["name"] != "engineering-leads"]
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        binding["metadata"].pop(key, None)
    lockgate.kubectl("replace", "-f", "-", input=json.dumps(binding))
    assert (
        lockgate.kubectl(
            "auth", "can-i", "approve", "promotions.lockgate.dev", "-n", "production", context="bob", check=False
        ).stdout.strip()
        == "no"
    )
    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    table = lockgate.wait_for(
        lambda: (
            {a["approval"]: a for a in lockgate.get("promo", "web-2")["status"]["approvals"]}.get("web-2-carol")
            and {a["approval"]: a for a in lockgate.get("promo", "web-2")["status"]["approvals"]}
        ),
        message="carol judged",
    )
    assert table["web-2-carol"]["counted"] is True
    assert table["web-2-bob"]["counted"] is False and table["web-2-bob"]["reason"] == "NotAuthorized"
    assert lockgate.phase("web-2") == "AwaitingApproval"
    assert lockgate.image() == "registry.example/web:1.0"
