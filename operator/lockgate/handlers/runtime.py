"""Assembling and running the operator: credentials, view, gate, audit, metrics, Kopf.

``run_operator`` is what ``lockgate run`` and ``lockgate dev`` call; everything it builds is
passed explicitly, so several operators can run in one process (tests, restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable
from typing import Any

from lockgate.handlers import kopfimport  # isort: skip  # noqa: F401  (before kopf: no kubernetes client)
import kopf
from kopf._cogs.structs import credentials  # Kopf's vault of API sessions (not exported; kopf 1.45)

from lockgate import metrics as lockgate_metrics
from lockgate import probes
from lockgate import settings as lockgate_settings
from lockgate.admission import coverage
from lockgate.handlers import admission, watching
from lockgate.kube import access, config, freshreads, leadership, rbacwatch, stampkeys
from lockgate.kube import client as kclient
from lockgate.lifecycle import auditing, gating, policystatus, reconciler, view

logger = logging.getLogger("lockgate")


def _kopf_settings(settings: lockgate_settings.OperatorSettings) -> kopf.OperatorSettings:
    """Kopf serves the admission webhooks (and, with ``manage_webhooks``, writes their configuration); it
    watches nothing: the view's informers do (``handlers/watching.py``), so Kopf writes nothing on our
    objects either (GitOps tools see no drift)."""
    kopf_settings = kopf.OperatorSettings()
    kopf_settings.posting.level = logging.WARNING
    # Every replica watches (a warm view, webhooks served by all); a Lease, not Kopf peering, decides
    # which one acts, so Kopf itself runs standalone and needs no peering CRDs.
    kopf_settings.peering.standalone = True
    kopf_settings.peering.clusterwide = True
    kopf_settings.scanning.disabled = True
    kopf_settings.networking.request_timeout = settings.api_timeout_seconds * 3
    return kopf_settings


async def run_operator(
    *,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    settings: lockgate_settings.OperatorSettings | None = None,
    audit_trail: Any = None,
) -> None:
    """Run until ``stop`` is set. ``audit_trail`` overrides the sinks from settings (tests)."""
    settings = settings or lockgate_settings.OperatorSettings()
    creds = config.load(kubeconfig, context)
    api = kclient.Client(
        creds, timeout=settings.api_timeout_seconds, user_agent=f"{kclient.BASE_AGENT} replica/{settings.pod_name}"
    )
    await api.open()
    cluster = view.ClusterView()
    cluster.guard_setup = coverage.Setup(
        tuple(settings.break_glass_groups),
        tuple(settings.image_annotations),
        served_at=settings.webhook_public_host,
        operator_managed=settings.manage_webhooks,
    )
    metrics = lockgate_metrics.Metrics(cluster)
    trail = auditing.AuditAdapter.from_settings(operator=settings.identity, trail=audit_trail, metrics=metrics)
    await trail.prepare()  # the first decision does not pay for opening the audit file
    key = await stampkeys.ensure(api, settings.namespace, settings.stamp_secret)
    approvers = access.ApproverAccess(api, ttl=settings.sar_cache_seconds)
    fresh_reads = freshreads.FreshReads(api)  # while a view's watch is not streaming
    gate = gating.Gate(cluster, approvers, key, metrics=metrics, fresh_reads=fresh_reads)
    engine = reconciler.Reconciler(api, cluster, gate, trail, metrics, verification_hosts=settings.verification_hosts)
    policy_statuses = policystatus.PolicyStatuses(api, cluster, primed=engine.primed)
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(
            server=creds.server,
            token=creds.token,
            scheme="Bearer" if creds.token else None,
            ca_data=creds.ca_data,
            insecure=creds.insecure or None,
            certificate_data=creds.client_cert_data,
            private_key_data=creds.client_key_data,
            default_namespace=creds.default_namespace,
        )

    async def approval_deleted(old: dict[str, Any], promotion: dict[str, Any] | None) -> None:
        await trail.approval_withdrawn(old, promotion)

    async def approval_deleting(old: dict[str, Any], user: Any) -> None:
        promotion = cluster.promotions.get(cluster.promotion_of(old))
        await trail.approval_withdrawn(old, promotion, by=user.username, strict=True)

    async def break_glass(kind: str, workload: dict[str, Any], user: Any, verdict: Any) -> None:
        metrics.emergency.inc()
        await trail.emergency_bypass(
            kind, workload, user.username, list(user.groups), verdict.message, settings.image_annotations
        )

    watches = watching.Watches(
        api,
        cluster,
        engine,
        policy_statuses,
        on_approval_deleted=approval_deleted,
        guard_served=settings.webhook_port >= 0,
        metrics=metrics,
    )
    kopf_settings = _kopf_settings(settings)
    reviews = admission.register(
        registry,
        kopf_settings,
        settings,
        key,
        cluster,
        api,
        on_break_glass=break_glass,
        on_approval_delete=approval_deleting,
        primed=engine.primed,
        fresh_reads=fresh_reads,
    )
    metrics_server = (
        lockgate_metrics.serve(settings.metrics_host, settings.metrics_port, metrics) if settings.metrics_port else None
    )
    engine.start()
    watches.start()
    policy_statuses.start(read_configuration=settings.webhook_port >= 0 and not settings.manage_webhooks)
    rbac = rbacwatch.RbacWatch(
        api, approvers, engine.touch_waiting_soon, state=lambda plural: watching.watch_gauge(metrics, plural)
    )
    rbac_task = asyncio.create_task(rbac.run(), name="lockgate-rbac-watch")
    leader_task = None
    if not settings.standalone:
        engine.queue.active.clear()

        def leadership_changed(held: bool) -> None:
            if held:
                engine.queue.active.set()
                engine.touch_all()
            else:
                engine.queue.active.clear()

        lease = leadership.Leadership(
            api,
            namespace=settings.namespace,
            name=settings.lease_name,
            identity=f"{settings.pod_name}_{uuid.uuid4().hex[:8]}",
            lease_seconds=settings.lease_seconds,
            renew_every=max(1.0, settings.lease_seconds / 3),
            on_change=leadership_changed,
        )
        leader_task = asyncio.create_task(lease.run(), name="lockgate-leadership")
    waits: list[tuple[asyncio.Event, str | Callable[[], str]]] = [(engine.primed, engine.priming)]
    if reviews is not None:
        waits.append((reviews.listening, "the webhook server (starting)"))
    probe_server = None
    stop_flag = stop or asyncio.Event()
    vault = credentials.Vault()  # ours, to close its API sessions even when Kopf's cleanup is cancelled (a kill)
    try:
        if settings.health_port:
            probe_server = await probes.Probes(waits).serve(settings.health_host, settings.health_port)
        await kopf.operator(
            registry=registry,
            settings=kopf_settings,
            clusterwide=True,
            stop_flag=stop_flag,
            ready_flag=ready,
            vault=vault,
        )
    finally:
        rbac_task.cancel()
        if leader_task is not None:
            leader_task.cancel()
        with contextlib.suppress(Exception):  # whatever it says, the rest of the shutdown runs
            await vault.close()
        await watches.stop()
        await engine.stop()
        await policy_statuses.stop()
        await api.close()
        if metrics_server is not None:
            metrics_server.close()
        if probe_server is not None:
            await probe_server.cleanup()
        trail.close()
