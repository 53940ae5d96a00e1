"""The operator's in-memory view of the cluster, fed by watch events, with the indexes the gate needs.

Lookups are by key, never by scanning: approvals by promotion, promotions by target workload
and by source workload, namespaces' labels.

Memory: the view holds every Promotion, Approval and workload of the cluster, so it keeps only what
its readers (the reconciler, the gate, the admission webhooks, the metrics) ask, and shares repeated
strings. A Promotion whose cycle has ended (``settled``) keeps its metadata, its whole spec (the spec
hash and the audit records read it) and its status without the per-cycle lists (``approvals``,
``gates``, ``conditions``): those are read only while a Promotion waits, rolls out or has a retro
review open, and a new cycle (a spec edit) arrives as a watch event with the whole object, which
the view then keeps whole. What the operator writes to the API is built from those whole objects.
Approvals and workloads are kept packed (``packing.Packed``): each read decodes a fresh copy.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import pydantic

from lockgate.admission import coverage
from lockgate.api import gatepolicy
from lockgate.gates import policies
from lockgate.lifecycle import packing, statuses, steps
from lockgate.rollout import health

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
WorkloadKey = tuple[str, str, str]  # (kind, namespace, name)
K = TypeVar("K", bound=Hashable)


_UID = "00000000-0000-0000-0000-000000000000"
_TIME = "2026-01-01T00:00:00Z"
_HASH = "sha256:" + "0" * 64
_META = {"name": "", "namespace": "", "uid": _UID, "creationTimestamp": _TIME, "generation": 1, "resourceVersion": ""}
# Typical objects as the view keeps them (``slim``, ``slim_workload``): the packing dictionaries.
APPROVAL_DICTIONARY = packing.dictionary(
    {
        "apiVersion": "lockgate.dev/v1alpha1",
        "kind": "Approval",
        "metadata": _META,
        "spec": {"promotion": "", "decision": "Reject", "purpose": "RetroReview", "comment": ""},
        "status": {"counted": False, "reason": "SpecChanged", "message": "approval does not count: "},
    },
    {
        "apiVersion": "lockgate.dev/v1alpha1",
        "kind": "Approval",
        "metadata": _META,
        "spec": {
            "promotion": "",
            "decision": "Approve",
            "purpose": "Change",
            "approver": "",
            "groups": [""],
            "stamp": {"at": "2026-01-01T00:00:00.000000Z", "signature": "hmac-sha256:"},
            "specHash": _HASH,
        },
        "status": {"counted": True, "reason": "Counted", "message": "'s approval counts for ", "rule": ""},
    },
)
PROMOTION_DICTIONARY = packing.dictionary(
    {
        "apiVersion": "lockgate.dev/v1alpha1",
        "kind": "Promotion",
        "metadata": {
            **_META,
            "labels": {"app.kubernetes.io/name": ""},
            "annotations": {
                "lockgate.dev/requested-by": '{"at":"2026-01-01T00:00:00.000000Z","groups":[""],'
                '"signature":"hmac-sha256:","username":""}'
            },
        },
        "spec": {
            "target": {"kind": "Deployment", "name": "", "container": ""},
            "image": "@sha256:",
            "change": {"description": "", "ticket": "", "author": ""},
            "evidence": {
                "securityScan": {"status": "Passed", "critical": 0, "high": 0},
                "integrationTests": {"status": "Passed"},
                "sbom": {"licenses": ["Apache-2.0"]},
            },
            "verification": {"timeout": "10m", "rollbackOnFailure": True},
        },
        "status": {
            "observedGeneration": 1,
            "specHash": _HASH,
            "requiredApprovals": 2,
            "countedApprovals": 2,
            "approvalsSummary": "2/2",
            "message": " of  replicas updated and available",
            "requestedBy": {"username": "", "groups": [""]},
            "phase": "Succeeded",
            "readyForApprovalAt": "2026-01-01T00:00:00.000000Z",
            "nextCheckAt": "2026-01-01T00:00:00.000000Z",
            "approvedAt": "2026-01-01T00:00:00.000000Z",
            "gateLatencySeconds": 1.0,
            "previousImage": "",
            "auditRecorded": True,
            "rollout": {
                "kind": "Deployment",
                "name": "",
                "container": "",
                "image": "",
                "startedAt": "",
                "generation": 2,
            },
            "deployedAt": "2026-01-01T00:00:00.000000Z",
            "completedAt": "2026-01-01T00:00:00.000000Z",
        },
    }
)
WORKLOAD_DICTIONARY = packing.dictionary(
    {
        "metadata": {
            **_META,
            "annotations": {
                "lockgate.dev/promotion": "",
                "lockgate.dev/spec-hash": _HASH,
                "lockgate.dev/approved-by": "",
                "lockgate.dev/operation": "deploy",
            },
        },
        "spec": {
            "replicas": 1,
            "updateStrategy": {},
            "template": {"spec": {"containers": [{"name": "", "image": ""}]}},
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "lastTransitionTime": _TIME,
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "lastTransitionTime": _TIME,
                },
            ],
        },
    }
)


def _rv(obj: Mapping[str, Any]) -> int:
    value = str(obj.get("metadata", {}).get("resourceVersion") or "0")
    return int(value) if value.isdigit() else 0


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: Namespaces probed anew per coverage pass for guard conditions that read the namespace (~2-3 ms each on an idle
#: machine with the default image annotations, each of which is one more probe; on the event loop): a large
#: cluster's first pass is spread over several (republished once a second until done).
COVERAGE_PROBES_PER_PASS = 100
POLICY_KINDS = frozenset({"gatepolicies", "namespaces"})  # the watches whose objects decide which policies apply


def slim(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what the gate never reads and clients make large (managedFields, last-applied)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or (
        "managedFields" not in meta and LAST_APPLIED not in (meta.get("annotations") or {})
    ):
        return obj
    meta = {k: v for k, v in meta.items() if k != "managedFields"}
    if LAST_APPLIED in (meta.get("annotations") or {}):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k != LAST_APPLIED}
    return {**obj, "metadata": meta}


# Values seldom shared between objects: not interned (the interning table would only grow).
_UNIQUE_VALUES = frozenset({"uid", "resourceVersion", "signature", "at", "lockgate.dev/requested-by"})
_INTERN_MAX = 200


def compact(value: Any, _key: str = "") -> Any:
    """``value`` (parsed JSON) rebuilt with shared keys and shared repeated strings.

    Every watch event is a freshly parsed document: its keys and values are new strings, for each of
    tens of thousands of objects. Interned, the view holds one copy of each repeated string (keys,
    phases, reasons, messages, spec hashes, names, images, timestamps to the second).
    """
    if isinstance(value, str):
        return value if _key in _UNIQUE_VALUES or len(value) > _INTERN_MAX else sys.intern(value)
    if isinstance(value, dict):
        return {(sys.intern(k) if isinstance(k, str) else k): compact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v, _key) for v in value]
    return value


def slim_workload(obj: dict[str, Any]) -> dict[str, Any]:
    """A workload reduced to what rollout health, soak and the image plan read (pod specs can be huge)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    status = obj.get("status") or {}
    ours = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("lockgate.dev/")}
    return {
        "metadata": {
            **{
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp")
                if k in meta
            },
            **({"annotations": ours} if ours else {}),
        },
        "spec": {
            **{k: spec[k] for k in ("replicas", "updateStrategy", "paused") if k in spec},
            "template": {
                "spec": {
                    "containers": [
                        {"name": c.get("name"), "image": c.get("image")} for c in pod.get("containers") or []
                    ]
                }
            },
        },
        "status": {
            k: [_workload_condition(c) for c in v] if k == "conditions" and isinstance(v, list) else v
            for k, v in status.items()
        },
    }


def _workload_condition(condition: Mapping[str, Any]) -> dict[str, Any]:
    """What health and soak read of a condition; its message only where health quotes it."""
    kept = ("type", "status", "reason", "lastTransitionTime")
    reduced = {k: condition[k] for k in kept if k in condition}
    if "lastTransitionTime" not in condition and "lastUpdateTime" in condition:  # soak falls back to it
        reduced["lastUpdateTime"] = condition["lastUpdateTime"]
    if condition.get("reason") == "ProgressDeadlineExceeded" and "message" in condition:
        reduced["message"] = condition["message"]
    return reduced


# A settled Promotion's metadata and status without the per-cycle lists (see the module docstring).
SETTLED_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "labels",
)
SETTLED_STATUS_DROPPED = frozenset({"approvals", "gates", "conditions"})


def settled(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The settled form of a Promotion whose cycle ended for its current spec, with no retro review
    open (it waits for nothing: its next pass is ``Done``); None for any other Promotion.

    It leaves that state only with a new spec (a new generation: a new watch event, with the whole
    object) or when deleted.
    """
    if obj.get("metadata", {}).get("deletionTimestamp") or not cycle_ended(obj):
        return None
    return settled_form(obj)  # the whole spec: it hashes as the whole object does (the hash reads the spec only)


def cycle_ended(obj: Mapping[str, Any]) -> bool:
    """Whether the Promotion is in a terminal phase for its current spec with no retro review open
    (its next step is ``Done``, which reads neither its workload nor its gate)."""
    status = obj.get("status") or {}
    if str(status.get("phase") or "") not in steps.TERMINAL:
        return False
    current = statuses.spec_hash(obj)
    return status.get("specHash") == current and not statuses.retro_review_open(status, current)


def settled_form(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What the view keeps of a settled Promotion: what its ``Done`` pass, the supersede and busy-target
    checks of its neighbours, the metrics gauges, the Approval webhook (spec hash) and the withdrawal
    audit record read."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    kept_meta = {k: meta[k] for k in SETTLED_METADATA if k in meta}
    ours = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("lockgate.dev/")}
    if ours:
        kept_meta["annotations"] = ours
    reduced = {k: v for k, v in obj.items() if k not in ("metadata", "spec", "status")}
    reduced.update(
        metadata=kept_meta,
        spec=obj.get("spec") or {},
        status={k: v for k, v in status.items() if k not in SETTLED_STATUS_DROPPED},
    )
    return reduced


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata", {})
    return str(meta.get("namespace") or ""), str(meta.get("name"))


class Promotions(Mapping[Key, dict[str, Any]]):
    """Promotions by key: whole while a cycle runs (``live``), packed once settled (``settled_form``).

    Readers that look for waiting or rolling-out Promotions iterate ``live`` only: a settled one
    is neither, and decoding thousands of them per look would cost more than it saves.
    """

    def __init__(self) -> None:
        self.live: dict[Key, dict[str, Any]] = {}
        self._settled: packing.Packed[Key] = packing.Packed(PROMOTION_DICTIONARY)

    def __getitem__(self, key: Key) -> dict[str, Any]:
        obj = self.live.get(key)
        return obj if obj is not None else self._settled[key]

    def __contains__(self, key: object) -> bool:
        return key in self.live or key in self._settled

    def __iter__(self) -> Iterator[Key]:
        yield from self.live
        yield from self._settled

    def __len__(self) -> int:
        return len(self.live) + len(self._settled)

    def put(self, key: Key, obj: dict[str, Any], *, settled: bool) -> None:
        if settled:
            self.live.pop(key, None)
            self._settled.put(key, obj)
        else:
            self._settled.remove(key)
            self.live[key] = obj

    def is_settled(self, key: Key) -> bool:
        """Whether the Promotion is kept in its settled form (its next pass is ``Done``), without decoding it."""
        return key in self._settled

    def pop(self, key: Key) -> dict[str, Any] | None:
        obj = self.live.pop(key, None)
        return obj if obj is not None else self._settled.pop(key)

    def packed_bytes(self) -> int:
        return self._settled.packed_bytes()


class ClusterView:
    """Latest known state of the objects the gate depends on."""

    def __init__(self) -> None:
        self.promotions = Promotions()
        self.approvals: packing.Packed[Key] = packing.Packed(APPROVAL_DICTIONARY)
        self.policies: dict[str, dict[str, Any]] = {}
        self.policy_models: dict[str, gatepolicy.GatePolicy] = {}
        self.namespaces: dict[str, dict[str, str]] = {}
        self.workloads: packing.Packed[WorkloadKey] = packing.Packed(WORKLOAD_DICTIONARY)
        self.paused_deployments: set[WorkloadKey] = set()  # whose spec.paused is set (a metric counts them)
        self.guard_configuration: dict[str, Any] | None = None  # ValidatingWebhookConfiguration lockgate.dev
        self.guard_configuration_seen = False  # its watch has answered (None above then means: it does not exist)
        self._coverage: coverage.Coverage | None = None  # cached gated_but_not_guarded; None: to recompute
        self._coverage_lock = threading.Lock()
        self.guard_setup = coverage.Setup()  # the operator's settings its coverage check reads
        self.current_kinds: set[str] = set()  # kinds (plurals) whose watch stream is open and proved healthy
        self._approvals_by_promotion: dict[Key, set[str]] = collections.defaultdict(set)
        self._approvals_by_promotion_name: dict[str, set[Key]] = collections.defaultdict(set)
        self._unjudged_approvals: set[Key] = set()  # with no verdict in their status yet (rare once settled)
        self._promotions_by_target: dict[WorkloadKey, set[Key]] = collections.defaultdict(set)
        self._promotions_by_source: dict[WorkloadKey, set[Key]] = collections.defaultdict(set)

    # -- promotions --------------------------------------------------------------------------
    def put_promotion(self, obj: dict[str, Any]) -> bool:
        """Store a newer state; returns False for a stale or already seen one (same or older resourceVersion).

        A settled Promotion is kept in its settled form (``settled_form``), any other one whole.
        """
        key = key_of(obj)
        old = self.promotions.get(key)
        if old is not None and _rv(obj) and _rv(old) >= _rv(obj):  # stale, or already seen
            return False
        kept = settled(obj)
        obj = kept if kept is not None else compact(slim(obj))
        if old is not None:
            self._unindex_promotion(key, old)
        self.promotions.put(key, obj, settled=kept is not None)
        target, source = self.target_of(obj), self.source_of(obj)
        if target:
            self._promotions_by_target[target].add(key)
        if source:
            self._promotions_by_source[source].add(key)
        return True

    def drop_promotion(self, key: Key) -> None:
        old = self.promotions.pop(key)
        if old is not None:
            self._unindex_promotion(key, old)

    def _unindex_promotion(self, key: Key, old: Mapping[str, Any]) -> None:
        target, source = self.target_of(old), self.source_of(old)
        if target:
            self._promotions_by_target[target].discard(key)
        if source:
            self._promotions_by_source[source].discard(key)

    @staticmethod
    def target_of(obj: Mapping[str, Any]) -> WorkloadKey | None:
        target = obj.get("spec", {}).get("target") or {}
        if not target.get("name"):
            return None
        return str(target.get("kind", "Deployment")), key_of(obj)[0], str(target["name"])

    @staticmethod
    def source_of(obj: Mapping[str, Any]) -> WorkloadKey | None:
        spec = obj.get("spec", {})
        source = spec.get("source") or {}
        if not source.get("namespace"):
            return None
        kind = str((spec.get("target") or {}).get("kind", "Deployment"))
        name = source.get("name") or (spec.get("target") or {}).get("name")
        return kind, str(source["namespace"]), str(name)

    def promotions_targeting(self, workload: WorkloadKey) -> list[Key]:
        return sorted(self._promotions_by_target.get(workload, ()))

    def promotions_sourcing(self, workload: WorkloadKey) -> list[Key]:
        return sorted(self._promotions_by_source.get(workload, ()))

    def unsettled_promotions(self) -> Iterable[tuple[Key, dict[str, Any]]]:
        """Every Promotion but the settled ones: those waiting, rolling out, or with a retro review open."""
        return self.promotions.live.items()

    def promotions_in(self, namespaces: Iterable[str] | None = None) -> list[Key]:
        if namespaces is None:
            return sorted(self.promotions)
        wanted = set(namespaces)
        return sorted(key for key in self.promotions if key[0] in wanted)

    # -- approvals ---------------------------------------------------------------------------
    @staticmethod
    def promotion_of(approval: Mapping[str, Any]) -> Key:
        return key_of(approval)[0], str(approval.get("spec", {}).get("promotion", ""))

    def put_approval(self, obj: dict[str, Any]) -> bool:
        """Kept whole (an Approval of an ended cycle counts again, or not, when its Promotion's spec changes)."""
        key = key_of(obj)
        old = self.approvals.get(key)
        if old is not None and _rv(obj) and _rv(old) >= _rv(obj):  # stale, or already seen
            return False
        obj = slim(obj)
        if old is not None:
            self._approvals_by_promotion[self.promotion_of(old)].discard(key[1])
            self._approvals_by_promotion_name[self.promotion_of(old)[1]].discard(key)
        self.approvals.put(key, obj)
        if (obj.get("status") or {}).get("reason"):
            self._unjudged_approvals.discard(key)
        else:
            self._unjudged_approvals.add(key)
        self._approvals_by_promotion[self.promotion_of(obj)].add(key[1])
        self._approvals_by_promotion_name[self.promotion_of(obj)[1]].add(key)
        return True

    def drop_approval(self, key: Key) -> dict[str, Any] | None:
        old = self.approvals.pop(key)
        self._unjudged_approvals.discard(key)
        if old is not None:
            self._approvals_by_promotion[self.promotion_of(old)].discard(key[1])
            self._approvals_by_promotion_name[self.promotion_of(old)[1]].discard(key)
        return old

    def approvals_for(self, promotion: Key) -> list[dict[str, Any]]:
        names = sorted(self._approvals_by_promotion.get(promotion, ()))
        return [self.approvals[(promotion[0], name)] for name in names]

    def unjudged_approvals_for(self, promotion: Key) -> list[dict[str, Any]]:
        """The Promotion's Approvals whose status has no verdict yet (found without decoding the others)."""
        names = sorted(
            n for n in self._approvals_by_promotion.get(promotion, ()) if (promotion[0], n) in self._unjudged_approvals
        )
        return [self.approvals[(promotion[0], name)] for name in names]

    def approvals_elsewhere(self, promotion: Key) -> list[dict[str, Any]]:
        """Approvals naming this Promotion from other namespaces (they never count; listed so users see why)."""
        keys = sorted(k for k in self._approvals_by_promotion_name.get(promotion[1], ()) if k[0] != promotion[0])
        return [self.approvals[k] for k in keys]

    # -- policies, namespaces, workloads -----------------------------------------------------
    def put_policy(self, obj: dict[str, Any]) -> None:
        name = str(obj["metadata"]["name"])
        self.policies[name] = obj
        self._forget_coverage()
        try:
            self.policy_models[name] = gatepolicy.GatePolicy.from_k8s(obj)
        except pydantic.ValidationError as exc:  # admission refuses these; keep the last good one
            logger.error("GatePolicy %s is malformed and is ignored: %s", name, exc)

    def drop_policy(self, name: str) -> None:
        self.policies.pop(name, None)
        self.policy_models.pop(name, None)
        self._forget_coverage()

    def put_namespace(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata", {})
        name, labels = sys.intern(str(meta["name"])), compact(dict(meta.get("labels") or {}))
        if self.namespaces.get(name) != labels:
            self._forget_coverage()
        self.namespaces[name] = labels

    def drop_namespace(self, name: str) -> None:
        if self.namespaces.pop(name, None) is not None:
            self._forget_coverage()

    def put_guard_configuration(self, obj: Mapping[str, Any] | None) -> None:
        """The guard's ValidatingWebhookConfiguration as the API has it (None: deleted)."""
        self.guard_configuration = dict(obj) if obj is not None else None
        self.guard_configuration_seen = True
        self._forget_coverage()

    def _forget_coverage(self) -> None:
        with self._coverage_lock:  # not while the metrics thread computes it from the inputs this changes
            self._coverage = None

    def guard_coverage(self, *, advance: bool = True) -> coverage.Coverage:
        """Where the API server would not call the guard in gated namespaces, and the guard webhooks whose
        conditions Lockgate cannot evaluate; nothing until the configuration's watch has answered. A coverage
        judged in parts (``pending``) goes on with each call when ``advance`` (the policy publisher's, once a
        second); readers (the metrics thread) take the last one."""
        if not self.guard_configuration_seen:
            return coverage.Coverage({}, [])
        with self._coverage_lock:
            if self._coverage is None or (advance and self._coverage.pending):
                self._coverage = coverage.gated_but_not_guarded(
                    self.guard_configuration,
                    dict(self.namespaces),  # copies: the loop may change them while the metrics thread reads
                    list(self.policy_models.values()),
                    self.guard_setup,
                    budget=COVERAGE_PROBES_PER_PASS,
                )
            return self._coverage

    def unguarded_namespaces(self) -> dict[str, list[str]]:
        """Gated namespace -> the guard webhooks the API server would not call there (``webhook: why``)."""
        return self.guard_coverage(advance=False).not_called

    def unverified_guard_conditions(self) -> list[str]:
        """The guard webhooks whose ``matchConditions`` Lockgate cannot evaluate (``webhook: why``)."""
        return self.guard_coverage(advance=False).unverifiable

    def put_workload(self, kind: str, obj: dict[str, Any]) -> bool:
        namespace, name = key_of(obj)
        key = (kind, namespace, name)
        old = self.workloads.get(key)
        if old is not None and _rv(obj) and _rv(old) > _rv(obj):
            return False
        self.workloads.put(key, slim_workload(obj))
        if health.paused(kind, obj):
            self.paused_deployments.add(key)
        else:
            self.paused_deployments.discard(key)
        return True

    def drop_workload(self, kind: str, key: Key) -> None:
        self.workloads.pop((kind, key[0], key[1]))
        self.paused_deployments.discard((kind, key[0], key[1]))

    def policies_current(self) -> bool:
        """The watches of GatePolicies and Namespaces are streaming: the view has every change the API sent."""
        return self.current_kinds >= POLICY_KINDS

    def gated(self, namespace: str) -> bool:
        """Whether some GatePolicy selects ``namespace``."""
        return bool(policies.matching(self.policy_models.values(), self.namespaces.get(namespace, {})))

    def paused_in_gated_namespaces(self) -> dict[str, int]:
        """Paused Deployments per gated namespace: they hold their Promotions, and if the current ReplicaSet of
        one went (deleting or relabelling it needs break-glass), its controller would scale an older one, an
        earlier image, back up."""
        counts: dict[str, int] = {}
        for _, namespace, _ in self.paused_deployments:
            if self.gated(namespace):
                counts[namespace] = counts.get(namespace, 0) + 1
        return counts
