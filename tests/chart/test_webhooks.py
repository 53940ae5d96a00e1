"""The chart's webhook configurations are the ones admission uses: loaded into the embedded API, with
the service pointed at the in-process operator (webhooks unmanaged, the chart's generated certificate),
they stamp an Approval and deny a direct ``kubectl set image`` in production.
"""

from __future__ import annotations

import copy
import json
import shutil
from typing import Any

import pytest
import yaml

from lockgate.handlers import admission, testing
from tests.chart import installed, rendering, scenario
from tests.lifecycle import manifests

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="drives the real kubectl")

# What Kopf serves (handler id -> resource and operations), as Kopf would configure it when managing.
SERVED = {
    "stamp-requester": ("Mutating", "promotions", ["CREATE", "UPDATE"]),
    "stamp-approver": ("Mutating", "approvals", ["CREATE"]),
    "approval-withdrawal": ("Validating", "approvals", ["DELETE"]),
    "approval-immutable": ("Validating", "approvals", ["UPDATE"]),
    "policy-valid": ("Validating", "gatepolicies", ["CREATE", "UPDATE"]),
    "guard-deployments": ("Validating", "deployments", ["CREATE", "UPDATE"]),
    "guard-statefulsets": ("Validating", "statefulsets", ["CREATE", "UPDATE"]),
    "guard-daemonsets": ("Validating", "daemonsets", ["CREATE", "UPDATE"]),
    "guard-replicasets": ("Validating", "replicasets", ["CREATE", "UPDATE"]),
    "guard-replicasets-scale": ("Validating", "replicasets/scale", ["UPDATE"]),
    "guard-replicasets-delete": ("Validating", "replicasets", ["DELETE"]),
    "guard-pods": ("Validating", "pods", ["CREATE", "UPDATE"]),
    "guard-pods-ephemeralcontainers": ("Validating", "pods/ephemeralcontainers", ["UPDATE"]),
    "guard-jobs": ("Validating", "jobs", ["CREATE", "UPDATE"]),
    "guard-cronjobs": ("Validating", "cronjobs", ["CREATE", "UPDATE"]),
    "guard-replicationcontrollers": ("Validating", "replicationcontrollers", ["CREATE", "UPDATE"]),
    "guard-replicationcontrollers-scale": ("Validating", "replicationcontrollers/scale", ["UPDATE"]),
}
# The guards of the kinds Kubernetes' controllers make: the controllers' own requests skip the call.
DERIVED = ("guard-replicasets", "guard-pods", "guard-jobs")
SCALES = ("guard-replicasets-scale", "guard-replicationcontrollers-scale")  # called when the replicas rise
DELETES = ("guard-replicasets-delete",)  # a person's delete: never the controllers' or the garbage collector's
CONDITIONAL = (*DERIVED, *SCALES, *DELETES)  # called only when it matters (matchConditions)


def _webhooks(objects: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    found = {}
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        config = rendering.one(objects, kind)
        assert config["metadata"]["name"] == admission.MANAGED_NAME
        for hook in config["webhooks"]:
            found[hook["name"]] = (kind.removesuffix("WebhookConfiguration"), hook)
    return found


def test_the_chart_renders_every_webhook_the_operator_serves_and_nothing_else() -> None:
    hooks = _webhooks(rendering.render())
    assert set(hooks) == {f"{hid}.lockgate.dev" for hid in SERVED}
    for hid, (kind, resource, operations) in SERVED.items():
        got_kind, hook = hooks[f"{hid}.lockgate.dev"]
        assert got_kind == kind
        assert hook["clientConfig"]["service"]["path"] == f"/{hid}"
        assert hook["rules"][0]["resources"] == [resource] and hook["rules"][0]["operations"] == operations
        side_effects = "NoneOnDryRun" if hid.startswith("guard-") or hid == "approval-withdrawal" else "None"
        assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == side_effects
        assert hook["clientConfig"]["caBundle"]
        if hid.startswith("guard-"):
            assert hook["namespaceSelector"]["matchExpressions"][0]["key"] == "lockgate.dev/environment"
        else:
            assert "namespaceSelector" not in hook
        assert ("matchConditions" in hook) == (hid in CONDITIONAL)


def _conditions(hooks: dict[str, tuple[str, dict[str, Any]]], hid: str) -> dict[str, str]:
    return {c["name"]: c["expression"] for c in hooks[f"{hid}.lockgate.dev"][1].get("matchConditions") or []}


def test_the_workload_controllers_and_nobody_else_skip_the_guard_of_the_kinds_they_make() -> None:
    """The rendered matchConditions, evaluated with CEL as the API server does (Kubernetes >= 1.28)."""
    from lockgate.gates.celimport import cel

    hooks = _webhooks(rendering.render())
    controller = "system:serviceaccount:kube-system:replicaset-controller"

    def called(expression: str, username: str) -> bool:
        return bool(cel.evaluate(expression, {"request": {"userInfo": {"username": username}}}))

    for hid in (*DERIVED, *DELETES):
        condition = _conditions(hooks, hid)["not-a-workload-controller"]
        skipped = ["system:kube-controller-manager", controller]
        others = ["alice", "system:serviceaccount:ci:deployer", controller + "x"]
        assert [called(condition, user) for user in skipped + others] == [False] * 2 + [True] * 3
        # Emptying a deleted namespace, the namespace controller deletes; it makes and changes nothing.
        assert called(condition, "system:serviceaccount:kube-system:namespace-controller") == (hid not in DELETES)
    env = rendering.env(rendering.one(rendering.render(), "Deployment"))
    assert controller in env["LOCKGATE_WORKLOAD_CONTROLLERS"]  # the guard allows the same identities
    none = _webhooks(rendering.render({"operator": {"workloadControllers": []}}))
    assert all(set(_conditions(none, hid)) == {"creates-or-changes-images"} for hid in DERIVED)
    unset = _webhooks(rendering.render({"operator": {"workloadControllers": None}}))  # null renders as empty
    for hooks_without in (none, unset):
        for hid in DELETES:  # every other delete then: the guard lets them pass
            [condition] = _conditions(hooks_without, hid).values()
            assert not called(condition, "system:serviceaccount:kube-system:namespace-controller")
            assert called(condition, "system:kube-controller-manager")
    # No controller scales these kinds through a Scale, but an autoscaler may act as kube-controller-manager.
    assert all(set(_conditions(hooks, hid)) == set(_conditions(none, hid)) == {"raises-replicas"} for hid in SCALES)


def _shaped(hid: str, pod: dict[str, Any]) -> dict[str, Any]:
    return {"spec": pod} if hid == "guard-pods" else {"spec": {"template": {"spec": pod}}}


@pytest.mark.parametrize("hid", DERIVED)
def test_the_guard_of_a_derived_kind_is_called_for_a_create_or_an_image_change_only(hid: str) -> None:
    """A label edit or the garbage collector's owner references need no guard (nor the operator, when it is
    down); an image or a lockgate.dev/* annotation (provenance, only the operator's) does."""
    from lockgate.gates.celimport import cel

    expression = _conditions(_webhooks(rendering.render()), hid)["creates-or-changes-images"]
    old_pod = {"containers": [{"name": "web", "image": "web:1"}], "volumes": [{"name": "data", "emptyDir": {}}]}

    def called(operation: str, pod: dict[str, Any], annotations: dict[str, str] | None = None) -> bool:
        request = {"operation": operation}
        old = {"metadata": {"annotations": {"team": "web"}}, **_shaped(hid, old_pod)} if operation == "UPDATE" else None
        new = {"metadata": {"annotations": annotations or {"team": "web"}}, **_shaped(hid, pod)}
        return bool(cel.evaluate(expression, {"request": request, "object": new, "oldObject": old}))

    image_volume = {"name": "tools", "image": {"reference": "tools:1"}}
    assert called("CREATE", old_pod)
    assert not called("UPDATE", old_pod)
    assert called("UPDATE", {**old_pod, "containers": [{"name": "web", "image": "web:6.6.6"}]})
    assert called("UPDATE", {**old_pod, "initContainers": [{"name": "setup", "image": "setup:1"}]})
    assert called("UPDATE", {**old_pod, "ephemeralContainers": [{"name": "debug", "image": "busybox"}]})
    assert called("UPDATE", {**old_pod, "volumes": [*old_pod["volumes"], image_volume]})
    assert called("UPDATE", {**old_pod, "containers": [{"name": "other", "image": "web:1"}]})  # by name
    assert not called("UPDATE", old_pod, {"team": "web", "owner": "bob"})
    assert called("UPDATE", old_pod, {"team": "web", "lockgate.dev/promotion": "production/forged"})


def test_a_jobs_guard_is_called_when_its_pod_template_labels_or_annotations_change() -> None:
    """A suspended Job's template metadata may change, and an injector reads it to choose a sidecar image."""
    from lockgate.gates.celimport import cel

    expression = _conditions(_webhooks(rendering.render()), "guard-jobs")["creates-or-changes-images"]
    pod = {"containers": [{"name": "web", "image": "web:1"}]}

    def job(template_metadata: dict[str, Any]) -> dict[str, Any]:
        return {"metadata": {}, "spec": {"suspend": True, "template": {"metadata": template_metadata, "spec": pod}}}

    before = job({"labels": {"app": "web"}})
    for after in (
        job({"labels": {"app": "web", "istio.io/rev": "canary"}}),
        job({"labels": {"app": "web"}, "annotations": {"sidecar.istio.io/proxyImage": "evil:1"}}),
    ):
        assert cel.evaluate(expression, {"request": {"operation": "UPDATE"}, "object": after, "oldObject": before})
    resumed = {**before, "spec": {**before["spec"], "suspend": False}}
    assert not cel.evaluate(expression, {"request": {"operation": "UPDATE"}, "object": resumed, "oldObject": before})


def test_a_replicasets_guard_is_called_when_its_replicas_rise_by_the_object_or_its_scale() -> None:
    """Scaling an old ReplicaSet up runs the earlier image it holds: the guard is called for it, whether
    the replicas rise on the ReplicaSet (its default is 1) or on its Scale (which omits a count of 0)."""
    from lockgate.gates.celimport import cel

    hooks = _webhooks(rendering.render())
    on_object = _conditions(hooks, "guard-replicasets")["creates-or-changes-images"]
    on_scale = _conditions(hooks, "guard-replicasets-scale")["raises-replicas"]
    assert on_scale == _conditions(hooks, "guard-replicationcontrollers-scale")["raises-replicas"]

    def replica_set(replicas: int | None) -> dict[str, Any]:
        spec = {"template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}}
        return {"metadata": {}, "spec": spec if replicas is None else {**spec, "replicas": replicas}}

    def scale(replicas: int) -> dict[str, Any]:
        return {"kind": "Scale", "spec": {"replicas": replicas} if replicas else {}}

    def called(expression: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
        context = {"request": {"operation": "UPDATE"}, "object": new, "oldObject": old}
        return bool(cel.evaluate(expression, context))

    assert called(on_object, replica_set(0), replica_set(3))
    assert called(on_object, replica_set(None), replica_set(2))
    assert not called(on_object, replica_set(3), replica_set(0))
    assert not called(on_object, replica_set(None), replica_set(1))
    assert called(on_scale, scale(0), scale(3))
    assert not called(on_scale, scale(3), scale(0))
    assert not called(on_scale, scale(2), scale(2))


def test_operator_managed_webhooks_render_no_configurations_and_grant_the_rbac() -> None:
    objects = rendering.render({"webhook": {"operatorManaged": True}})
    assert not rendering.of_kind(objects, "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
    role = rendering.one(objects, "ClusterRole", "lockgate-operator")
    assert any("admissionregistration.k8s.io" in r["apiGroups"] for r in role["rules"])
    assert rendering.env(rendering.one(objects, "Deployment"))["LOCKGATE_MANAGE_WEBHOOKS"] == "true"
    assert rendering.env(rendering.one(rendering.render(), "Deployment"))["LOCKGATE_MANAGE_WEBHOOKS"] == "false"


def test_the_charts_webhooks_stamp_an_approval_and_deny_a_direct_image_change() -> None:
    with installed.installed() as s:
        assert s.kubectl("get", "validatingwebhookconfiguration", "lockgate.dev").returncode == 0
        s.kubectl("apply", "-f", str(rendering.REPO / "examples" / "gatepolicy-production.yaml"))
        s.apply(manifests.promotion(), context="alice")
        promo = s.wait_for(
            lambda: (p := s.get("promo", "web-2")).get("status", {}).get("phase") == "AwaitingApproval" and p,
            message="web-2 awaiting approval",
        )
        assert promo["status"]["requestedBy"]["username"] == "alice"
        forged = s.apply(
            manifests.approval("web-2-bob", "web-2", extra="  approver: mallory"), context="bob", check=False
        )
        assert forged.returncode != 0 and "stamp-approver.lockgate.dev" in forged.stderr
        s.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
        approval = s.get("appr", "web-2-bob")
        assert approval["spec"]["approver"] == "bob"  # stamped from the authenticated request
        assert "engineering-leads" in approval["spec"]["groups"]
        assert approval["spec"]["specHash"] == promo["status"]["specHash"]

        denied = s.kubectl(
            "set", "image", "deployment/web", "web=registry.example/web:evil", "-n", "production", check=False
        )
        assert denied.returncode != 0
        assert 'admission webhook "guard-deployments.lockgate.dev" denied the request' in denied.stderr
        assert s.image() == "registry.example/web:1.0"
        # Outside the guard's namespaceSelector nothing is called.
        s.kubectl("set", "image", "deployment/web", "web=registry.example/web:1.1", "-n", "staging")
        assert scenario.refused(s) == []


def test_with_the_operator_down_controllers_still_make_pods_and_nobody_else_does() -> None:
    """The chart's Pod guard fails closed, but kube-controller-manager's requests and changes of no image skip
    it (matchConditions): during an operator outage a ReplicaSet replaces its Pods in production and a Pod can
    be labelled; a hand-made Pod or a Pod's new image is refused."""
    controller = "system:serviceaccount:kube-system:replicaset-controller"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "registry.example/web:1.0"}]},
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "replicaset-controller"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "replicaset-controller", "namespace": "kube-system"}],
    }
    with installed.installed() as s:
        s.apply(json.dumps(role))
        s.stop_operator()
        create = ("create", "-n", "production", "-f", "-")
        made = s.kubectl(*create, f"--as={controller}", input=json.dumps(pod), check=False)
        assert made.returncode == 0, made.stderr
        labelled = s.kubectl("label", "pod", "web-1", "-n", "production", "on-call=looked-at", check=False)
        assert labelled.returncode == 0, labelled.stderr  # no image changes: the guard is not called
        pod["metadata"]["name"] = "by-hand"
        for refused in (
            s.kubectl(*create, input=json.dumps(pod), check=False),
            s.kubectl("set", "image", "pod/web-1", "web=registry.example/web:evil", "-n", "production", check=False),
        ):
            assert refused.returncode != 0
            assert 'failed calling webhook "guard-pods.lockgate.dev"' in refused.stderr


def test_a_replicasets_guard_is_called_when_its_labels_or_owners_change() -> None:
    """Relabelled out of its Deployment's selector, or re-owned, a paused Deployment's ReplicaSet is let go, as if
    deleted: the guard is called for any label or owner change of a ReplicaSet (and judges whether it leaves)."""
    from lockgate.gates.celimport import cel

    expression = _conditions(_webhooks(rendering.render()), "guard-replicasets")["creates-or-changes-images"]
    spec = {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}}

    def called(old_labels: dict[str, str] | None, new_labels: dict[str, str] | None) -> bool:
        def rs(labels: dict[str, str] | None) -> dict[str, Any]:
            return {"metadata": {"labels": labels} if labels is not None else {}, "spec": spec}

        context = {"request": {"operation": "UPDATE"}, "object": rs(new_labels), "oldObject": rs(old_labels)}
        return bool(cel.evaluate(expression, context))

    assert called({"app": "web"}, {"app": "web-quarantined"})
    assert called({"app": "web"}, None)
    assert called(None, {"app": "web"})
    assert not called({"app": "web"}, {"app": "web"})
    assert not called(None, None)

    def re_owned(old_owners: list[dict[str, Any]] | None, new_owners: list[dict[str, Any]] | None) -> bool:
        def rs(owners: list[dict[str, Any]] | None) -> dict[str, Any]:
            meta = {"labels": {"app": "web"}, **({"ownerReferences": owners} if owners is not None else {})}
            return {"metadata": meta, "spec": spec}

        context = {"request": {"operation": "UPDATE"}, "object": rs(new_owners), "oldObject": rs(old_owners)}
        return bool(cel.evaluate(expression, context))

    deployment = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u1", "controller": True}]
    decoy = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "decoy", "uid": "u2", "controller": True}]
    assert re_owned(deployment, decoy) and re_owned(deployment, None) and re_owned(deployment, [])
    assert not re_owned(deployment, deployment) and not re_owned(None, None)
    annotated = {**spec, "template": {**spec["template"], "metadata": {"annotations": {"touched": "yes"}}}}
    edited = {"request": {"operation": "UPDATE"}, "object": {"metadata": {}, "spec": annotated}}
    assert cel.evaluate(expression, {**edited, "oldObject": {"metadata": {}, "spec": spec}})  # its template


def _guarded(s: testing.Stack, policy: str, status: str) -> dict[str, Any] | None:
    """The GatePolicy once its ImageGuardCalled condition has ``status``."""
    got = s.get("gatepolicy", policy, namespace="")
    found = [c for c in got.get("status", {}).get("conditions") or [] if c["type"] == "ImageGuardCalled"]
    return got if found and found[0]["status"] == status else None


def test_a_gated_namespace_the_guards_selector_leaves_out_is_reported_on_its_gate_policy() -> None:
    """A GatePolicy may gate a namespace by labels of its own (``team: payments``) that the chart's guard selector
    (``lockgate.dev/environment`` exists) does not select: Promotions there are gated, but ``kubectl set image``
    would pass unjudged. The policy says so (ImageGuardCalled=False, naming the namespace and the fix) until the
    namespace is labelled, and then the guard refuses the direct change."""
    payments_policy = {
        "apiVersion": "lockgate.dev/v1alpha1",
        "kind": "GatePolicy",
        "metadata": {"name": "payments"},
        "spec": {
            "namespaceSelector": {"matchLabels": {"team": "payments"}},
            "approvals": {"rules": [{"name": "leads", "groups": ["engineering-leads"], "count": 1}]},
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "pay"},
        "spec": {
            "selector": {"matchLabels": {"app": "pay"}},
            "template": {
                "metadata": {"labels": {"app": "pay"}},
                "spec": {"containers": [{"name": "pay", "image": "registry.example/pay:1"}]},
            },
        },
    }

    with installed.installed() as s:
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "payments", "labels": {"team": "payments"}},
        }
        s.kubectl("create", "-f", "-", input=json.dumps(namespace))
        s.kubectl("create", "-n", "payments", "-f", "-", input=json.dumps(deployment))
        s.kubectl("apply", "-f", str(rendering.REPO / "examples" / "gatepolicy-production.yaml"))
        s.apply(json.dumps(payments_policy))
        reported = s.wait_for(lambda: _guarded(s, "payments", "False"), message="payments reported unguarded")
        assert reported["status"]["unguardedNamespaces"] == ["payments"]
        said = next(c for c in reported["status"]["conditions"] if c["type"] == "ImageGuardCalled")
        assert said["reason"] == "GuardNotCalled"
        assert "not called in gated namespace(s) payments" in said["message"]
        assert "guard-deployments.lockgate.dev: its namespaceSelector does not select this namespace" in said["message"]
        assert s.wait_for(lambda: _guarded(s, "production", "True"), message="production guarded")
        set_image = ("set", "image", "deployment/pay", "pay=registry.example/pay:evil", "-n", "payments")
        assert s.kubectl(*set_image, check=False).returncode == 0  # the gap it reports is real

        s.kubectl("label", "namespace", "payments", "lockgate.dev/environment=payments")
        cleared = s.wait_for(lambda: _guarded(s, "payments", "True"), message="payments guarded")
        assert cleared["status"]["unguardedNamespaces"] == []
        refused = s.kubectl(*set_image[:3], "pay=registry.example/pay:worse", "-n", "payments", check=False)
        assert refused.returncode != 0
        assert 'admission webhook "guard-deployments.lockgate.dev" denied the request' in refused.stderr
        assert scenario.refused(s) == []


def test_a_missing_guard_configuration_is_reported_from_the_start_until_it_is_applied() -> None:
    """Installed without its ValidatingWebhookConfiguration (a GitOps tool that skipped it, a deleted one),
    nothing calls the guard: a watch says nothing of an object that does not exist, so the operator reads
    it at the start and reports every gated namespace; applying it clears the report."""
    objects = rendering.render(installed.chart_values())
    config = rendering.one(objects, "ValidatingWebhookConfiguration")
    with installed.installed([o for o in objects if o is not config]) as s:
        s.kubectl("apply", "-f", str(rendering.REPO / "examples" / "gatepolicy-production.yaml"))
        missing = s.wait_for(lambda: _guarded(s, "production", "False"), message="production reported unguarded")
        said = next(c for c in missing["status"]["conditions"] if c["type"] == "ImageGuardCalled")
        assert "guard-deployments.lockgate.dev: missing from the configuration" in said["message"]
        s.apply(yaml.safe_dump(config))
        guarded = s.wait_for(lambda: _guarded(s, "production", "True"), message="production guarded")
        assert guarded["status"]["unguardedNamespaces"] == []
        assert scenario.refused(s) == []


def test_the_operator_gets_the_charts_image_annotations_as_its_settings_read_them(monkeypatch) -> None:
    """values.yaml's default list is the guard's own; [] or null judges container images only."""
    from lockgate import settings
    from lockgate.admission import imageguard

    for values, expected in (
        (None, list(imageguard.IMAGE_ANNOTATIONS)),
        ({"operator": {"imageAnnotations": ["example.com/*-image"]}}, ["example.com/*-image"]),
        ({"operator": {"imageAnnotations": []}}, []),
        ({"operator": {"imageAnnotations": None}}, []),
    ):
        env = rendering.env(rendering.one(rendering.render(values), "Deployment"))
        monkeypatch.setenv("LOCKGATE_IMAGE_ANNOTATIONS", env["LOCKGATE_IMAGE_ANNOTATIONS"])
        assert settings.OperatorSettings().image_annotations == expected, values


def test_a_guard_webhook_edited_to_fail_open_or_call_elsewhere_is_reported_until_restored() -> None:
    """Someone who may edit webhook configurations sets ``failurePolicy: Ignore`` on one guard webhook (a change
    passes unjudged whenever the guard does not answer) and points another's ``clientConfig`` at a Service of their
    own: the policy says both (ImageGuardCalled=False, with what to do) until the chart's configuration is back."""
    with installed.installed() as s:
        s.kubectl("apply", "-f", str(rendering.REPO / "examples" / "gatepolicy-production.yaml"))
        assert s.wait_for(lambda: _guarded(s, "production", "True"), message="production guarded")
        get = ("get", "validatingwebhookconfiguration", "lockgate.dev", "-o", "json")
        edited = json.loads(s.kubectl(*get).stdout)
        chart_hooks = copy.deepcopy(edited["webhooks"])
        for hook in edited["webhooks"]:
            if hook["name"] == "guard-deployments.lockgate.dev":
                hook["failurePolicy"] = "Ignore"
            if hook["name"] == "guard-statefulsets.lockgate.dev":
                hook["clientConfig"]["service"]["name"] = "allow-all"
        s.kubectl("replace", "-f", "-", input=json.dumps(edited))
        reported = s.wait_for(lambda: _guarded(s, "production", "False"), message="production reported")
        said = next(c for c in reported["status"]["conditions"] if c["type"] == "ImageGuardCalled")
        assert "guard-deployments.lockgate.dev: its failurePolicy is Ignore" in said["message"]
        assert f"guard-statefulsets.lockgate.dev: it calls service {rendering.NAMESPACE}/allow-all" in said["message"]
        assert "Set the guard webhooks' failurePolicy to Fail" in said["message"]
        assert reported["status"]["unguardedNamespaces"] == ["production"]
        restored = {**json.loads(s.kubectl(*get).stdout), "webhooks": chart_hooks}
        s.kubectl("replace", "-f", "-", input=json.dumps(restored))
        assert s.wait_for(lambda: _guarded(s, "production", "True"), message="production guarded again")
        assert scenario.refused(s) == []
