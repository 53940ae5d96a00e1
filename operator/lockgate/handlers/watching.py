"""Kopf event handlers: keep the operator's view current and tell the reconciler whom to look at.

They only translate watch events into ``view`` updates and ``reconciler.touch`` calls; no decisions.
"""

from __future__ import annotations

from typing import Any

import kopf

from lockgate.admission import coverage
from lockgate.lifecycle import policystatus
from lockgate.lifecycle import reconciler as lifecycle_reconciler
from lockgate.lifecycle import steps as lifecycle_steps
from lockgate.lifecycle import view as lifecycle_view

GROUP = "lockgate.dev"
WORKLOAD_KINDS = {"deployments": "Deployment", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet"}


def register(
    registry: kopf.OperatorRegistry,
    cluster: lifecycle_view.ClusterView,
    reconciler: lifecycle_reconciler.Reconciler,
    policy_statuses: policystatus.PolicyStatuses,
    on_approval_deleted: Any = None,
    *,
    guard_served: bool = True,
) -> None:
    """Attach the watch handlers for every kind the gate depends on to ``registry``; with ``guard_served``,
    also the watch of the guard's webhook configuration (where the image guard is called)."""

    @kopf.on.event(GROUP, "promotions", registry=registry)
    async def promotion_event(type: str, body: kopf.Body, **_: Any) -> None:
        obj = dict(body)
        key = lifecycle_view.key_of(obj)
        if type == "DELETED":
            cluster.drop_promotion(key)
            await reconciler.promotion_deleted(obj)
            return
        before = cluster.promotions.live.get(key)  # None: new, or settled (ended), so no decoding here
        if cluster.put_promotion(obj):
            reconciler.touch(key)
            target = cluster.target_of(obj)
            # A newer promotion may supersede, or free, another one; an ended one that stays ended
            # (every Promotion of a restart's listing, mostly) concerns none of them: touching all of
            # a workload's Promotions for each would make a restart quadratic in their number.
            if target is not None and not (_ended(obj) and (before is None or _ended(before))):
                for other in cluster.promotions_targeting(target):
                    if other != key:
                        reconciler.touch(other)

    @kopf.on.event(GROUP, "approvals", registry=registry)
    async def approval_event(type: str, body: kopf.Body, **_: Any) -> None:
        obj = dict(body)
        key = lifecycle_view.key_of(obj)
        if type == "DELETED":
            old = cluster.drop_approval(key)
            if old is not None:
                if on_approval_deleted is not None:
                    await on_approval_deleted(old)
                reconciler.touch(cluster.promotion_of(old))
            return
        if cluster.put_approval(obj):
            reconciler.touch(cluster.promotion_of(obj))

    @kopf.on.event(GROUP, "gatepolicies", registry=registry)
    async def policy_event(type: str, body: kopf.Body, **_: Any) -> None:
        if type == "DELETED":
            cluster.drop_policy(str(body["metadata"]["name"]))
        else:
            cluster.put_policy(dict(body))
            await policy_statuses.publish(dict(body))
        policy_statuses.changed()  # the namespaces it gates (and so where the guard must be called) may differ
        reconciler.touch_all()

    @kopf.on.event("v1", "namespaces", registry=registry)
    async def namespace_event(type: str, body: kopf.Body, **_: Any) -> None:
        name = str(body["metadata"]["name"])
        old = cluster.namespaces.get(name)
        if type == "DELETED":
            cluster.drop_namespace(name)
        else:
            cluster.put_namespace(dict(body))
        if old != cluster.namespaces.get(name):
            reconciler.touch_all([name])
            policy_statuses.changed()

    if guard_served:

        @kopf.on.event(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            registry=registry,
            when=lambda name, **_: name == coverage.CONFIGURATION,
        )
        async def guard_configuration_event(type: str, body: kopf.Body, **_: Any) -> None:
            cluster.put_guard_configuration(None if type == "DELETED" else dict(body))
            policy_statuses.changed()

    for plural, kind in WORKLOAD_KINDS.items():
        _register_workload(registry, cluster, reconciler, plural, kind)


def _ended(obj: dict[str, Any]) -> bool:
    return str((obj.get("status") or {}).get("phase") or "") in lifecycle_steps.TERMINAL


def _register_workload(
    registry: kopf.OperatorRegistry,
    cluster: lifecycle_view.ClusterView,
    reconciler: lifecycle_reconciler.Reconciler,
    plural: str,
    kind: str,
) -> None:
    @kopf.on.event("apps", "v1", plural, registry=registry, id=f"workload-{plural}")
    async def workload_event(type: str, body: kopf.Body, **_: Any) -> None:
        obj = dict(body)
        key = lifecycle_view.key_of(obj)
        if type == "DELETED":
            cluster.drop_workload(kind, key)
        elif not cluster.put_workload(kind, obj):
            return
        workload = (kind, key[0], key[1])
        for promotion in cluster.promotions_targeting(workload) + cluster.promotions_sourcing(workload):
            reconciler.touch(promotion)
