"""The operator's in-memory view of the cluster, fed by watch events, with the indexes the gate needs.

Lookups are by key, never by scanning: approvals by promotion, promotions by target workload
and by source workload, namespaces' labels.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

from lockgate.api import gatepolicy

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
WorkloadKey = tuple[str, str, str]  # (kind, namespace, name)


def _rv(obj: Mapping[str, Any]) -> int:
    value = str(obj.get("metadata", {}).get("resourceVersion") or "0")
    return int(value) if value.isdigit() else 0


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


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


def slim_workload(obj: dict[str, Any]) -> dict[str, Any]:
    """A workload reduced to what rollout health, soak and the image plan read (pod specs can be huge)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    return {
        "metadata": {
            **{
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp")
                if k in meta
            },
            "annotations": {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("lockgate.dev/")},
        },
        "spec": {
            **{k: spec[k] for k in ("replicas", "updateStrategy") if k in spec},
            "template": {
                "spec": {
                    "containers": [
                        {"name": c.get("name"), "image": c.get("image")} for c in pod.get("containers") or []
                    ]
                }
            },
        },
        "status": obj.get("status") or {},
    }


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata", {})
    return str(meta.get("namespace") or ""), str(meta.get("name"))


class ClusterView:
    """Latest known state of the objects the gate depends on."""

    def __init__(self) -> None:
        self.promotions: dict[Key, dict[str, Any]] = {}
        self.approvals: dict[Key, dict[str, Any]] = {}
        self.policies: dict[str, dict[str, Any]] = {}
        self.policy_models: dict[str, gatepolicy.GatePolicy] = {}
        self.namespaces: dict[str, dict[str, str]] = {}
        self.workloads: dict[WorkloadKey, dict[str, Any]] = {}
        self._approvals_by_promotion: dict[Key, set[str]] = collections.defaultdict(set)
        self._approvals_by_promotion_name: dict[str, set[Key]] = collections.defaultdict(set)
        self._promotions_by_target: dict[WorkloadKey, set[Key]] = collections.defaultdict(set)
        self._promotions_by_source: dict[WorkloadKey, set[Key]] = collections.defaultdict(set)

    # -- promotions --------------------------------------------------------------------------
    def put_promotion(self, obj: dict[str, Any]) -> bool:
        """Store a newer state; returns False for a stale or already seen one (same or older resourceVersion)."""
        obj = slim(obj)
        key = key_of(obj)
        old = self.promotions.get(key)
        if old is not None and _rv(obj) and _rv(old) >= _rv(obj):  # stale, or already seen
            return False
        if old is not None:
            self._unindex_promotion(key, old)
        self.promotions[key] = obj
        target, source = self.target_of(obj), self.source_of(obj)
        if target:
            self._promotions_by_target[target].add(key)
        if source:
            self._promotions_by_source[source].add(key)
        return True

    def drop_promotion(self, key: Key) -> None:
        old = self.promotions.pop(key, None)
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
        obj = slim(obj)
        key = key_of(obj)
        old = self.approvals.get(key)
        if old is not None and _rv(obj) and _rv(old) >= _rv(obj):  # stale, or already seen
            return False
        if old is not None:
            self._approvals_by_promotion[self.promotion_of(old)].discard(key[1])
            self._approvals_by_promotion_name[self.promotion_of(old)[1]].discard(key)
        self.approvals[key] = obj
        self._approvals_by_promotion[self.promotion_of(obj)].add(key[1])
        self._approvals_by_promotion_name[self.promotion_of(obj)[1]].add(key)
        return True

    def drop_approval(self, key: Key) -> dict[str, Any] | None:
        old = self.approvals.pop(key, None)
        if old is not None:
            self._approvals_by_promotion[self.promotion_of(old)].discard(key[1])
            self._approvals_by_promotion_name[self.promotion_of(old)[1]].discard(key)
        return old

    def approvals_for(self, promotion: Key) -> list[dict[str, Any]]:
        names = sorted(self._approvals_by_promotion.get(promotion, ()))
        return [self.approvals[(promotion[0], name)] for name in names]

    def approvals_elsewhere(self, promotion: Key) -> list[dict[str, Any]]:
        """Approvals naming this Promotion from other namespaces (they never count; listed so users see why)."""
        keys = sorted(k for k in self._approvals_by_promotion_name.get(promotion[1], ()) if k[0] != promotion[0])
        return [self.approvals[k] for k in keys]

    # -- policies, namespaces, workloads -----------------------------------------------------
    def put_policy(self, obj: dict[str, Any]) -> None:
        name = str(obj["metadata"]["name"])
        self.policies[name] = obj
        try:
            self.policy_models[name] = gatepolicy.GatePolicy.from_k8s(obj)
        except pydantic.ValidationError as exc:  # admission refuses these; keep the last good one
            logger.error("GatePolicy %s is malformed and is ignored: %s", name, exc)

    def drop_policy(self, name: str) -> None:
        self.policies.pop(name, None)
        self.policy_models.pop(name, None)

    def put_namespace(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata", {})
        self.namespaces[str(meta["name"])] = dict(meta.get("labels") or {})

    def drop_namespace(self, name: str) -> None:
        self.namespaces.pop(name, None)

    def put_workload(self, kind: str, obj: dict[str, Any]) -> bool:
        obj = slim_workload(obj)
        namespace, name = key_of(obj)
        key = (kind, namespace, name)
        old = self.workloads.get(key)
        if old is not None and _rv(obj) and _rv(old) > _rv(obj):
            return False
        self.workloads[key] = obj
        return True

    def drop_workload(self, kind: str, key: Key) -> None:
        self.workloads.pop((kind, key[0], key[1]), None)
