"""``lockgate status``: what a Promotion waits for, its gates, who counted and why others did not."""

from __future__ import annotations

import json

import yaml

from lockgate.handlers import testing
from tests.cli import conftest
from tests.lifecycle import manifests


def test_a_waiting_promotion_says_exactly_what_it_waits_for(lockgate: testing.Stack, cli: conftest.Cli) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    promo = lockgate.wait_phase("web-2", "AwaitingApproval")

    result = cli("status", "web-2", context="bob")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Promotion production/web-2  AwaitingApproval" in out
    assert f"Waiting for: {promo['status']['message']}" in out
    assert (
        "waiting for 1 approval from engineering-leads (production/technical) and "
        "1 approval from security-leads (production/security)"
    ) in out
    assert promo["status"]["specHash"] in out
    assert "requested by  alice (engineers)" in out
    assert "Release web-2 · CHG-1" in out
    assert "production/no-critical-vulnerabilities" in out and "passed" in out
    assert "production/approvals" in out and "held" in out
    assert "security scan" in out and "critical 0, high 1" in out
    assert "time in gate" in out and "so far" in out
    assert "Approvals: none yet" in out


def test_status_lists_who_counted_and_why_the_others_did_not(lockgate: testing.Stack, cli: conftest.Cli) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.kubectl("create", "-f", "-", context="mallory", input=manifests.approval("web-2-mallory", "web-2"))
    assert cli("approve", "web-2", context="bob").exit_code == 0
    lockgate.wait_for(lambda: len(lockgate.get("promo", "web-2")["status"].get("approvals", [])) == 2)

    out = cli("status", "web-2", context="carol").stdout

    bob = next(line for line in out.splitlines() if " bob " in line)
    assert "yes" in bob and "counts for technical" in bob
    mallory = next(line for line in out.splitlines() if "web-2-mallory" in line)
    assert " no " in mallory and "lacks the RBAC permission" in mallory and "(NotAuthorized)" in mallory
    assert "Waiting for: waiting for 1 approval from security-leads" in out


def test_status_prints_the_object_for_scripts(lockgate: testing.Stack, cli: conftest.Cli) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")

    as_json = json.loads(cli("status", "web-2", "-o", "json").stdout)
    as_yaml = yaml.safe_load(cli("status", "web-2", "-o", "yaml").stdout)

    assert as_json["status"]["phase"] == as_yaml["status"]["phase"] == "AwaitingApproval"
    assert as_json["metadata"]["name"] == "web-2"
