"""Where the image guard is not called (pure): a gated namespace that the guard's webhook configuration leaves
out, judged on the configuration the chart renders."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lockgate.admission import coverage, imageguard
from lockgate.api import gatepolicy
from tests.chart import rendering

GUARD_HOOKS = sorted(f"{g.webhook_id}.lockgate.dev" for g in imageguard.GUARDED)


def chart_configuration(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return rendering.one(rendering.render(values), "ValidatingWebhookConfiguration")


CHART = chart_configuration()


def policy(selector: dict[str, Any]) -> gatepolicy.GatePolicy:
    return gatepolicy.GatePolicy.from_k8s(
        {
            "apiVersion": "lockgate.dev/v1alpha1",
            "kind": "GatePolicy",
            "metadata": {"name": "payments"},
            "spec": {
                "namespaceSelector": selector,
                "approvals": {"rules": [{"name": "leads", "groups": ["leads"], "count": 1}]},
            },
        }
    )


def test_a_namespace_the_charts_guard_selector_leaves_out_is_reported_with_every_guard_webhook() -> None:
    """The chart calls the guard where ``lockgate.dev/environment`` exists; a policy selecting ``team: payments``
    gates a namespace without it, where ``kubectl set image`` would pass unjudged."""
    namespaces = {"production": {"lockgate.dev/environment": "production"}, "payments": {"team": "payments"}}
    found = coverage.gated_but_not_guarded(CHART, namespaces, [policy({"matchLabels": {"team": "payments"}})])
    assert list(found) == ["payments"]
    assert sorted(gap.split(":")[0] for gap in found["payments"]) == GUARD_HOOKS
    assert all(gap.endswith("its namespaceSelector does not select this namespace") for gap in found["payments"])
    said = coverage.message(found)
    assert "not called in gated namespace(s) payments" in said and "kubectl set image" in said
    assert "lockgate.dev/environment=<env>" in said and "webhook.guardNamespaceSelector" in said
    labelled = {**namespaces, "payments": {"team": "payments", "lockgate.dev/environment": "payments"}}
    assert coverage.gated_but_not_guarded(CHART, labelled, [policy({"matchLabels": {"team": "payments"}})]) == {}


def test_only_gated_namespaces_count() -> None:
    namespaces = {"kube-system": {}, "staging": {"team": "web"}}
    assert coverage.gated_but_not_guarded(CHART, namespaces, [policy({"matchLabels": {"team": "payments"}})]) == {}
    assert set(coverage.not_called(CHART, namespaces)) == {"kube-system", "staging"}  # ungated: by design


def test_a_missing_configuration_or_webhook_leaves_every_gated_namespace_unguarded() -> None:
    gated = {"production": {"lockgate.dev/environment": "production"}}
    missing = coverage.not_called(None, gated)
    assert "Re-apply the chart" in coverage.message(missing) and "Label the namespace" not in coverage.message(missing)
    assert [gap.split(": ", 1)[1] for gap in missing["production"]] == ["missing from the configuration"] * len(
        GUARD_HOOKS
    )
    without_deployments = copy.deepcopy(CHART)
    without_deployments["webhooks"] = [h for h in CHART["webhooks"] if h["name"] != "guard-deployments.lockgate.dev"]
    assert coverage.not_called(without_deployments, gated) == {
        "production": ["guard-deployments.lockgate.dev: missing from the configuration"]
    }


def test_rules_that_skip_an_operation_or_an_object_selector_are_gaps() -> None:
    gated = {"production": {"lockgate.dev/environment": "production"}}
    edited = copy.deepcopy(CHART)
    for hook in edited["webhooks"]:
        if hook["name"] == "guard-statefulsets.lockgate.dev":
            hook["rules"][0]["operations"] = ["CREATE"]  # an image change is an UPDATE
        if hook["name"] == "guard-pods.lockgate.dev":
            hook["objectSelector"] = {"matchLabels": {"lockgate.dev/guarded": "true"}}
    found = coverage.not_called(edited, gated)
    assert found == {
        "production": [
            "guard-statefulsets.lockgate.dev: its rules do not name statefulsets CREATE/UPDATE",
            "guard-pods.lockgate.dev: it has an objectSelector, so objects without those labels skip it",
        ]
    }
    assert "Restore the webhook's rules" in coverage.message(found) and "Remove the webhook's objectSelector" in (
        coverage.message(found)
    )
    split = copy.deepcopy(CHART)
    for hook in split["webhooks"]:  # the same operations over two rules
        rule = hook["rules"][0]
        hook["rules"] = [{**rule, "operations": [op]} for op in rule["operations"]]
    assert coverage.not_called(split, gated) == {}
    wildcard = copy.deepcopy(CHART)
    for hook in wildcard["webhooks"]:
        hook["rules"] = [{"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "operations": ["*"]}]
        hook["objectSelector"] = {}  # empty: every object
    assert set(coverage.not_called(wildcard, gated)["production"]) == {  # "*" names no subresource
        "guard-replicasets-scale.lockgate.dev: its rules do not name replicasets/scale UPDATE",
        "guard-pods-ephemeralcontainers.lockgate.dev: its rules do not name pods/ephemeralcontainers UPDATE",
        "guard-replicationcontrollers-scale.lockgate.dev: its rules do not name replicationcontrollers/scale UPDATE",
    }
    for hook in wildcard["webhooks"]:
        hook["rules"][0]["resources"] = ["*/*"]  # every resource and subresource
    assert coverage.not_called(wildcard, gated) == {}
    for hook in wildcard["webhooks"]:
        hook["rules"][0]["resources"] = ["deployments/*"]  # subresources of Deployments only
    assert (
        "guard-deployments.lockgate.dev: its rules do not name deployments CREATE/UPDATE"
        in (coverage.not_called(wildcard, gated)["production"])
    )


def test_a_configuration_kopf_manages_has_no_selector_and_so_covers_every_namespace() -> None:
    unselected = copy.deepcopy(CHART)
    for hook in unselected["webhooks"]:
        hook.pop("namespaceSelector", None)
        hook["objectSelector"] = None  # as Kopf writes it
    assert coverage.not_called(unselected, {"anything": {}, "payments": {"team": "payments"}}) == {}


def test_a_selector_may_name_the_namespace_by_the_label_the_api_server_sets() -> None:
    by_name = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["payments"]}]}
    config = chart_configuration({"webhook": {"guardNamespaceSelector": by_name}})
    assert coverage.not_called(config, {"payments": {}, "billing": {}}).keys() == {"billing"}


@given(
    labels=st.dictionaries(st.sampled_from(["lockgate.dev/environment", "team", "tier"]), st.sampled_from(["a", "b"]))
)
def test_the_chart_default_calls_the_guard_exactly_where_the_environment_label_exists(labels: dict[str, str]) -> None:
    found = coverage.not_called(CHART, {"ns": labels})
    assert ("ns" in found) == ("lockgate.dev/environment" not in labels)


def test_the_selector_the_values_file_suggests_calls_the_guard_everywhere_but_the_system_namespaces() -> None:
    """values.yaml: ``kubernetes.io/metadata.name NotIn [kube-system, <release namespace>]`` replaces the default
    list, so a GatePolicy may gate namespaces by any label and the guard is still called there."""
    values = (rendering.CHART / "values.yaml").read_text()
    assert "operator: NotIn, values: [kube-system, <this release's namespace>]" in values
    suggested = {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "lockgate-system"]}
        ]
    }
    config = chart_configuration({"webhook": {"guardNamespaceSelector": suggested}})
    namespaces = {"payments": {"team": "payments"}, "kube-system": {}, "lockgate-system": {}}
    assert set(coverage.not_called(config, namespaces)) == {"kube-system", "lockgate-system"}
    assert coverage.gated_but_not_guarded(config, namespaces, [policy({"matchLabels": {"team": "payments"}})]) == {}


def _with_condition(hook_name: str, condition: dict[str, str], *, replace: bool = False) -> dict[str, Any]:
    edited = copy.deepcopy(CHART)
    for hook in edited["webhooks"]:
        if hook["name"] == hook_name:
            hook["matchConditions"] = [condition] if replace else [*hook.get("matchConditions", []), condition]
    return edited


def test_the_charts_match_conditions_call_the_guard_for_every_persons_change_it_judges() -> None:
    """The chart's conditions skip the workload controllers and changes with no image in them; a person's
    create, image change, scale-up, debug container and ReplicaSet delete all reach the guard."""
    assert any(hook.get("matchConditions") for hook in CHART["webhooks"])
    assert coverage.not_called(CHART, {"production": {"lockgate.dev/environment": "production"}}) == {}
    tried = [what for guarded in imageguard.GUARDED for what, *_ in coverage.probes(guarded, "production")]
    assert {
        "a person's Deployment image change",
        "a person's ReplicaSet scale-up",
        "a person's Pod debug container",
    } <= (set(tried)) and "a person's ReplicaSet delete" in tried


def test_an_edited_match_condition_that_skips_a_persons_image_change_is_a_gap() -> None:
    """A condition is the quietest way to switch the guard off: the webhook stays registered, its rules and
    selectors unchanged, and the API server never calls it."""
    gated = {"production": {"lockgate.dev/environment": "production"}, "payments": {"lockgate.dev/environment": "x"}}
    never = _with_condition("guard-deployments.lockgate.dev", {"name": "off", "expression": "false"})
    assert coverage.not_called(never, gated)["production"] == [
        "guard-deployments.lockgate.dev: its matchCondition off skips a person's Deployment create"
    ]
    said = coverage.message(coverage.not_called(never, gated))
    assert "Restore the webhook's matchConditions as the chart renders them" in said
    updates_only = _with_condition(
        "guard-jobs.lockgate.dev", {"name": "create-only", "expression": "request.operation == 'CREATE'"}
    )
    assert coverage.not_called(updates_only, gated)["payments"] == [
        "guard-jobs.lockgate.dev: its matchCondition create-only skips a person's Job image change"
    ]
    one_namespace = _with_condition(
        "guard-pods.lockgate.dev", {"name": "not-payments", "expression": "request.namespace != 'payments'"}
    )
    assert coverage.not_called(one_namespace, gated) == {
        "payments": ["guard-pods.lockgate.dev: its matchCondition not-payments skips a person's Pod create"]
    }
    by_user = _with_condition(
        "guard-replicasets-delete.lockgate.dev",
        {"name": "robots", "expression": "request.userInfo.username.startsWith('system:')"},
        replace=True,
    )
    assert coverage.not_called(by_user, {"production": {"lockgate.dev/environment": "production"}}) == {
        "production": [
            "guard-replicasets-delete.lockgate.dev: its matchCondition robots skips a person's ReplicaSet delete"
        ]
    }


def test_a_match_condition_lockgate_cannot_evaluate_is_reported_not_trusted() -> None:
    gated = {"production": {"lockgate.dev/environment": "production"}}
    opaque = _with_condition(
        "guard-daemonsets.lockgate.dev",
        {"name": "authz", "expression": "authorizer.requestResource.check('x').allowed()"},
    )
    [gap] = coverage.not_called(opaque, gated)["production"]
    assert gap.startswith("guard-daemonsets.lockgate.dev: its matchCondition authz cannot be checked by Lockgate (")
    assert gap.endswith("so may skip a person's DaemonSet create")
    harmless = _with_condition("guard-daemonsets.lockgate.dev", {"name": "any", "expression": "true"})
    assert coverage.not_called(harmless, gated) == {}


def test_a_rule_for_cluster_scoped_objects_or_another_exact_version_names_no_workload() -> None:
    gated = {"production": {"lockgate.dev/environment": "production"}}
    edited = copy.deepcopy(CHART)
    for hook in edited["webhooks"]:
        if hook["name"] == "guard-daemonsets.lockgate.dev":
            hook["rules"][0]["scope"] = "Cluster"  # a DaemonSet is namespaced
        if hook["name"] == "guard-cronjobs.lockgate.dev":
            hook["rules"][0]["apiVersions"] = ["v1beta1"]
            hook["matchPolicy"] = "Exact"  # batch/v1 requests are not converted to v1beta1 and sent
    assert coverage.not_called(edited, gated) == {
        "production": [
            "guard-daemonsets.lockgate.dev: its rules do not name daemonsets CREATE/UPDATE",
            "guard-cronjobs.lockgate.dev: its rules do not name cronjobs CREATE/UPDATE",
        ]
    }
    for hook in edited["webhooks"]:
        hook["matchPolicy"] = "Equivalent"  # the default: every version of the resource is sent
        hook["rules"][0]["scope"] = "*"
    assert coverage.not_called(edited, gated) == {}
