"""The image-change guard: in a gated namespace, only the operator, for a Promotion that is rolling
out (or rolling back), may change a workload's container image. Everything else passes.

Every kind that runs containers is guarded (``GUARDED``), and every image it runs: containers, init
and ephemeral containers, image volumes, and the pod template annotations that choose the image a
sidecar or agent injector adds (``IMAGE_ANNOTATIONS``: break-glass only, a Promotion never changes them);
and what would run an image no current approval covers without changing one:
raising a ReplicaSet's or ReplicationController's replicas (a Deployment's older
ReplicaSet holds an earlier image), pausing a Deployment (its controller then scales an older
ReplicaSet back up when the current one goes), and, for a Deployment already paused, deleting its current
ReplicaSet, relabelling it out of the selector or changing its owner (``judge_removal``). The Promotion's target kinds
(``PROMOTABLE``) change only through the operator; the kinds Kubernetes' controllers make from a guarded
owner's template (``DERIVED``: a Deployment's ReplicaSets, their Pods, a CronJob's Jobs) change only through those
controllers (``workload_controllers``); the images of CronJobs and ReplicationControllers, which no
Promotion rolls out, and debug containers added to a Pod change only by break-glass.

The operator's deploy patch precedes its ``Deploying`` status write, so the Promotion may still read
``Pending``, ``AwaitingApproval``, ``Approved`` or no phase at all (approved before its first status
write landed): then the patch must name that Promotion's current cycle (the status's spec hash, or
without one the hash of the spec as it is now) and set its spec image.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

from lockgate.admission import stamping
from lockgate.api import gatepolicy
from lockgate.gates import policies
from lockgate.rollout import health, plan

# The provenance annotations the operator's patch carries (``rollout.plan`` writes them).
ANNOTATION_PROMOTION = plan.ANNOTATION_PROMOTION
ANNOTATION_OPERATION = plan.ANNOTATION_OPERATION
ANNOTATION_SPEC_HASH = plan.ANNOTATION_SPEC_HASH


@dataclasses.dataclass(frozen=True)
class GuardedKind:
    """A kind whose container images the guard protects, as its webhook's rule names it."""

    kind: str
    group: str
    plural: str
    subresource: str | None = None
    deletes: bool = False
    """Judges deletions (only), not creates and updates."""

    @property
    def webhook_id(self) -> str:
        return (
            f"guard-{self.plural}"
            + (f"-{self.subresource}" if self.subresource else "")
            + ("-delete" if self.deletes else "")
        )

    @property
    def operations(self) -> list[Literal["CREATE", "UPDATE", "DELETE"]]:
        return ["DELETE"] if self.deletes else ["UPDATE"] if self.subresource else ["CREATE", "UPDATE"]

    @property
    def fails_open_when_operator_managed(self) -> bool:
        """Whether this guard's webhook fails open (``failurePolicy: Ignore``) in the configurations Kopf writes
        (``manage_webhooks``): with no selector or conditions there, every controller in the cluster (a ReplicaSet
        replacing its Pods, autoscalers) would wait on it, so an operator outage must not stop them."""
        return (self.kind in DERIVED and not self.subresource) or self.subresource == "scale"


GUARDED = (
    GuardedKind("Deployment", "apps", "deployments"),
    GuardedKind("StatefulSet", "apps", "statefulsets"),
    GuardedKind("DaemonSet", "apps", "daemonsets"),
    GuardedKind("ReplicaSet", "apps", "replicasets"),
    GuardedKind("ReplicaSet", "apps", "replicasets", "scale"),  # kubectl scale, autoscalers
    GuardedKind("ReplicaSet", "apps", "replicasets", deletes=True),  # the one a paused Deployment runs
    GuardedKind("Pod", "", "pods"),
    GuardedKind("Pod", "", "pods", "ephemeralcontainers"),  # kubectl debug
    GuardedKind("Job", "batch", "jobs"),
    GuardedKind("CronJob", "batch", "cronjobs"),
    GuardedKind("ReplicationController", "", "replicationcontrollers"),
    GuardedKind("ReplicationController", "", "replicationcontrollers", "scale"),
)
#: The kinds a Promotion targets: the operator rolls them out.
PROMOTABLE = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
#: The kinds Kubernetes' controllers make from a guarded owner's template.
DERIVED = frozenset({"ReplicaSet", "Pod", "Job"})
#: The kinds whose replica count starts Pods from their own template, whatever images it holds.
SCALED = frozenset({"ReplicaSet", "ReplicationController"})
#: kube-controller-manager's identities that write ReplicaSets, Pods and Jobs (with and without
#: ``--use-service-account-credentials``).
KUBE_CONTROLLERS = (
    "system:serviceaccount:kube-system:deployment-controller",
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:serviceaccount:kube-system:daemon-set-controller",
    "system:serviceaccount:kube-system:job-controller",
    "system:serviceaccount:kube-system:cronjob-controller",
    "system:serviceaccount:kube-system:replication-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",  # owner references and finalizers
    "system:kube-controller-manager",
)
#: Deletes everything in a deleted namespace: it may delete a ReplicaSet unjudged (nothing can start in a
#: terminating namespace), and nothing else: it writes no workload.
NAMESPACE_CONTROLLER = "system:serviceaccount:kube-system:namespace-controller"
_CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")
#: Pod template annotations (glob patterns) whose value chooses an image a mutating webhook adds to the Pods:
#: a sidecar or agent injector's image or version. The guard judges them as images (``images``).
IMAGE_ANNOTATIONS = (
    "sidecar.istio.io/proxyImage",  # Istio's sidecar
    "config.linkerd.io/proxy-image",  # Linkerd's proxy, init and debug images and their versions
    "config.linkerd.io/proxy-version",
    "config.linkerd.io/init-image",
    "config.linkerd.io/init-image-version",
    "config.linkerd.io/debug-image",
    "config.linkerd.io/debug-image-version",
    "vault.hashicorp.com/agent-image",  # Vault's agent
    "dapr.io/sidecar-image",  # Dapr's sidecar
    "admission.datadoghq.com/*-lib.version",  # Datadog's tracing libraries (init containers)
    "admission.datadoghq.com/*-lib.custom-image",
)
_ANNOTATION = "annotation "  # how an image-choosing annotation is named among the containers (``images``)


def pod_template(kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod template inside an object of ``kind`` (a CronJob's job template's, ...); empty for a Pod."""
    if kind == "Pod":
        return {}
    spec: Mapping[str, Any] = obj.get("spec") or {}
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return spec.get("template") or {}


def pod_spec(kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec inside an object of ``kind`` (a Pod's own spec, a CronJob's job template's, ...)."""
    if kind == "Pod":
        return obj.get("spec") or {}
    return pod_template(kind, obj).get("spec") or {}


def chosen_by_annotation(name: str) -> bool:
    """Whether an ``images`` entry (its name, after the ``field/``) is an annotation's, not a container's."""
    return name.startswith(_ANNOTATION)


def images(kind: str, obj: Mapping[str, Any], image_annotations: Collection[str] = ()) -> dict[str, str | None]:
    """``field/name`` -> image, for every container, init and ephemeral container, image volume, and pod template
    annotation matching ``image_annotations`` (glob patterns: the injector's image it chooses)."""
    pod = pod_spec(kind, obj)
    found = {f"{field}/{c.get('name')}": c.get("image") for field in _CONTAINER_FIELDS for c in pod.get(field) or []}
    for volume in pod.get("volumes") or []:  # an OCI image mounted as a volume (ImageVolume) is code too
        if isinstance(volume.get("image"), Mapping):
            found[f"volumes/volume {volume.get('name')}"] = volume["image"].get("reference")
    if image_annotations:  # a Pod has no template: an injector read its own before the guard sees its containers
        for key, value in ((pod_template(kind, obj).get("metadata") or {}).get("annotations") or {}).items():
            if any(fnmatch.fnmatchcase(key, pattern) for pattern in image_annotations):
                found[f"annotations/{_ANNOTATION}{key}"] = str(value)
    return found


def _changes(
    kind: str, old: Mapping[str, Any], new: Mapping[str, Any], image_annotations: Collection[str] = ()
) -> list[tuple[str, str | None, str | None]]:
    """(``field/name``, old image, new image) for every image that differs or is new."""
    before, after = images(kind, old, image_annotations), images(kind, new, image_annotations)
    return [
        (key, before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key) and after.get(key) is not None
    ]


def raised_replicas(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[int, int] | None:
    """(before, after) when an update raises the replica count (of a ReplicaSet, or of its Scale), else None.

    A ReplicaSet without ``spec.replicas`` has one; a Scale without it (omitted when zero) has none.
    """
    if not old.get("metadata"):
        return None  # a new object: its images are judged

    def count(obj: Mapping[str, Any]) -> int:
        spec = obj.get("spec") or {}
        value = spec.get("replicas")
        return int(value) if isinstance(value, int) else (1 if "template" in spec else 0)

    before, after = count(old), count(new)
    return (before, after) if after > before else None


def _by_name(changes: list[tuple[str, str | None, str | None]]) -> list[tuple[str, str | None, str | None]]:
    return [(key.split("/", 1)[1], a, b) for key, a, b in changes]


def changed_images(
    kind: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[tuple[str, str | None, str | None]]:
    """(container, old image, new image) for every container whose image differs or is new."""
    return _by_name(_changes(kind, old, new))


def made_by_controller(
    kind: str, username: str, workload_controllers: Collection[str], subresource: str | None = None
) -> bool:
    """A derived kind written by a workload controller: made from its owner's template (whose images are
    guarded), with the owner's annotations. Not a Scale: no controller scales these kinds through one, and an
    autoscaler may act as kube-controller-manager."""
    return kind in DERIVED and username in workload_controllers and subresource != "scale"


@dataclasses.dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    message: str
    emergency: bool = False


def judge(
    *,
    kind: str,
    namespace: str,
    name: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    user: stamping.User,
    namespace_gated: bool,
    operator_identity: str,
    break_glass_groups: Sequence[str],
    promotion: Mapping[str, Any] | None,
    workload_controllers: Collection[str] = KUBE_CONTROLLERS,
    subresource: str | None = None,
    cronjob: Mapping[str, Any] | None = None,
    image_annotations: Collection[str] = (),
) -> Verdict:
    """May this update of ``kind``/``name`` go through? ``promotion`` is the one its annotation names.

    ``subresource`` ``scale``: ``old`` and ``new`` are the object's Scale (replicas only). ``cronjob``: for a new
    Job, the CronJob its controller reference names (``launching_cronjob``), as the API has it now.
    ``image_annotations``: pod template annotations judged as images (``IMAGE_ANNOTATIONS``).
    """
    keyed = _changes(kind, old, new, image_annotations)
    changes = _by_name(keyed)
    if not namespace_gated:
        return Verdict(True, "NotGated", f"namespace {namespace} is not selected by any GatePolicy")
    if made_by_controller(kind, user.username, workload_controllers, subresource):
        return Verdict(True, "WorkloadController", f"{kind} {name} written by {user.username} from its owner")
    forged = provenance_changes(old, new)
    if forged and user.username != operator_identity:
        return Verdict(
            False,
            "ProvenanceProtected",
            f"annotations {', '.join(forged)} on {kind} {name} record which approved Promotion deployed its image; "
            "only the Lockgate operator sets them",
        )
    if kind == "Job" and not old.get("metadata") and cronjob is not None and runs_cronjob(new, cronjob):
        return Verdict(
            True,
            "CronJobRun",
            f"Job {name} runs CronJob {_name(cronjob)}'s pod template as it is (kubectl create job --from=cronjob)",
        )
    pausing = bool(old.get("metadata")) and health.paused(kind, new) and not health.paused(kind, old)
    if not changes:
        if pausing:
            return _pause(namespace, name, old, user, break_glass_groups)
        if _paused_template_change(kind, old, new):
            return _paused_template(namespace, name, old, user, break_glass_groups)
        if kind == "ReplicaSet" and old.get("metadata") and _template(old) != _template(new):
            return _replica_set_template(namespace, name, old, user, break_glass_groups)
        if kind == "Job" and old.get("metadata") and _template(old) != _template(new):
            return _job_template(namespace, name, old, user, break_glass_groups)
        raised = raised_replicas(old, new) if kind in SCALED else None
        if raised is None:
            return Verdict(True, "NoImageChange", "no container image changes")
        return _scale_up(kind, namespace, name, raised, old, user, break_glass_groups, subresource)
    described = ", ".join(_described(*change) for change in changes)
    if user.username == operator_identity and kind in PROMOTABLE:
        if _promotion_allows(promotion, new, changes):
            return Verdict(True, "PromotionRollout", f"rollout for Promotion {namespace}/{_name(promotion)}")
        return Verdict(
            False,
            "NoActivePromotion",
            f"the operator may change images in {namespace} only for a Promotion that is deploying or rolling back "
            f"({described})",
        )
    if set(user.groups) & set(break_glass_groups):  # the record names all it does: a pause in the same request too
        return _break_glass(
            f"change by {user.username} ({described}){' and pause of Deployment ' + name if pausing else ''}"
        )
    break_glass = "have a break-glass group member make it (recorded as an emergency change needing retro review)"
    if not old.get("metadata"):
        how = (
            "Create it in an ungated namespace and promote it"
            if kind in PROMOTABLE
            else "Run it from a Deployment, StatefulSet or DaemonSet that a Promotion rolls out"
            + (
                ", or run a CronJob's job template as it is (kubectl create job --from=cronjob/NAME)"
                if kind == "Job"
                else ""
            )
        )
        return Verdict(
            False,
            "NewWorkloadInGatedNamespace",
            f"namespace {namespace} is gated by Lockgate: a new {kind} {name} would run images nobody approved "
            f"({described}). {how}, or {break_glass}",
        )
    if kind == "Pod" and all(key.startswith("ephemeralContainers/") for key, _, _ in keyed):  # only debug ones
        return Verdict(
            False,
            "DebugContainerInGatedNamespace",
            f"namespace {namespace} is gated by Lockgate: a debug container would run an image nobody approved in "
            f"Pod {name} ({described}); {break_glass}",
        )
    annotated = [c for c, _, _ in changes if chosen_by_annotation(c)]
    if annotated:
        return Verdict(
            False,
            "ImageAnnotationChange",
            f"namespace {namespace} is gated by Lockgate: the pod template {', '.join(annotated)} of {kind} {name} "
            f"chooses an image that an injector adds to its Pods ({described}), and a Promotion changes only "
            f"container images; {break_glass}. If this annotation chooses no image in your cluster, remove it from "
            "the operator's image annotations (chart value operator.imageAnnotations)",
        )
    if kind in DERIVED:
        return Verdict(
            False,
            "PromotionRequired",
            f"namespace {namespace} is gated by Lockgate: the images of {kind} {name} come from the workload that "
            f"owns it ({described}). Change that Deployment, StatefulSet or DaemonSet through an approved "
            f"Promotion, or {break_glass}",
        )
    if kind not in PROMOTABLE:
        return Verdict(
            False,
            "NotPromotable",
            f"namespace {namespace} is gated by Lockgate: container image changes to {kind} {name} ({described}) "
            f"need approval, and Promotions roll out only Deployments, StatefulSets and DaemonSets; {break_glass}",
        )
    return Verdict(
        False,
        "PromotionRequired",
        f"namespace {namespace} is gated by Lockgate: container image changes to {kind} {name} ({described}) "
        f"need an approved Promotion. Create one: kubectl apply -f promotion.yaml "
        f"(spec.target.name: {name}, spec.image: <new image>), then ask approvers to approve it",
    )


def _described(name: str, before: str | None, after: str | None) -> str:
    """One image change as a message says it (``name`` as ``changed_images`` gives it)."""
    if before:
        return f"{name}: {before} -> {after}"
    if name.startswith("volume "):
        return f"{name}: mounts {after}"
    if chosen_by_annotation(name):
        return f"{name}: set to {after}"
    return f"{name}: new container with {after}"


def _scale_up(
    kind: str,
    namespace: str,
    name: str,
    raised: tuple[int, int],
    old: Mapping[str, Any],
    user: stamping.User,
    break_glass_groups: Sequence[str],
    subresource: str | None,
) -> Verdict:
    """Raising the replicas starts Pods from the object's own template, whatever images it holds (a
    Deployment's older ReplicaSet holds an earlier image): only its controller, or break-glass (recorded
    with the images), may do it."""
    scaled = f"replicas {raised[0]} -> {raised[1]}"
    owners = [
        o.get("name") for o in old.get("metadata", {}).get("ownerReferences") or [] if o.get("kind") == "Deployment"
    ]
    owner = f"deployment/{owners[0]}" if owners else "deployment/<its Deployment>"
    instead = (  # what to do instead
        f"Scale the Deployment that owns it (kubectl scale {owner}), roll back through a Promotion"
        if kind == "ReplicaSet"
        else "Run it from a Deployment, StatefulSet or DaemonSet that a Promotion rolls out"
    )
    ran = _running(kind, old)
    if set(user.groups) & set(break_glass_groups):
        if subresource != "scale":
            return _break_glass(f"scale-up by {user.username} of {kind} {name} ({scaled}, runs {ran})")
        how = (  # the Scale does not say which images it runs, so the record could not either
            f", as break-glass, raise it on the {kind} itself so the emergency record names its images: kubectl "
            f'patch {kind.lower()} {name} -n {namespace} --type merge -p \'{{"spec":{{"replicas":{raised[1]}}}}}\''
        )
    else:
        how = " have a break-glass group member raise it (recorded as an emergency change needing retro review)"
    return Verdict(
        False,
        "ScaleUpNeedsPromotion",
        f"namespace {namespace} is gated by Lockgate: raising the replicas of {kind} {name} ({scaled}) starts Pods "
        f"from its own template{f' ({ran})' if ran else ''}, which no approved Promotion rolls out"
        f"{' (an older ReplicaSet of a Deployment holds an earlier image)' if kind == 'ReplicaSet' else ''}. "
        f"{instead}, or{how}",
    )


_RECORDED = ": recorded as an emergency change needing retro review"


def _break_glass(change: str) -> Verdict:
    """Allowed, and recorded as an emergency (``emergency-bypass``) that needs a retro review."""
    message = f"break-glass {change}{_RECORDED}"
    return Verdict(True, "BreakGlass", message, emergency=True)


def _break_glass_only(
    user: stamping.User, break_glass_groups: Sequence[str], change: str, reason: str, refusal: str
) -> Verdict:
    """Break-glass may (recorded as ``change``); anyone else is refused with ``reason`` and ``refusal``."""
    if set(user.groups) & set(break_glass_groups):
        return _break_glass(change)
    return Verdict(False, reason, refusal)


def _running(kind: str, obj: Mapping[str, Any]) -> str:
    """``name: image, ...`` for what ``obj`` runs."""
    return ", ".join(f"{key.split('/', 1)[1]}: {image}" for key, image in sorted(images(kind, obj).items()))


def _pause(
    namespace: str, name: str, old: Mapping[str, Any], user: stamping.User, break_glass_groups: Sequence[str]
) -> Verdict:
    """Pausing a Deployment: while it is paused, its controller makes no ReplicaSet from the template, and
    if the current one goes (deleted, or relabelled out), it scales the newest older one, an earlier
    image, back up. Only break-glass pauses one in a gated namespace (recorded with its images)."""
    return _break_glass_only(
        user,
        break_glass_groups,
        f"pause by {user.username} of Deployment {name} (runs {_running('Deployment', old)})",
        "PauseNeedsBreakGlass",
        f"namespace {namespace} is gated by Lockgate: while Deployment {name} is paused, its controller would "
        "scale an older ReplicaSet (an earlier image, which no current approval covers) back up if the current "
        "one went. Change it through a Promotion (a failed rollout rolls back on its own), or have a break-glass "
        "group member pause it (recorded as an emergency change needing retro review)",
    )


def owning_deployment(replica_set: Mapping[str, Any]) -> str | None:
    """The name of the Deployment that controls ``replica_set``, if one does."""
    for ref in (replica_set.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Deployment" and ref.get("controller"):
            return str(ref.get("name"))
    return None


def launching_cronjob(job: Mapping[str, Any]) -> str | None:
    """The name of the CronJob a new Job's controller reference names (``kubectl create job --from=cronjob``
    sets it), if it names one."""
    kind, name, _ = _controller_ref(job)
    return str(name) if kind == "CronJob" and name else None


#: Pod-template labels the API server adds to every new Job (its selector): not the CronJob's, not a difference.
_JOB_LABELS = frozenset(
    {"controller-uid", "job-name", "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name"}
)


def runs_cronjob(job: Mapping[str, Any], cronjob: Mapping[str, Any]) -> bool:
    """Whether a new Job is a run of ``cronjob`` as it is: its controller reference names that CronJob (batch/v1,
    by name and uid) and its pod template, labels, annotations and pod spec, is the CronJob's job template's, but
    for the labels the API server adds to every Job. Such a Job's Pods run nothing the CronJob's schedule would not
    (its images were judged when the CronJob was made or changed), and no injector (a sidecar image chosen by a
    pod annotation or label) sees anything new; another command, image, volume, label or annotation is a new Job.
    Job-level fields (parallelism, completions, deadlines) are not compared: Kubernetes defaults them on the Job
    but not in a CronJob's template, and none of them chooses what runs."""
    ref = _controller(job)
    meta = cronjob.get("metadata") or {}
    owned = ref.get("kind") == "CronJob" and ref.get("apiVersion") == "batch/v1"
    owned = owned and bool(ref.get("uid")) and ref.get("uid") == meta.get("uid")
    owned = owned and launching_cronjob(job) == meta.get("name")
    ran = _pruned(_template_as_made(((job.get("spec") or {}).get("template")) or {}))
    planned = (((cronjob.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    return owned and bool(ran.get("spec")) and ran == _pruned(planned)


def _template_as_made(template: Mapping[str, Any]) -> dict[str, Any]:
    """A Job's pod template without the selector labels the API server adds to it."""
    metadata = dict(template.get("metadata") or {})
    metadata["labels"] = {k: v for k, v in (metadata.get("labels") or {}).items() if k not in _JOB_LABELS}
    return {**template, "metadata": metadata}


def _pruned(value: Any) -> Any:
    """``value`` without empty maps, lists and nulls, at any depth: the same template whether a client sent
    ``resources: {}`` or ``creationTimestamp: null`` (kubectl does) or left them out (the API server's own
    encoding writes both the same). It never drops an image, a command or a value: those are never empty."""
    if isinstance(value, Mapping):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _controller(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``obj``'s controller owner reference; empty without one."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return {}


def _controller_ref(obj: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """(kind, name, uid) of ``obj``'s controller owner reference; (None, None, None) without one."""
    ref = _controller(obj)
    return ref.get("kind"), ref.get("name"), ref.get("uid")


def leaves_owner(owner: Mapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether an update takes a ReplicaSet from its Deployment: its labels leave the Deployment's selector, or
    its controller owner reference stops naming the Deployment (the controller then lets it go, or ignores it)."""
    selector = gatepolicy.LabelSelector.model_validate((owner.get("spec") or {}).get("selector") or {})

    def labels(obj: Mapping[str, Any]) -> dict[str, str]:
        return dict((obj.get("metadata") or {}).get("labels") or {})

    meta = owner.get("metadata") or {}
    owned = _controller_ref(old) == ("Deployment", meta.get("name"), meta.get("uid") or _controller_ref(old)[2])
    disowned = owned and _controller_ref(new) != _controller_ref(old)  # the controller claims by uid, too
    return disowned or (policies.selects(selector, labels(old)) and not policies.selects(selector, labels(new)))


def judge_removal(
    *,
    namespace: str,
    name: str,
    replica_set: Mapping[str, Any],
    owner: Mapping[str, Any] | None,
    user: stamping.User,
    namespace_gated: bool,
    break_glass_groups: Sequence[str],
    workload_controllers: Collection[str] = KUBE_CONTROLLERS,
    detached: bool = False,
) -> Verdict:
    """May ``replica_set`` leave its Deployment ``owner`` (deleted, or ``detached``: relabelled out of its selector,
    or its owner reference changed)?

    While a Deployment is paused its controller makes no ReplicaSet from the template: if the ReplicaSet that
    runs it (or the one its template makes) goes, the controller scales the newest older one, an earlier
    image, back up, and its own write passes. A Deployment paused before its namespace was gated (pausing
    one in a gated namespace needs break-glass) is the case this closes. Any other ReplicaSet may go.
    """
    if not namespace_gated:
        return Verdict(True, "NotGated", f"namespace {namespace} is not selected by any GatePolicy")
    if user.username in workload_controllers:  # the garbage collector; the deployment controller letting go
        return Verdict(True, "WorkloadController", f"ReplicaSet {name} removed by {user.username}")
    if user.username == NAMESPACE_CONTROLLER and not detached:
        return Verdict(True, "NamespaceDeletion", f"ReplicaSet {name} deleted with namespace {namespace}")
    if owner is None or not health.paused("Deployment", owner):
        return Verdict(True, "OwnerNotPaused", f"the Deployment of ReplicaSet {name} makes one from its template")
    deployment = str((owner.get("metadata") or {}).get("name"))
    spec = replica_set.get("spec") or {}
    runs = spec.get("replicas") != 0  # absent: 1
    templated = images("ReplicaSet", replica_set) == images("Deployment", owner)
    if not runs and not templated:
        return Verdict(True, "InactiveReplicaSet", f"ReplicaSet {name} runs nothing and is not the template's")
    how = "relabelling or re-owning" if detached else "deleting"
    if set(user.groups) & set(break_glass_groups):
        what = "relabelling or re-owning" if detached else "deletion"
        return _break_glass(
            f"{what} by {user.username} of ReplicaSet {name} of paused Deployment {deployment} "
            f"(runs {_running('ReplicaSet', replica_set)})"
        )
    which = "which runs it" if runs else "which its template makes"
    return Verdict(
        False,
        "PausedDeploymentReplicaSet",
        f"namespace {namespace} is gated by Lockgate: Deployment {deployment} is paused, so {how} its ReplicaSet "
        f"{name} ({which}) would make its controller scale an older ReplicaSet (an earlier image, which no current "
        f"approval covers) back up. Resume it first (kubectl rollout resume deployment/{deployment} -n {namespace}), "
        "or have a break-glass group member do it (recorded as an emergency change needing retro review)",
    )


def _template(obj: Mapping[str, Any]) -> Any:
    return (obj.get("spec") or {}).get("template")


def _paused_template_change(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """A change to the pod template of a Deployment that stays paused (its images are judged elsewhere)."""
    if not old.get("metadata") or not health.paused(kind, old) or not health.paused(kind, new):
        return False
    return bool(_template(old) != _template(new))


def _replica_set_template(
    namespace: str, name: str, old: Mapping[str, Any], user: stamping.User, break_glass_groups: Sequence[str]
) -> Verdict:
    """A ReplicaSet's pod template is its Deployment's, written by the controller: once it differs, the Deployment
    has no current ReplicaSet, and (paused) scaling it brings back the newest older one, an earlier image."""
    return _break_glass_only(
        user,
        break_glass_groups,
        f"pod template change by {user.username} of ReplicaSet {name} (runs {_running('ReplicaSet', old)})",
        "ReplicaSetTemplateChange",
        f"namespace {namespace} is gated by Lockgate: the pod template of ReplicaSet {name} is its Deployment's, "
        "written by the deployment controller; changed by hand, the Deployment has no current ReplicaSet, and "
        "scaling it (paused) brings back an older one (an earlier image). Change the Deployment through a "
        "Promotion, or have a break-glass group member make it (recorded as an emergency change needing retro "
        "review)",
    )


def _job_template(
    namespace: str, name: str, old: Mapping[str, Any], user: stamping.User, break_glass_groups: Sequence[str]
) -> Verdict:
    """A Job's pod template changes only while it is suspended and has not started, and then only its labels,
    annotations and scheduling fields: the ones a sidecar injector reads to choose an image (an Istio revision or
    proxy image, a Vault agent image) for the Pods the Job controller then makes, unjudged."""
    return _break_glass_only(
        user,
        break_glass_groups,
        f"pod template change by {user.username} of Job {name} (runs {_running('Job', old)})",
        "JobTemplateChange",
        f"namespace {namespace} is gated by Lockgate: the pod template of Job {name} may not change by hand: its "
        "labels and annotations can choose the images a sidecar injector adds to the Pods the Job controller makes. "
        "Create a new Job from its CronJob or workload, or have a break-glass group member make it (recorded as an "
        "emergency change needing retro review)",
    )


def _paused_template(
    namespace: str, name: str, old: Mapping[str, Any], user: stamping.User, break_glass_groups: Sequence[str]
) -> Verdict:
    """Paused, a Deployment's controller makes no ReplicaSet from a changed template: none is current any more,
    and once the running one is scaled to 0 (the Deployment scaled down and up) the controller scales the
    newest ReplicaSet by creation back up, which after a rollback holds the image rolled back from."""
    return _break_glass_only(
        user,
        break_glass_groups,
        f"pod template change by {user.username} of paused Deployment {name} (runs {_running('Deployment', old)})",
        "PausedTemplateChange",
        f"namespace {namespace} is gated by Lockgate: Deployment {name} is paused, and while it is, a change to its "
        "pod template leaves no ReplicaSet current, so scaling it would bring back the newest older one (an earlier "
        f"image, which no current approval covers). Resume it first (kubectl rollout resume deployment/{name} -n "
        f"{namespace}), or have a break-glass group member make the change (recorded as an emergency change needing "
        "retro review)",
    )


def combined(first: Verdict, second: Verdict | None) -> Verdict:
    """Both verdicts on one request: refused if either refuses (the first refusal); an emergency if either is,
    with every emergency named, so the record describes all the request does."""
    if second is None or not first.allowed:
        return first
    if not second.allowed:
        return second
    if first.emergency and second.emergency:  # one "recorded as ..." for the whole request
        said = first.message.removesuffix(_RECORDED)
        return dataclasses.replace(first, message=f"{said}; {second.message.removeprefix('break-glass ')}")
    return second if second.emergency else first


def provenance_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The ``lockgate.dev/*`` annotations an update adds, changes or removes."""
    before = {
        k: v for k, v in (old.get("metadata", {}).get("annotations") or {}).items() if k.startswith("lockgate.dev/")
    }
    after = {
        k: v for k, v in (new.get("metadata", {}).get("annotations") or {}).items() if k.startswith("lockgate.dev/")
    }
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def _name(promotion: Mapping[str, Any] | None) -> str:
    return str((promotion or {}).get("metadata", {}).get("name"))


def _promotion_allows(
    promotion: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    changes: list[tuple[str, str | None, str | None]],
) -> bool:
    if promotion is None:
        return False
    status = promotion.get("status") or {}
    phase = status.get("phase")
    annotations = new.get("metadata", {}).get("annotations") or {}
    operation = annotations.get(ANNOTATION_OPERATION)
    target = promotion.get("spec", {}).get("target") or {}
    container = target.get("container") or target.get("name")
    if phase == "Deploying" and operation == "deploy":
        wanted = (status.get("rollout") or {}).get("image") or promotion.get("spec", {}).get("image")
    elif phase in (None, "", "Pending", "AwaitingApproval", "Approved") and operation == "deploy":
        # The operator patches before the rollout's first status (its audit records are already
        # durable): the change must be this Promotion's current cycle and image. A Promotion with no
        # phase yet (approved before the operator's first status write, e.g. across a restart, or whose
        # first status said only that the audit sink was down) is in the cycle of its spec as it is now.
        cycle = status.get("specHash") or stamping.current_spec_hash(promotion)
        if annotations.get(ANNOTATION_SPEC_HASH) != cycle:
            return False
        wanted = promotion.get("spec", {}).get("image")
    elif phase == "RollingBack" and operation == "rollback":
        wanted = status.get("previousImage")
    else:
        return False
    return all(c == container and image == wanted for c, _, image in changes)
