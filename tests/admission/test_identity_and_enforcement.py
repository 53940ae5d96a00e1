"""Issue 5's acceptance with the real kubectl: stamped identities, refused forgeries, guarded images."""

from __future__ import annotations

import json

import yaml

from lockgate.handlers import background, testing
from tests.conftest import REPO
from tests.lifecycle import manifests


def test_an_approval_naming_someone_else_is_refused(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    forged = lockgate.kubectl(
        "create",
        "-f",
        "-",
        context="bob",
        check=False,
        input=manifests.approval("web-2-bob", "web-2", extra="  approver: carol"),
    )
    assert forged.returncode != 0
    assert "spec.approver is stamped from your identity (bob)" in forged.stderr


def test_the_stored_approval_names_its_author_and_groups_and_is_signed(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    promo = lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.kubectl("create", "-f", "-", context="bob", input=manifests.approval("web-2-bob", "web-2"))
    spec = lockgate.get("appr", "web-2-bob")["spec"]
    assert spec["approver"] == "bob"
    assert spec["groups"] == ["engineering-leads"]
    assert spec["specHash"] == promo["status"]["specHash"]
    assert spec["stamp"]["signature"].startswith("hmac-sha256:")
    edited = lockgate.kubectl(
        "patch",
        "appr",
        "web-2-bob",
        "-n",
        "production",
        "--type=merge",
        "-p",
        '{"spec":{"decision":"Reject"}}',
        check=False,
    )
    assert edited.returncode != 0 and "immutable" in edited.stderr


def test_a_requester_cannot_claim_to_be_someone_else(lockgate: testing.Stack) -> None:
    forged = manifests.promotion().replace(
        "metadata: {name: web-2, namespace: production}",
        "metadata: {name: web-2, namespace: production, annotations: "
        '{lockgate.dev/requested-by: \'{"username":"bob"}\'}}',
    )
    refused = lockgate.apply(forged, context="alice", check=False)
    assert refused.returncode != 0 and "lockgate.dev/requested-by" in refused.stderr


def test_an_approval_written_around_the_webhook_does_not_count(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    promo = lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.kubectl("delete", "mutatingwebhookconfiguration", "lockgate.dev")
    spec_hash = promo["status"]["specHash"]
    stamp = (
        "  approver: carol\n  groups: [security-leads]\n  stamp: {at: '2026-01-01T00:00:00Z', signature: 'hmac-sha256:"
        + "0" * 64
        + "'}"
    )
    lockgate.kubectl(
        "create",
        "-f",
        "-",
        input=manifests.approval("web-2-forged", "web-2", extra=f"  specHash: '{spec_hash}'\n{stamp}"),
    )
    lockgate.kubectl("create", "-f", "-", input=manifests.approval("web-2-bare", "web-2", extra="  approver: bob"))

    def judged() -> dict[str, dict[str, object]] | None:
        table = {a["approval"]: a for a in lockgate.get("promo", "web-2")["status"].get("approvals", [])}
        return table if {"web-2-forged", "web-2-bare"} <= set(table) else None

    table = lockgate.wait_for(judged, message="both listed")
    assert table["web-2-forged"]["counted"] is False and table["web-2-forged"]["reason"] == "SignatureInvalid"
    assert table["web-2-bare"]["counted"] is False and table["web-2-bare"]["reason"] == "Unstamped"
    assert "webhook" in str(table["web-2-bare"]["message"])
    assert lockgate.phase("web-2") == "AwaitingApproval"


def test_set_image_is_refused_in_production_and_allowed_in_staging(lockgate: testing.Stack) -> None:
    refused = lockgate.kubectl(
        "set",
        "image",
        "deployment/web",
        "web=registry.example/web:6.6.6",
        "-n",
        "production",
        context="alice",
        check=False,
    )
    assert refused.returncode != 0
    assert "need an approved Promotion" in refused.stderr and "Create one" in refused.stderr
    assert lockgate.image() == "registry.example/web:1.0"
    lockgate.kubectl(
        "set", "image", "deployment/web", "web=registry.example/web:6.6.6", "-n", "staging", context="alice"
    )
    assert lockgate.image(namespace="staging") == "registry.example/web:6.6.6"
    scaled = lockgate.kubectl("scale", "deployment/web", "--replicas=3", "-n", "production", context="alice")
    assert scaled.returncode == 0  # other changes pass


def test_apply_with_a_new_image_is_refused_in_production(lockgate: testing.Stack) -> None:
    workload = json.loads(lockgate.kubectl("get", "deployment", "web", "-n", "production", "-o", "json").stdout)
    workload["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/web:7"
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        workload["metadata"].pop(key, None)
    workload.pop("status", None)
    refused = lockgate.kubectl("apply", "-f", "-", input=json.dumps(workload), context="alice", check=False)
    assert refused.returncode != 0 and "need an approved Promotion" in refused.stderr


def test_a_policy_with_a_cel_syntax_error_is_refused_with_the_rule_name(lockgate: testing.Stack) -> None:
    refused = lockgate.apply(
        """
apiVersion: lockgate.dev/v1alpha1
kind: GatePolicy
metadata: {name: broken}
spec:
  namespaceSelector: {matchLabels: {team: x}}
  approvals: {rules: [{name: leads, groups: [engineering-leads], count: 1}]}
  rules: [{name: scan-clean, expression: "promotion.spec.evidence.securityScan.critical ==", message: m}]
""",
        check=False,
    )
    assert refused.returncode != 0
    assert "scan-clean" in refused.stderr


def test_break_glass_passes_and_is_recorded_as_an_emergency_change() -> None:
    from lockgate.audit import record as audit_record

    settings = background.local_settings(break_glass_groups=["oncall-leads"])
    with testing.stack(settings=settings) as stack:
        stack.kubectl("apply", "-f", str(REPO / "examples" / "gatepolicy-production.yaml"))
        stack.kubectl(
            "set", "image", "deployment/web", "web=registry.example/web:hotfix", "-n", "production", context="dan"
        )
        assert stack.image() == "registry.example/web:hotfix"
        records = [r for r in stack.trail().records() if r.event == "emergency-bypass"]
        assert len(records) == 1
        document = audit_record.canonical_json(records[0].document())
        assert b"dan" in document and b"retroReviewDueAt" in document
        refused = stack.kubectl(
            "set",
            "image",
            "deployment/web",
            "web=registry.example/web:x",
            "-n",
            "production",
            context="alice",
            check=False,
        )
        assert refused.returncode != 0  # the break-glass group is not everyone


def test_provenance_annotations_cannot_be_forged_in_a_gated_namespace(lockgate: testing.Stack) -> None:
    forged = lockgate.kubectl(
        "annotate",
        "deploy",
        "web",
        "-n",
        "production",
        "--overwrite",
        "lockgate.dev/approved-by=nobody",
        "lockgate.dev/promotion=production/fake",
        context="alice",
        check=False,
    )
    assert forged.returncode != 0 and "only the Lockgate operator sets them" in forged.stderr
    other = lockgate.kubectl("annotate", "deploy", "web", "-n", "production", "team=payments", context="alice")
    assert other.returncode == 0  # other annotations pass


def test_a_promotion_written_around_the_webhook_is_stamped_when_written_again(lockgate: testing.Stack) -> None:
    lockgate.kubectl("delete", "mutatingwebhookconfiguration", "lockgate.dev")
    lockgate.apply(manifests.promotion(), context="admin")
    held = lockgate.wait_for(
        lambda: (p := lockgate.get("promo", "web-2"))["status"].get("phase") == "Pending" and p,
        message="held without a requester stamp",
    )
    assert "lockgate.dev/requested-by" not in (held["metadata"].get("annotations") or {})
    lockgate.stop_operator()
    lockgate.start_operator()  # registers its webhooks again
    lockgate.kubectl("annotate", "promo", "web-2", "-n", "production", "touched=now", context="admin")
    promo = lockgate.wait_phase("web-2", "AwaitingApproval")
    assert promo["status"]["requestedBy"]["username"] == "admin"


def test_a_malformed_approval_gets_a_422_naming_the_field(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    bad_decision = lockgate.kubectl(
        "create",
        "-f",
        "-",
        context="bob",
        check=False,
        input=manifests.approval("web-2-bob", "web-2", decision="Maybe"),
    )
    assert bad_decision.returncode != 0 and "spec.decision" in bad_decision.stderr, bad_decision.stderr
    bad_name = lockgate.kubectl(
        "create", "-f", "-", context="bob", check=False, input=manifests.approval("web-2-bob", "production/web-2")
    )
    assert bad_name.returncode != 0 and "spec.promotion" in bad_name.stderr, bad_name.stderr
    assert "InternalError" not in bad_name.stderr


def test_new_workloads_in_a_gated_namespace_are_refused_when_guarded() -> None:
    settings = background.local_settings(guard_new_workloads=True)
    with testing.stack(settings=settings) as stack:
        stack.kubectl("apply", "-f", str(REPO / "examples" / "gatepolicy-production.yaml"))
        api = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "api"},
            "spec": {
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "api", "image": "registry.example/api:1"}]},
                },
            },
        }
        refused = stack.kubectl("apply", "-n", "production", "-f", "-", input=json.dumps(api), check=False)
        assert refused.returncode != 0 and "would run images nobody approved" in refused.stderr
        stack.kubectl("apply", "-n", "staging", "-f", "-", input=json.dumps(api))  # ungated: fine


def test_a_gate_policy_rule_reading_a_field_no_promotion_has_is_refused_naming_it(lockgate: testing.Stack) -> None:
    """A typo in a rule would fail every Promotion with "no such key": refused at admission, naming the fields."""
    doc = yaml.safe_load((REPO / "examples" / "gatepolicy-production.yaml").read_text())
    doc["spec"]["rules"][0]["expression"] = "promotion.spec.evidence.securityScan.critcal == 0"
    refused = lockgate.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
    assert refused.returncode != 0
    assert 'admission webhook "policy-valid.lockgate.dev" denied the request' in refused.stderr
    assert "rules[no-critical-vulnerabilities].expression reads promotion.spec.evidence.securityScan.critcal" in (
        refused.stderr
    )
    assert "critical, high, medium, reportUrl, status" in refused.stderr


def test_a_stored_policy_with_such_a_rule_can_still_be_labelled_but_not_given_another() -> None:
    """Stored before the webhook checked field names, its problem shows in status.problems; an update refuses only
    what it brings in, so a label or a GitOps annotation still lands."""
    doc = yaml.safe_load((REPO / "examples" / "gatepolicy-production.yaml").read_text())
    doc["spec"]["rules"][0]["expression"] = "promotion.spec.evidence.securityScan.critcal == 0"
    with testing.stack(operator=False) as stack:
        stack.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))  # no webhook yet: stored as it is
        stack.start_operator()
        stack.wait_for(
            lambda: "critcal" in str(stack.get("gatepolicy", "production", namespace="").get("status", {})),
            message="the stored policy's problem in its status",
        )
        stack.kubectl("label", "gatepolicy", "production", "team=platform")
        doc["spec"]["rules"][1]["expression"] = "promotion.spec.evidence.securityScan.hihg <= 5"
        refused = stack.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
        denial = refused.stderr.split("denied the request:", 1)[-1]
        assert refused.returncode != 0 and "securityScan.hihg" in denial
        assert "critcal" not in denial  # the problem it had is not held against the update


def test_a_gate_policy_allowing_self_approval_is_refused_naming_the_rule(lockgate: testing.Stack) -> None:
    """Separation of duties is not a policy's choice: the policy-valid webhook refuses forbidSelfApproval: false."""
    doc = yaml.safe_load((REPO / "examples" / "gatepolicy-production.yaml").read_text())
    doc["spec"]["approvals"]["forbidSelfApproval"] = False
    refused = lockgate.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
    assert refused.returncode != 0
    assert 'admission webhook "policy-valid.lockgate.dev" denied the request' in refused.stderr
    assert "approvals.forbidSelfApproval cannot be false" in refused.stderr
    assert "separation of duties" in refused.stderr
    assert lockgate.get("gatepolicy", "production")["spec"]["approvals"]["forbidSelfApproval"] is True
