"""``lockgate approve`` / ``reject``: the Approval binds to the spec hash the approver saw."""

from __future__ import annotations

import json

from lockgate.handlers import testing
from tests.cli import conftest
from tests.lifecycle import manifests

WEB_2 = f"registry.example/web:2.0@{manifests.DIGEST}"


def test_approve_binds_to_the_spec_hash_and_then_shows_counted(lockgate: testing.Stack, cli: conftest.Cli) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    spec_hash = lockgate.wait_phase("web-2", "AwaitingApproval")["status"]["specHash"]

    result = cli("approve", "web-2", "--comment", "reviewed the diff", context="bob")

    assert result.exit_code == 0, result.output
    assert f"bob approves spec {spec_hash}" in result.stdout
    assert "counted: bob's approval counts for technical (1/2 approvals)" in result.stdout
    assert "promotion web-2 is AwaitingApproval: waiting for 1 approval from security-leads" in result.stdout
    approvals = json.loads(lockgate.kubectl("get", "appr", "-n", "production", "-o", "json").stdout)["items"]
    [approval] = approvals
    assert approval["metadata"]["name"].startswith("web-2-bob-")
    assert approval["spec"]["specHash"] == spec_hash
    assert approval["spec"]["comment"] == "reviewed the diff"
    assert approval["spec"]["approver"] == "bob"

    status = cli("status", "web-2", context="alice").stdout
    assert "1 of 2 counted" in status
    line = next(ln for ln in status.splitlines() if approval["metadata"]["name"] in ln)
    assert "yes" in line and "counts for technical" in line

    assert cli("approve", "web-2", context="carol").exit_code == 0
    lockgate.wait_phase("web-2", "Succeeded")
    assert lockgate.image() == WEB_2


def test_approve_refuses_when_the_spec_changed_since_it_was_reviewed(
    lockgate: testing.Stack, cli: conftest.Cli
) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    seen = lockgate.wait_phase("web-2", "AwaitingApproval")["status"]["specHash"]
    lockgate.apply(manifests.promotion(image="registry.example/web:2.1"))  # changed while bob reads
    lockgate.wait_for(lambda: lockgate.get("promo", "web-2")["status"]["specHash"] != seen)

    result = cli("approve", "web-2", "--spec-hash", seen, context="bob")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f'error: the spec of promotion "web-2" changed since you reviewed it (you saw {seen}'
    )
    assert json.loads(lockgate.kubectl("get", "appr", "-n", "production", "-o", "json").stdout)["items"] == []


def test_an_approval_of_the_earlier_spec_does_not_count_for_the_new_one(
    lockgate: testing.Stack, cli: conftest.Cli
) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    assert "counted:" in cli("approve", "web-2", context="bob").stdout
    lockgate.apply(manifests.promotion(image="registry.example/web:2.1"))  # a new spec: a new cycle

    def recounted() -> bool:
        status = lockgate.get("promo", "web-2")["status"]
        return status.get("countedApprovals") == 0 and bool(status.get("approvals"))

    lockgate.wait_for(recounted, message="bob's approval judged against the new spec")
    status = cli("status", "web-2", context="carol").stdout
    line = next(ln for ln in status.splitlines() if "web-2-bob-" in ln)
    assert " no " in line and "(SpecChanged)" in line
    assert "0 of 2 counted" in status
    assert "waiting for 1 approval from engineering-leads" in status
    assert lockgate.image() == "registry.example/web:1.0"


def test_an_approval_from_someone_without_the_approve_verb_is_listed_not_counted(
    lockgate: testing.Stack, cli: conftest.Cli
) -> None:
    lockgate.apply(manifests.promotion(), context="admin")  # requested by someone else than alice
    lockgate.wait_phase("web-2", "AwaitingApproval")

    result = cli("approve", "web-2", context="alice")  # an engineer: may record a decision, has no `approve`

    assert result.exit_code == 0, result.output
    assert "not counted: alice lacks the RBAC permission to approve promotions" in result.stdout
    assert "(NotAuthorized)" in result.stdout
    assert "0 of 2 counted" in cli("status", "web-2", context="bob").stdout


def test_a_user_who_may_not_read_the_promotion_gets_the_servers_message(
    lockgate: testing.Stack, cli: conftest.Cli
) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")

    result = cli("approve", "web-2", context="mallory")

    assert result.exit_code == 1
    assert result.stderr == (
        'error: promotions.lockgate.dev "web-2" is forbidden: User "mallory" cannot get resource "promotions" '
        'in API group "lockgate.dev" in the namespace "production"\n'
    )


def test_reject_needs_a_comment_and_then_rejects(lockgate: testing.Stack, cli: conftest.Cli) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")

    refused = cli("reject", "web-2", context="carol")
    assert refused.exit_code == 1
    assert refused.stderr == "error: reject needs --comment saying why (it goes into the audit trail)\n"

    result = cli(
        "reject",
        "web-2",
        "--comment",
        "CVE-2024-1234 is not fixed",
        context="carol",
    )
    assert result.exit_code == 0, result.output
    assert "carol rejects spec" in result.stdout
    promo = lockgate.wait_phase("web-2", "Rejected")
    assert "carol" in promo["status"]["message"]
    again = cli("approve", "web-2", context="bob")
    assert again.exit_code == 1
    assert again.stderr == 'error: promotion "web-2" is Rejected: there is nothing to approve\n'


def test_approve_prints_the_approval_for_scripts(lockgate: testing.Stack, cli: conftest.Cli) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")

    approval = json.loads(cli("approve", "web-2", "-o", "json", context="bob").stdout)

    assert approval["kind"] == "Approval"
    assert approval["status"]["counted"] is True
