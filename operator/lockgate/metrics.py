"""Prometheus metrics of the gate: latency histograms, outcome counters, and live gauges.

Gauges that describe live state (promotions awaiting approval, the oldest wait, overdue retro
reviews) are computed at scrape time from the operator's view of the cluster, so they are right
after a restart without any stored counters.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import core, registry

LATENCY_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
TERMINAL = ("Succeeded", "Failed", "RolledBack", "Rejected", "Superseded")
ROLLOUT_STARTED = ("Deploying", "Verifying")  # the first status once the gate let a rollout go


class LiveSource(Protocol):
    """What the live gauges are computed from at scrape time (the operator's view of the cluster)."""

    def unsettled_promotions(self) -> Iterable[tuple[tuple[str, str], Mapping[str, Any]]]:
        """Promotions whose cycle has not ended for their spec (waiting, rolling out, or with a retro
        review open): a settled one adds nothing to the gauges."""
        ...

    def paused_in_gated_namespaces(self) -> Mapping[str, int]:
        """Paused Deployments per gated namespace."""
        ...

    def unguarded_namespaces(self) -> Mapping[str, list[str]]:
        """Gated namespace -> the image guard's webhooks the API server would not call there."""
        ...

    def unverified_guard_conditions(self) -> list[str]:
        """The image guard's webhooks whose matchConditions Lockgate cannot evaluate."""
        ...


def _time(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class _LiveState(registry.Collector):
    def __init__(self, source: LiveSource) -> None:
        self.source = source

    def collect(self) -> Iterator[core.Metric]:
        now = datetime.datetime.now(datetime.UTC)
        awaiting = core.GaugeMetricFamily(
            "lockgate_promotions_awaiting_approval", "Promotions waiting for approvals", labels=["namespace"]
        )
        oldest = core.GaugeMetricFamily(
            "lockgate_oldest_awaiting_approval_seconds", "Age of the oldest Promotion waiting for approval"
        )
        overdue = core.GaugeMetricFamily(
            "lockgate_retro_reviews_overdue", "Emergency changes whose retro review is overdue"
        )
        paused = core.GaugeMetricFamily(
            "lockgate_paused_deployments",
            "Paused Deployments in gated namespaces: they hold their Promotions, and removing one's current "
            "ReplicaSet (break-glass only) makes its controller revive an older one (an earlier image)",
            labels=["namespace"],
        )
        for namespace, count in sorted(self.source.paused_in_gated_namespaces().items()):
            paused.add_metric([namespace], count)
        unguarded = core.GaugeMetricFamily(
            "lockgate_unguarded_webhooks",
            "Image guard webhooks the API server would not call in a gated namespace (its webhook configuration "
            "leaves the namespace out): an image change there would pass unjudged",
            labels=["namespace"],
        )
        for namespace, gaps in sorted(self.source.unguarded_namespaces().items()):
            unguarded.add_metric([namespace], len(gaps))
        unverified = core.GaugeMetricFamily(
            "lockgate_unverified_guard_conditions",
            "Image guard webhooks whose matchConditions Lockgate's CEL cannot evaluate (a Kubernetes-only function): "
            "whether the API server calls the guard for every change cannot be told",
        )
        webhooks = {entry.split(": ", 1)[0] for entry in self.source.unverified_guard_conditions()}
        unverified.add_metric([], len(webhooks))
        counts: dict[str, int] = {}
        oldest_seconds = 0.0
        overdue_count = 0
        for (namespace, _), obj in list(self.source.unsettled_promotions()):
            status = obj.get("status") or {}
            if status.get("phase") == "AwaitingApproval":
                counts[namespace] = counts.get(namespace, 0) + 1
                since = _time(status.get("readyForApprovalAt"))
                if since is not None:
                    oldest_seconds = max(oldest_seconds, (now - since).total_seconds())
            due = _time(status.get("retroReviewDueAt"))
            if due is not None and due < now and not status.get("retroReviewedAt"):
                overdue_count += 1
        for namespace, count in sorted(counts.items()):
            awaiting.add_metric([namespace], count)
        oldest.add_metric([], oldest_seconds)
        overdue.add_metric([], overdue_count)
        yield awaiting
        yield oldest
        yield overdue
        yield paused
        yield unguarded
        yield unverified


class Metrics:
    """All Lockgate collectors, in their own registry (several operators can share a process)."""

    def __init__(self, source: LiveSource | None = None) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        r = self.registry
        self.gate_latency = prometheus_client.Histogram(
            "lockgate_gate_latency_seconds",
            "Ready for approval to approved",
            ["namespace", "policy"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.promotions = prometheus_client.Counter(
            "lockgate_promotions", "Promotions that ended, by outcome", ["namespace", "outcome"], registry=r
        )
        self.duration = prometheus_client.Histogram(
            "lockgate_promotion_duration_seconds",
            "Creation to end of a Promotion cycle",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.approvals = prometheus_client.Counter(
            "lockgate_approvals",
            "Approvals seen, by decision and whether they counted",
            ["decision", "counted"],
            registry=r,
        )
        self.not_counted = prometheus_client.Counter(
            "lockgate_approvals_not_counted",
            "Approvals that did not count, by reason",
            ["reason"],
            registry=r,
        )
        self.policy_denials = prometheus_client.Counter(
            "lockgate_policy_denials", "Policy rules that held a Promotion", ["policy", "rule"], registry=r
        )
        self.rollbacks = prometheus_client.Counter("lockgate_rollbacks", "Rollbacks performed", registry=r)
        self.audit_writes = prometheus_client.Counter(
            "lockgate_audit_writes", "Audit record writes, by sink and result", ["sink", "result"], registry=r
        )
        self.emergency = prometheus_client.Counter(
            "lockgate_emergency_changes", "Emergency changes (break-glass or emergency path)", registry=r
        )
        self.watch_up = prometheus_client.Gauge(
            "lockgate_watch_up",
            "1 while the operator watches the resource; 0 while it cannot list or watch it and its view of that "
            "kind goes stale (deploy decisions then read GatePolicies, Namespaces, Approvals and approver "
            "permissions from the API; a new Approval or Promotion waits)",
            ["resource"],
            registry=r,
        )
        self._seen_approvals: set[tuple[str, str]] = set()
        self._seen_denials: set[tuple[str, str, str]] = set()
        if source is not None:
            r.register(_LiveState(source))

    # -- events from the lifecycle ------------------------------------------------------------
    def transition(self, promotion: Mapping[str, Any], old_phase: str, new_status: Mapping[str, Any]) -> None:
        namespace = str(promotion.get("metadata", {}).get("namespace"))
        phase = str(new_status.get("phase") or "")
        # The rollout's first status (Deploying, or Verifying when the change was applied at once)
        # carries how long the gate held it.
        started = phase in ROLLOUT_STARTED and old_phase not in ROLLOUT_STARTED
        if started and new_status.get("gateLatencySeconds") is not None:
            policies = {
                str(g.get("name", "")).split("/")[0]
                for g in new_status.get("gates") or []
                if g.get("kind") == "Approvals"
            }
            label = ",".join(sorted(p for p in policies if p)) or "none"
            self.gate_latency.labels(namespace, label).observe(float(new_status["gateLatencySeconds"]))
            if new_status.get("emergency"):
                self.emergency.inc()
        if phase == "RolledBack":
            self.rollbacks.inc()
        if phase in TERMINAL and old_phase not in TERMINAL:
            self.promotions.labels(namespace, phase).inc()
            created = _time(promotion.get("metadata", {}).get("creationTimestamp"))
            if created is not None:
                seconds = (datetime.datetime.now(datetime.UTC) - created).total_seconds()
                self.duration.labels(phase).observe(max(0.0, seconds))

    def approval_verdicts(self, namespace: str, verdicts: Sequence[Mapping[str, Any]]) -> None:
        """Count each Approval once per (approval, counted) outcome."""
        for item in verdicts:
            counted = bool(item.get("counted"))
            seen_key = (f"{namespace}/{item.get('approval')}", str(counted))
            if seen_key in self._seen_approvals:
                continue
            self._seen_approvals.add(seen_key)
            self.approvals.labels(str(item.get("decision") or "Approve"), str(counted).lower()).inc()
            if not counted:
                self.not_counted.labels(str(item.get("reason") or "Unknown")).inc()

    def policy_denial(self, promotion_key: str, policy: str, rule: str) -> None:
        seen_key = (promotion_key, policy, rule)
        if seen_key not in self._seen_denials:
            self._seen_denials.add(seen_key)
            self.policy_denials.labels(policy, rule).inc()

    def audit_write(self, sink: str, ok: bool) -> None:
        self.audit_writes.labels(sink, "success" if ok else "failure").inc()

    def exposition(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)


class MetricsServer:
    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self.server, self.thread = server, thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(host: str, port: int, metrics: Metrics | None = None) -> MetricsServer:
    """Serve ``/metrics`` on a background thread."""
    server, thread = prometheus_client.start_http_server(
        port, addr=host, registry=metrics.registry if metrics else prometheus_client.REGISTRY
    )
    return MetricsServer(server, thread)
