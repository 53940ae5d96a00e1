"""``lockgate explain``: why a Promotion is where it is, in sentences."""

from __future__ import annotations

import json

from lockgate.handlers import testing
from tests.cli import conftest
from tests.lifecycle import manifests


def test_explain_a_waiting_promotion(lockgate: testing.Stack, cli: conftest.Cli) -> None:
    lockgate.apply(manifests.promotion(author="alice"), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.approval("web-2-alice", "web-2"), context="alice")
    lockgate.wait_for(lambda: lockgate.get("promo", "web-2")["status"].get("approvals"))

    result = cli("explain", "web-2", context="bob")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "alice requested Promotion production/web-2" in out
    assert "It is AwaitingApproval: waiting for 1 approval from engineering-leads" in out
    assert "Every policy rule passed (4 rules)." in out
    assert "0 of 2 required approvals count: none." in out
    assert "alice's approve web-2-alice does not count: alice requested this change and cannot approve it" in out
    assert "Next: an approver named above runs `kubectl lockgate approve web-2 -n production`" in out
    assert "Event Waiting" in out


def test_explain_a_rolled_back_promotion(lockgate: testing.Stack, cli: conftest.Cli) -> None:
    lockgate.apply(manifests.promotion(image="registry.example/web:2.0-broken"), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    cli("approve", "web-2", context="bob")
    cli("approve", "web-2", context="carol")
    lockgate.wait_phase("web-2", "RolledBack", timeout=40)

    out = cli("explain", "web-2", context="bob").stdout

    assert "It is RolledBack" in out
    assert "2 of 2 required approvals count: bob (production/technical), carol (production/security)." in out
    assert "Verified: no" in out
    assert "the operator restored registry.example/web:1.0" in out
    as_json = json.loads(cli("explain", "web-2", "-o", "json", context="bob").stdout)
    assert as_json["promotion"] == "production/web-2" and len(as_json["explanation"]) > 3
