"""Watch handlers: keep the operator's view current and tell the reconciler whom to look at.

One informer (``kube/informer.py``: list, then watch) per kind the gate depends on. The handlers only
translate its events into ``view`` updates and ``reconciler.touch`` calls; no decisions. What must
await (an audit record for a deleted Approval or a Promotion deleted mid-rollout, a GatePolicy's
status) runs as a task of its own, so one slow audit sink never holds up the events of other objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from lockgate import metrics as lockgate_metrics
from lockgate.admission import coverage
from lockgate.kube import client as kclient
from lockgate.kube import informer
from lockgate.lifecycle import policystatus
from lockgate.lifecycle import reconciler as lifecycle_reconciler
from lockgate.lifecycle import steps as lifecycle_steps
from lockgate.lifecycle import view as lifecycle_view

logger = logging.getLogger("lockgate.watch")

GROUP, VERSION = "lockgate.dev", "v1alpha1"
DRAIN_SECONDS = 2.0  # at a stop, for audit records being written (Kopf gave its handlers as long)
WORKLOAD_KINDS = {"deployments": "Deployment", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet"}


# Records an Approval's withdrawal: the Approval as the view held it, and its Promotion then (None: none).
ApprovalDeleted = Callable[[dict[str, Any], dict[str, Any] | None], Coroutine[Any, Any, None]]


Held = Mapping[informer.Key, Mapping[str, Any]]  # the view's objects of a kind, by namespace and name


class Watches:
    """Every watch of the operator, wired to the view, the reconciler and the GatePolicy statuses."""

    def __init__(
        self,
        api: kclient.Client,
        cluster: lifecycle_view.ClusterView,
        reconciler: lifecycle_reconciler.Reconciler,
        policy_statuses: policystatus.PolicyStatuses,
        on_approval_deleted: ApprovalDeleted | None = None,
        *,
        guard_served: bool = True,
        metrics: lockgate_metrics.Metrics | None = None,
    ) -> None:
        """With ``guard_served``, also watch the guard's webhook configuration (where the image guard is called);
        ``metrics``: its ``lockgate_watch_up{resource}`` gauge follows each watch."""
        self.view = cluster
        self.reconciler = reconciler
        self.policy_statuses = policy_statuses
        self.on_approval_deleted = on_approval_deleted
        self._background: set[asyncio.Task[None]] = set()
        self._last: dict[object, asyncio.Task[None]] = {}  # the latest background task per object
        self._tasks: list[asyncio.Task[None]] = []

        def watch(
            group: str,
            version: str,
            plural: str,
            on_event: Callable[[str, dict[str, Any]], None],
            known: Callable[[], Iterable[informer.Key]],
            field_selector: str = "",
            held_uid: Callable[[informer.Key], str | None] | None = None,
        ) -> informer.Informer:
            def current(streaming: bool) -> None:
                (cluster.current_kinds.add if streaming else cluster.current_kinds.discard)(plural)

            path = kclient.resource_path(group, version, plural)
            return informer.Informer(
                api,
                path,
                on_event,
                known=known,
                held_uid=held_uid,
                on_state=watch_gauge(metrics, plural),
                on_current=current,
                field_selector=field_selector,
            )

        def watch_held(plural: str, on_event: Callable[[str, dict[str, Any]], None], held: Held) -> informer.Informer:
            """Promotions and Approvals: one replaced under its name while no stream was open is reported deleted
            first, so the trail records the deletion of the one held (mid-rollout, or a withdrawn approval)."""

            def held_uid(key: informer.Key) -> str | None:
                obj = held.get(key)
                return None if obj is None else str(obj.get("metadata", {}).get("uid") or "") or None

            return watch(GROUP, VERSION, plural, on_event, lambda: held, held_uid=held_uid)

        self.informers = [
            watch_held("promotions", self.promotion_event, cluster.promotions),
            watch_held("approvals", self.approval_event, cluster.approvals),
            watch(GROUP, VERSION, "gatepolicies", self.policy_event, lambda: (("", n) for n in cluster.policies)),
            watch("", "v1", "namespaces", self.namespace_event, lambda: (("", n) for n in cluster.namespaces)),
        ]
        for plural, kind in WORKLOAD_KINDS.items():
            self.informers.append(watch("apps", "v1", plural, self._workload_event(kind), self._workloads(kind)))
        if guard_served:
            self.informers.append(
                watch(
                    "admissionregistration.k8s.io",
                    "v1",
                    "validatingwebhookconfigurations",
                    self.guard_configuration_event,
                    lambda: [("", coverage.CONFIGURATION)] if cluster.guard_configuration is not None else [],
                    field_selector=f"metadata.name={coverage.CONFIGURATION}",
                )
            )

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(i.run(), name=f"lockgate-watch-{i.kind}") for i in self.informers]

    async def stop(self) -> None:
        """Stop watching; the records still being written (a withdrawn approval, a deleted Promotion) get
        ``DRAIN_SECONDS`` to finish, and each one cut off is logged."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._background:
            _, cut = await asyncio.wait(self._background, timeout=DRAIN_SECONDS)
            for task in cut:
                logger.error("stopping: %s did not finish", task.get_name())
                task.cancel()
            await asyncio.gather(*cut, return_exceptions=True)

    def _later(self, key: object, work: Callable[[], Coroutine[Any, Any, None]], what: str) -> None:
        """Run ``work()`` as a task of its own, after the one still running for the same ``key`` (in event order)."""
        before = self._last.get(key)

        async def in_order() -> None:
            if before is not None:
                await asyncio.wait([before])
            await work()

        task = asyncio.get_running_loop().create_task(in_order(), name=what)
        self._background.add(task)
        self._last[key] = task

        def done(task: asyncio.Task[None]) -> None:
            self._background.discard(task)
            if self._last.get(key) is task:
                del self._last[key]
            if not task.cancelled() and task.exception() is not None:
                logger.error("%s failed", what, exc_info=task.exception())

        task.add_done_callback(done)

    # -- the handlers ------------------------------------------------------------------------------
    def promotion_event(self, type_: str, obj: dict[str, Any]) -> None:
        cluster, key = self.view, lifecycle_view.key_of(obj)
        if type_ == "DELETED":
            last = obj if obj.get("status") else cluster.promotions.get(key)  # a tombstone: what the view held
            cluster.drop_promotion(key)
            if last is not None:
                what = "recording the deletion of promotion {}/{}".format(*key)
                under_way = self.reconciler.busy(key)  # now: a deploy may be under way (it may be over by then)
                self._later(
                    ("promotion", key), lambda: self.reconciler.promotion_deleted(last, under_way=under_way), what
                )
            return
        before = cluster.promotions.live.get(key)  # None: new, or settled (ended), so no decoding here
        if cluster.put_promotion(obj):
            self.reconciler.touch(key)
            target = cluster.target_of(obj)
            # A newer promotion may supersede, or free, another one; an ended one that stays ended
            # (every Promotion of a restart's listing, mostly) concerns none of them: touching all of
            # a workload's Promotions for each would make a restart quadratic in their number.
            if target is not None and not (_ended(obj) and (before is None or _ended(before))):
                for other in cluster.promotions_targeting(target):
                    if other != key:
                        self.reconciler.touch(other)

    def approval_event(self, type_: str, obj: dict[str, Any]) -> None:
        cluster = self.view
        if type_ == "DELETED":
            key = lifecycle_view.key_of(obj)
            old = cluster.drop_approval(key)
            if old is not None:
                if self.on_approval_deleted is not None:
                    withdrawn, promotion = self.on_approval_deleted, cluster.promotions.get(cluster.promotion_of(old))
                    what = "recording the withdrawal of approval {}/{}".format(*key)
                    self._later(("approval", key), lambda: withdrawn(old, promotion), what)
                self.reconciler.touch(cluster.promotion_of(old))
            return
        if cluster.put_approval(obj):
            self.reconciler.touch(cluster.promotion_of(obj))

    def policy_event(self, type_: str, obj: dict[str, Any]) -> None:
        name = str(obj["metadata"]["name"])
        if type_ == "DELETED":
            self.view.drop_policy(name)
        else:
            self.view.put_policy(obj)
            self._later(
                ("policy", name), lambda: self.policy_statuses.publish(obj), f"writing GatePolicy {name}'s status"
            )
        self.policy_statuses.changed()  # the namespaces it gates (and so where the guard must be called) may differ
        self.reconciler.touch_all()

    def namespace_event(self, type_: str, obj: dict[str, Any]) -> None:
        name = str(obj["metadata"]["name"])
        old = self.view.namespaces.get(name)
        if type_ == "DELETED":
            self.view.drop_namespace(name)
        else:
            self.view.put_namespace(obj)
        if old != self.view.namespaces.get(name):
            self.reconciler.touch_all([name])
            self.policy_statuses.changed()

    def guard_configuration_event(self, type_: str, obj: dict[str, Any]) -> None:
        self.view.put_guard_configuration(None if type_ == "DELETED" else obj)
        self.policy_statuses.changed()

    def _workload_event(self, kind: str) -> Callable[[str, dict[str, Any]], None]:
        def workload_event(type_: str, obj: dict[str, Any]) -> None:
            cluster, key = self.view, lifecycle_view.key_of(obj)
            if type_ == "DELETED":
                cluster.drop_workload(kind, key)
            elif not cluster.put_workload(kind, obj):
                return
            workload = (kind, key[0], key[1])
            for promotion in cluster.promotions_targeting(workload) + cluster.promotions_sourcing(workload):
                self.reconciler.touch(promotion)

        return workload_event

    def _workloads(self, kind: str) -> Callable[[], Iterable[informer.Key]]:
        def known() -> Iterable[informer.Key]:
            return ((namespace, name) for k, namespace, name in self.view.workloads if k == kind)

        return known


def watch_gauge(metrics: lockgate_metrics.Metrics | None, plural: str) -> Callable[[bool], None] | None:
    """What sets ``lockgate_watch_up{resource=plural}``: 0 until the watch's first stream proves healthy."""
    if metrics is None:
        return None
    gauge = metrics.watch_up.labels(plural)
    gauge.set(0)
    return lambda up: gauge.set(1 if up else 0)


def _ended(obj: dict[str, Any]) -> bool:
    return str((obj.get("status") or {}).get("phase") or "") in lifecycle_steps.TERMINAL
