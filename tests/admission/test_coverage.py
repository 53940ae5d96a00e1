"""Where the image guard is not called (pure): a gated namespace that the guard's webhook configuration leaves
out, judged on the configuration the chart renders."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockgate.admission import coverage, imageguard
from lockgate.api import gatepolicy
from tests.chart import installed, rendering

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
    found = coverage.gated_but_not_guarded(
        CHART, namespaces, [policy({"matchLabels": {"team": "payments"}})]
    ).not_called
    assert list(found) == ["payments"]
    assert sorted(gap.split(":")[0] for gap in found["payments"]) == GUARD_HOOKS
    assert all(gap.endswith("its namespaceSelector does not select this namespace") for gap in found["payments"])
    said = coverage.message(found)
    assert "not called in gated namespace(s) payments" in said and "kubectl set image" in said
    assert "lockgate.dev/environment=<env>" in said and "webhook.guardNamespaceSelector" in said
    labelled = {**namespaces, "payments": {"team": "payments", "lockgate.dev/environment": "payments"}}
    assert (
        coverage.gated_but_not_guarded(CHART, labelled, [policy({"matchLabels": {"team": "payments"}})]).not_called
        == {}
    )


def test_only_gated_namespaces_count() -> None:
    namespaces = {"kube-system": {}, "staging": {"team": "web"}}
    assert (
        coverage.gated_but_not_guarded(CHART, namespaces, [policy({"matchLabels": {"team": "payments"}})]).not_called
        == {}
    )
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
    assert (
        coverage.gated_but_not_guarded(config, namespaces, [policy({"matchLabels": {"team": "payments"}})]).not_called
        == {}
    )


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
        "guard-jobs.lockgate.dev: its matchCondition create-only skips a person's Job lockgate.dev annotation change"
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


def test_a_match_condition_lockgate_cannot_evaluate_is_reported_apart_not_as_a_gap() -> None:
    """Kubernetes' CEL has functions Lockgate's lacks (``authorizer``, some string and quantity libraries): such a
    condition is unverified, not a gap (with ``failurePolicy: Fail`` the API server refuses on an error)."""
    gated = {"production": {"lockgate.dev/environment": "production"}}
    opaque = _with_condition(
        "guard-daemonsets.lockgate.dev",
        {"name": "authz", "expression": "authorizer.requestResource.check('x').allowed()"},
    )
    assert coverage.not_called(opaque, gated) == {}
    [unverified] = coverage.unverifiable(opaque)
    assert unverified.startswith("guard-daemonsets.lockgate.dev: its matchCondition authz cannot be evaluated by")
    assert coverage.unverifiable(CHART) == []
    for harmless in ("true", "!request.dryRun", "request.kind.kind == 'DaemonSet'", "request.options.kind != ''"):
        fine = _with_condition("guard-daemonsets.lockgate.dev", {"name": "any", "expression": harmless})
        assert coverage.not_called(fine, gated) == {} and coverage.unverifiable(fine) == [], harmless


def test_conditions_are_probed_as_every_kind_of_requester_and_change() -> None:
    """A condition may skip a class of requester (CI ServiceAccounts, cluster admins, break-glass) or a kind of
    change the guard judges besides an image (a pause, a ReplicaSet's replicas or labels): each is a gap."""
    gated = {"production": {"lockgate.dev/environment": "production"}}
    cases = [
        (
            "guard-deployments.lockgate.dev",
            "!request.userInfo.username.startsWith('system:serviceaccount:')",
            "a ServiceAccount's Deployment create",
        ),
        ("guard-pods.lockgate.dev", "!('system:masters' in request.userInfo.groups)", "a cluster admin's Pod create"),
        (
            "guard-deployments.lockgate.dev",
            "request.operation == 'CREATE' || object.spec.template != oldObject.spec.template",
            "a person's Deployment lockgate.dev annotation change",
        ),
        (
            "guard-statefulsets.lockgate.dev",
            "!has(object.metadata.annotations)",
            "a person's StatefulSet lockgate.dev annotation change",
        ),
    ]
    for hook, expression, skipped in cases:
        edited = _with_condition(hook, {"name": "custom", "expression": expression})
        assert coverage.not_called(edited, gated) == {
            "production": [f"{hook}: its matchCondition custom skips {skipped}"]
        }
    pod_form = copy.deepcopy(CHART)  # the ReplicaSet's condition cut down to the Pod/Job one: images only
    conditions = {h["name"]: h.get("matchConditions") for h in CHART["webhooks"]}
    for hook in pod_form["webhooks"]:
        if hook["name"] == "guard-replicasets.lockgate.dev":
            hook["matchConditions"] = copy.deepcopy(conditions["guard-jobs.lockgate.dev"])
    [gap] = coverage.not_called(pod_form, gated)["production"]
    assert gap.startswith(
        "guard-replicasets.lockgate.dev: its matchCondition creates-or-changes-images skips a person's"
    )
    glass = _with_condition(
        "guard-cronjobs.lockgate.dev", {"name": "oncall", "expression": "!('oncall-leads' in request.userInfo.groups)"}
    )
    assert coverage.not_called(glass, gated) == {}  # without break-glass groups, nobody is in it
    assert coverage.not_called(glass, gated, coverage.Setup(break_glass_groups=("oncall-leads",))) == {
        "production": [
            "guard-cronjobs.lockgate.dev: its matchCondition oncall skips a break-glass member's CronJob create"
        ]
    }


def test_a_condition_that_calls_the_guard_only_when_container_images_change_misses_injector_annotations() -> None:
    """An injector's image is chosen by a pod template annotation (operator.imageAnnotations): the guard must be
    called when the template's annotations change, though no container image does."""
    gated = {"production": {"lockgate.dev/environment": "production"}}
    images_only = _with_condition(
        "guard-deployments.lockgate.dev",
        {
            "name": "images",
            "expression": "request.operation == 'CREATE' || has(object.metadata.annotations) || "
            "object.spec.template.spec != oldObject.spec.template.spec || has(object.spec.paused)",
        },
    )
    assert coverage.not_called(images_only, gated, coverage.Setup(image_annotations=("example.com/*-image",))) == {
        "production": [
            "guard-deployments.lockgate.dev: its matchCondition images skips "
            "a person's Deployment image annotation change (example.com/x-image)"
        ]
    }
    # The operator's own list is what is probed: a condition that calls the guard for one key only is a gap
    # for the others; with no image annotations configured, there is no such change to call it for.
    istio_only = _with_condition(
        "guard-deployments.lockgate.dev",
        {
            "name": "images",
            "expression": "request.operation == 'CREATE' || has(object.metadata.annotations) || "
            "object.spec.template.spec != oldObject.spec.template.spec || has(object.spec.paused) || "
            "object.spec.template.metadata != oldObject.spec.template.metadata && "
            "'sidecar.istio.io/proxyImage' in object.spec.template.metadata.annotations",
        },
    )
    [gap] = coverage.not_called(istio_only, gated)["production"]
    assert "skips a person's Deployment image annotation change (admission.datadoghq.com/x-lib.custom-image)" in gap
    assert (
        coverage.not_called(istio_only, gated, coverage.Setup(image_annotations=("sidecar.istio.io/proxyImage",))) == {}
    )
    assert coverage.not_called(images_only, gated, coverage.Setup(image_annotations=())) == {}
    deployments = next(g for g in imageguard.GUARDED if g.plural == "deployments")
    tried = coverage.probes(deployments, "production", ["oncall-leads"])
    annotated = [what for what, _ in tried if "annotation change (" in what]
    assert len(annotated) == len(imageguard.IMAGE_ANNOTATIONS)  # one each, as a person: the others add nothing
    assert all(what.startswith("a person's Deployment image annotation change (") for what in annotated)


def test_a_rule_for_cluster_scoped_objects_or_a_version_not_served_names_no_workload() -> None:
    gated = {"production": {"lockgate.dev/environment": "production"}}
    edited = copy.deepcopy(CHART)
    for hook in edited["webhooks"]:
        if hook["name"] == "guard-daemonsets.lockgate.dev":
            hook["rules"][0]["scope"] = "Cluster"  # a DaemonSet is namespaced
        if hook["name"] == "guard-cronjobs.lockgate.dev":  # batch/v1beta1 is no longer served: never called,
            hook["rules"][0]["apiVersions"] = ["v1beta1"]  # whatever the matchPolicy
            hook["matchPolicy"] = "Equivalent"
    assert coverage.not_called(edited, gated) == {
        "production": [
            "guard-daemonsets.lockgate.dev: its rules do not name daemonsets CREATE/UPDATE",
            "guard-cronjobs.lockgate.dev: its rules do not name cronjobs CREATE/UPDATE",
        ]
    }
    for hook in edited["webhooks"]:
        hook["rules"][0]["scope"] = "*"
        hook["rules"][0]["apiVersions"] = ["v1beta1", "*"]
    assert coverage.not_called(edited, gated) == {}


def test_a_condition_that_reads_the_namespace_is_judged_on_every_change_in_each_namespace() -> None:
    gated = {"prod": {"lockgate.dev/environment": "prod"}, "dev": {"lockgate.dev/environment": "dev"}}
    creates_only_in_prod = _with_condition(
        "guard-pods.lockgate.dev",
        {"name": "prod", "expression": "request.operation == 'CREATE' || request.namespace != 'prod'"},
    )
    assert coverage.not_called(creates_only_in_prod, gated) == {
        "prod": ["guard-pods.lockgate.dev: its matchCondition prod skips a person's Pod lockgate.dev annotation change"]
    }
    opaque_in_prod = _with_condition(
        "guard-pods.lockgate.dev",
        {"name": "lower", "expression": "request.namespace != 'prod' || request.userInfo.username.lowerAscii() == 'x'"},
    )
    judged = coverage.judge(opaque_in_prod, gated)
    assert judged.not_called == {}
    [unverified] = judged.unverifiable
    assert unverified.startswith("guard-pods.lockgate.dev: its matchCondition lower cannot be evaluated by Lockgate")
    assert unverified.endswith("in namespace prod")


def test_conditions_that_look_only_at_some_images_are_gaps() -> None:
    gated = {"production": {"lockgate.dev/environment": "production"}}
    containers_only = (
        "request.operation == 'CREATE' || "
        "object.spec.containers.map(c, c.image) != oldObject.spec.containers.map(c, c.image)"
    )
    init_blind = _with_condition(
        "guard-pods.lockgate.dev", {"name": "containers", "expression": containers_only}, replace=True
    )
    assert coverage.not_called(init_blind, gated) == {
        "production": [
            "guard-pods.lockgate.dev: its matchCondition containers skips a person's Pod lockgate.dev annotation change"
        ]
    }
    tags_only = _with_condition(
        "guard-statefulsets.lockgate.dev",
        {"name": "tags", "expression": "!object.spec.template.spec.containers.exists(c, c.image.contains('@sha256:'))"},
    )
    assert coverage.not_called(tags_only, gated) == {
        "production": [
            "guard-statefulsets.lockgate.dev: its matchCondition tags skips "
            "a person's StatefulSet image change to a digest"
        ]
    }
    provenance = "has(object.metadata.annotations) && object.metadata.annotations != oldObject.metadata.annotations"
    init_only = _with_condition(
        "guard-daemonsets.lockgate.dev",
        {
            "name": "images",
            "expression": f"request.operation == 'CREATE' || ({provenance}) || "
            "object.spec.template.spec.containers != oldObject.spec.template.spec.containers",
        },
    )
    assert coverage.not_called(init_only, gated) == {
        "production": [
            "guard-daemonsets.lockgate.dev: its matchCondition images skips "
            "a person's DaemonSet init container image change"
        ]
    }


def test_probing_many_namespaces_is_spread_over_passes_and_unverified_until_done() -> None:
    """Probing a namespace for a condition that reads it costs ~2 ms on the loop that serves the webhooks: a pass
    probes ``budget`` namespaces and says how many are left; until then they are not claimed either way."""
    names = [f"team-{i}" for i in range(5)]
    gated = {name: {"lockgate.dev/environment": "x"} for name in names}
    by_prefix = _with_condition(
        "guard-pods.lockgate.dev", {"name": "prefix", "expression": "!request.namespace.startsWith('team-3')"}
    )
    first = coverage.judge(by_prefix, gated, budget=2)
    assert first.pending == 3
    assert first.unverifiable == [
        "guard-pods.lockgate.dev: its matchConditions read the namespace; 3 namespace(s) not probed yet"
    ]
    second = coverage.judge(by_prefix, gated, budget=2)
    assert second.pending == 1
    done = coverage.judge(by_prefix, gated, budget=2)
    assert (done.pending, done.unverifiable) == (0, [])
    assert done.not_called == {
        "team-3": ["guard-pods.lockgate.dev: its matchCondition prefix skips a person's Pod create"]
    }
    assert coverage.judge(by_prefix, gated) == done  # unbounded: the same, at once


def test_namespaces_a_condition_names_are_judged_apart_and_any_other_use_is_probed_everywhere() -> None:
    gated = {ns: {"lockgate.dev/environment": ns} for ns in ("prod", "dev", "staging")}
    allowlist = _with_condition(
        "guard-pods.lockgate.dev", {"name": "only", "expression": "request.namespace in ['prod', 'dev']"}
    )
    assert coverage.not_called(allowlist, gated) == {  # called where named: no false alarm there
        "staging": ["guard-pods.lockgate.dev: its matchCondition only skips a person's Pod create"]
    }
    concatenated = _with_condition(
        "guard-pods.lockgate.dev", {"name": "concat", "expression": "request.namespace + '-x' != 'prod-x'"}
    )
    assert coverage.not_called(concatenated, gated) == {
        "prod": ["guard-pods.lockgate.dev: its matchCondition concat skips a person's Pod create"]
    }
    built = _with_condition(
        "guard-pods.lockgate.dev", {"name": "built", "expression": "request.namespace != 'prod' + '-x'"}
    )
    assert coverage.not_called(built, {"prod-x": {"lockgate.dev/environment": "x"}}) == {
        "prod-x": ["guard-pods.lockgate.dev: its matchCondition built skips a person's Pod create"]
    }
    by_field = _with_condition(
        "guard-pods.lockgate.dev", {"name": "field", "expression": "request.namespace != object.metadata.labels.app"}
    )
    assert coverage.not_called(by_field, {"probe": {"lockgate.dev/environment": "x"}}) == {
        "probe": ["guard-pods.lockgate.dev: its matchCondition field skips a person's Pod create"]
    }


def test_a_job_condition_that_judges_only_suspended_template_changes_is_no_gap() -> None:
    """The API server refuses a running Job's template change before any webhook: only a suspended one's counts."""
    suspended_only = (
        "request.operation == 'CREATE' || object.metadata != oldObject.metadata || "
        "(has(object.spec.suspend) && object.spec.suspend && object.spec.template != oldObject.spec.template)"
    )
    edited = _with_condition(
        "guard-jobs.lockgate.dev", {"name": "suspended", "expression": suspended_only}, replace=True
    )
    assert coverage.not_called(edited, {"production": {"lockgate.dev/environment": "production"}}) == {}


SERVED_AT = installed.settings_from(rendering.render()).webhook_public_host  # as the chart's Deployment sets it
AT_THE_CHART_SERVICE = coverage.Setup(served_at=SERVED_AT, operator_managed=False)


def test_the_chart_calls_the_operators_guard_at_the_host_its_deployment_names() -> None:
    gated = {"production": {"lockgate.dev/environment": "production"}}
    assert SERVED_AT.endswith(".svc")
    assert coverage.not_called(CHART, gated, AT_THE_CHART_SERVICE) == {}
    for host in (SERVED_AT.upper(), f"{SERVED_AT}.cluster.local"):  # the same Service
        assert coverage.not_called(CHART, gated, coverage.Setup(served_at=host)) == {}, host
        by_url = copy.deepcopy(CHART)
        for hook in by_url["webhooks"]:
            hook["clientConfig"] = {"url": f"https://{host}:443/{hook['name'].removesuffix('.lockgate.dev')}"}
        assert coverage.not_called(by_url, gated, AT_THE_CHART_SERVICE) == {}, host


def test_a_guard_webhook_that_may_be_skipped_or_calls_elsewhere_is_a_gap() -> None:
    gated = {"production": {"lockgate.dev/environment": "production"}}
    edited = copy.deepcopy(CHART)
    hooks = {hook["name"]: hook for hook in edited["webhooks"]}
    hooks["guard-deployments.lockgate.dev"]["failurePolicy"] = "Ignore"
    hooks["guard-statefulsets.lockgate.dev"]["clientConfig"]["service"]["name"] = "allow-all"
    hooks["guard-daemonsets.lockgate.dev"]["clientConfig"]["service"]["path"] = "/stamp-promotion"
    hooks["guard-cronjobs.lockgate.dev"]["clientConfig"] = {"url": "https://allow-all.example/guard-cronjobs"}
    found = coverage.not_called(edited, gated, AT_THE_CHART_SERVICE)
    namespace, service = SERVED_AT.split(".")[1], SERVED_AT.split(".")[0]
    assert found == {
        "production": [
            "guard-deployments.lockgate.dev: its failurePolicy is Ignore, so the API server admits a change "
            "unjudged whenever the guard does not answer in time (the operator restarting, unreachable or slow)",
            f"guard-statefulsets.lockgate.dev: it calls service {namespace}/allow-all, not the operator's "
            f"{namespace}/{service}",
            "guard-daemonsets.lockgate.dev: it calls path /stamp-promotion, not the guard's /guard-daemonsets",
            f"guard-cronjobs.lockgate.dev: it calls https://allow-all.example/guard-cronjobs, not the operator at "
            f"{SERVED_AT}",
        ]
    }
    assert "Set the guard webhooks' failurePolicy to Fail" in coverage.message(found)
    assert "Point the webhook's clientConfig back at the operator's guard" in coverage.message(found)
    # Without the host, only the path is checked; a URL to the operator's own host and the guard's path is no gap.
    assert len(coverage.not_called(edited, gated)["production"]) == 2
    hooks["guard-cronjobs.lockgate.dev"]["clientConfig"] = {"url": f"https://{SERVED_AT}:443/guard-cronjobs"}
    assert len(coverage.not_called(edited, gated, AT_THE_CHART_SERVICE)["production"]) == 3


@pytest.mark.parametrize("operator_managed", [False, True], ids=["chart", "operator-managed"])
def test_only_the_guards_the_operator_writes_fail_open_itself_may_be_ignore(operator_managed: bool) -> None:
    """Where Kopf writes the configuration, the Pod, ReplicaSet, Job and Scale guards fail open by design; any other
    guard with failurePolicy Ignore, or any at all in the chart's configuration, may be skipped: a gap."""
    gated = {"production": {"lockgate.dev/environment": "production"}}
    setup = coverage.Setup(served_at=SERVED_AT, operator_managed=operator_managed)
    for guarded in imageguard.GUARDED:
        edited = copy.deepcopy(CHART)
        name = f"{guarded.webhook_id}.lockgate.dev"
        for hook in edited["webhooks"]:
            if hook["name"] == name:
                hook["failurePolicy"] = "Ignore"
        found = coverage.not_called(edited, gated, setup)
        exempt = operator_managed and guarded.fails_open_when_operator_managed
        if exempt:
            assert found == {}, name
        else:
            [gap] = found["production"]
            assert gap.startswith(f"{name}: its failurePolicy is Ignore, so the API server admits a change"), gap
    assert {g.webhook_id for g in imageguard.GUARDED if g.fails_open_when_operator_managed} == {
        "guard-pods",
        "guard-replicasets",
        "guard-replicasets-delete",
        "guard-jobs",
        "guard-replicasets-scale",
        "guard-replicationcontrollers-scale",
    }


def test_a_guard_that_may_be_skipped_is_worded_apart_from_one_that_is_not_called() -> None:
    ignore = "guard-deployments.lockgate.dev: its failurePolicy is Ignore, so the API server admits ..."
    selector = "guard-pods.lockgate.dev: its namespaceSelector does not select this namespace"
    only_skipped = coverage.message({"a": [ignore], "b": [ignore]})
    assert only_skipped.startswith("the image guard may be skipped in gated namespace(s) a, b, so a direct image")
    assert "could pass unjudged: a: guard-deployments" in only_skipped
    mixed = coverage.message({"a": [ignore], "b": [ignore, selector]})
    assert mixed.startswith("the image guard is not called in gated namespace(s) a, b, so")
    assert "would pass unjudged: b: " in mixed and selector in mixed  # the example is a namespace not called at all


def test_with_no_gap_the_message_says_which_guards_fail_open_by_design() -> None:
    assert coverage.message({}) == "the image guard is called in every namespace this policy gates"
    managed = coverage.message({}, setup=coverage.Setup(operator_managed=True))
    assert managed.startswith("the image guard is called in every namespace this policy gates; the operator writes")
    fail_open = {f"{g.webhook_id}.lockgate.dev" for g in imageguard.GUARDED if g.fails_open_when_operator_managed}
    assert fail_open and all(name in managed for name in fail_open)
    assert "guard-deployments.lockgate.dev" not in managed
