"""``lockgate list``: Promotions with phase, approvals, requester and what they wait for."""

from __future__ import annotations

import json

from lockgate.handlers import testing
from tests.cli import conftest
from tests.lifecycle import manifests

WEB_2 = f"registry.example/web:2.0@{manifests.DIGEST}"


def test_list_shows_pending_promotions_across_namespaces(lockgate: testing.Stack, cli: conftest.Cli) -> None:
    lockgate.apply(manifests.promotion("web-2"), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.promotion("web-s", namespace="staging"), context="alice")
    lockgate.wait_for(lambda: lockgate.get("promo", "web-s", "staging").get("status", {}).get("message"))

    here = cli("list", context="bob")
    assert here.exit_code == 0, here.output
    header, *rows = here.stdout.strip().splitlines()
    assert header.split()[:3] == ["NAME", "PHASE", "TARGET"]
    assert len(rows) == 1
    assert rows[0].split()[:5] == ["web-2", "AwaitingApproval", "Deployment/web", WEB_2, "0/2"]
    assert "alice" in rows[0] and "waiting for 1 approval from engineering-leads" in rows[0]

    everywhere = cli("list", "-A", context="bob", namespace=None).stdout
    assert everywhere.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert "web-s" in everywhere and "web-2" in everywhere
    assert "no GatePolicy selects namespace 'staging'" in everywhere

    pending = cli("list", "--pending", "-A", context="bob", namespace=None).stdout
    assert "web-2" in pending and "web-s" not in pending


def test_list_says_when_there_is_nothing_and_prints_json(lockgate: testing.Stack, cli: conftest.Cli) -> None:
    empty = cli("list", "--pending", context="bob")
    assert empty.exit_code == 0 and empty.stdout == 'No pending promotions in namespace "production".\n'

    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    listing = json.loads(cli("list", "-o", "json", context="bob").stdout)
    assert listing["kind"] == "List"
    assert [p["metadata"]["name"] for p in listing["items"]] == ["web-2"]
