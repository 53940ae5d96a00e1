"""One Lockgate for many reliability trials: the embedded API, a restartable operator, a timed audit trail.

Objects are driven over HTTPS as the sample users (alice requests; bob and carol approve or reject);
``GATE_POLICY`` needs one approval, so a trial is short. The audit sink remembers when each record
became durable, so invariants can compare it with the time the API received a workload patch.
"""

from __future__ import annotations

import datetime
import itertools
import pathlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lockgate.audit import record, trail
from lockgate.audit.sinks import sqlite
from lockgate.devcluster import server, testing, world
from lockgate.handlers import background
from lockgate.handlers import testing as stack_testing
from lockgate.lifecycle import statuses
from tests.reliability import invariants

NAMESPACE = "production"
SEED_IMAGE = world.WEB_IMAGE
API = "/apis/lockgate.dev/v1alpha1"
PROMOTIONS = f"{API}/namespaces/{NAMESPACE}/promotions"
APPROVALS = f"{API}/namespaces/{NAMESPACE}/approvals"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
TERMINAL = ("Succeeded", "Failed", "RolledBack", "Rejected", "Superseded")
REQUIRED_APPROVALS = 1

#: One approval from a lead of either kind; the requester and the author never count.
GATE_POLICY: dict[str, Any] = {
    "apiVersion": "lockgate.dev/v1alpha1",
    "kind": "GatePolicy",
    "metadata": {"name": "reliability"},
    "spec": {
        "namespaceSelector": {"matchLabels": {"lockgate.dev/environment": "production"}},
        "approvals": {
            "rules": [{"name": "lead", "groups": ["engineering-leads", "security-leads"], "count": 1}],
            "forbidSelfApproval": True,
            "maxAge": "24h",
        },
    },
}


class TimedSink(sqlite.SqliteSink):
    """The sqlite sink, remembering when each record became durable (or refusing writes while down)."""

    def __init__(self, path: pathlib.Path) -> None:
        super().__init__(path)
        self.durable_at: dict[str, float] = {}
        self.down = False
        self.refuse_events: set[str] = set()  # refuse only these events (a partial outage)
        self.refuse_reads = False  # reads fail too (the volume is gone, not only full)
        self.refused = 0
        self._timing = threading.Lock()

    def get(self, record_id: str) -> record.AuditRecord | None:
        if self.refuse_reads:
            raise OSError("injected outage: the audit volume refuses reads")
        return super().get(record_id)

    def append_all(self, recs: Sequence[record.AuditRecord]) -> list[record.AuditRecord]:
        if self.down or any(rec.event in self.refuse_events for rec in recs):
            with self._timing:
                self.refused += 1
            raise OSError("injected outage: the audit volume refuses writes")
        stored = super().append_all(recs)
        with self._timing:
            for copy in stored:
                self.durable_at.setdefault(copy.id, time.time())
        return stored


def promotion_body(name: str, image: str, *, author: str = "dave", target: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "lockgate.dev/v1alpha1",
        "kind": "Promotion",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "target": {"kind": "Deployment", "name": target, "container": "web"},
            "image": image,
            "change": {"description": f"Release {name}", "ticket": "CHG-1", "author": author},
            "verification": {"timeout": "20s", "rollbackOnFailure": True},
        },
    }


class Lockgate:
    """The stack plus helpers to drive it over HTTPS and to restart or kill the operator."""

    def __init__(self, stack: stack_testing.Stack) -> None:
        self.stack = stack
        self.sink = TimedSink(stack.audit_path)
        self.trail = trail.AuditTrail([self.sink])
        self.operator: background.OperatorThread | None = None
        self._names = itertools.count(1)

    @property
    def cluster(self) -> server.DevCluster:
        return self.stack.cluster.cluster

    # -- the operator ----------------------------------------------------------------------------
    def start_operator(self) -> background.OperatorThread:
        assert self.operator is None or not alive(self.operator), "the operator is already running"
        self.operator = background.OperatorThread(
            kubeconfig=self.stack.cluster.kubeconfig, audit_trail=self.trail
        ).start()
        return self.operator

    def kill_operator(self) -> None:
        if self.operator is not None:
            self.operator.kill()
            assert not alive(self.operator), "the killed operator's thread is still running"

    def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.stop()

    # -- the API -----------------------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, *, user: str = "admin", **kw: Any) -> tuple[int, Any]:
        return testing.api(self.stack.cluster, method, path, body, user=user, **kw)

    def ok(self, method: str, path: str, body: Any = None, *, user: str = "admin", **kw: Any) -> Any:
        code, answer = self.api(method, path, body, user=user, **kw)
        assert code < 400, f"{method} {path} as {user}: {code} {answer}"
        return answer

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self._names)}"

    def retrying(self, method: str, path: str, body: Any = None, *, user: str = "admin", **kw: Any) -> tuple[int, Any]:
        """Admission calls the operator's webhooks, which fail closed (5xx) while it (re)starts: retry.

        A killed operator's port can still accept connections that nobody answers (the process of a
        real crash would be gone): the API then waits for the webhook's 30 s timeout, so we wait longer.
        """
        kw.setdefault("timeout", 40)
        deadline = time.monotonic() + 10
        while True:
            code, answer = self.api(method, path, body, user=user, **kw)
            if code < 500 or time.monotonic() > deadline:
                return code, answer
            time.sleep(0.1)

    def create_promotion(self, name: str, image: str, *, user: str = "alice", target: str = "web") -> dict[str, Any]:
        code, answer = self.retrying("POST", PROMOTIONS, promotion_body(name, image, target=target), user=user)
        assert code < 400, f"creating Promotion {name} as {user}: {code} {answer}"
        result: dict[str, Any] = answer
        return result

    def change_image(self, name: str, image: str, *, user: str = "admin") -> dict[str, Any]:
        code, answer = self.retrying(
            "PATCH",
            f"{PROMOTIONS}/{name}",
            {"spec": {"image": image}},
            user=user,
            content_type="application/merge-patch+json",
        )
        assert code < 400, f"changing the image of {name} as {user}: {code} {answer}"
        result: dict[str, Any] = answer
        return result

    def decide(
        self, promotion: str, user: str, decision: str = "Approve", *, spec_hash: str | None = None
    ) -> tuple[int, Any]:
        spec: dict[str, Any] = {"promotion": promotion, "decision": decision}
        if spec_hash:
            spec["specHash"] = spec_hash
        body = {
            "apiVersion": "lockgate.dev/v1alpha1",
            "kind": "Approval",
            "metadata": {"name": self.unique(f"{promotion}-{user}"), "namespace": NAMESPACE},
            "spec": spec,
        }
        return self.retrying("POST", APPROVALS, body, user=user)

    def promotion(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ok("GET", f"{PROMOTIONS}/{name}")
        return result

    def promotions(self, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.ok("GET", f"{API}/namespaces/{namespace}/promotions")["items"]
        return items

    def approvals(self, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.ok("GET", f"{API}/namespaces/{namespace}/approvals")["items"]
        return items

    def add_workload(self, name: str) -> None:
        """Another Deployment like ``web`` (its container is named ``web`` too), created by an admin."""
        body = world.web_deployment(NAMESPACE)
        body["metadata"]["name"] = name
        self.ok("POST", DEPLOYMENTS, body)
        self.wait_for(
            lambda: (self.ok("GET", f"{DEPLOYMENTS}/{name}").get("status") or {}).get("availableReplicas") == 2,
            message=f"{name} to become available",
        )

    def deployments(self, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.ok("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments")["items"]
        return items

    def image(self, name: str = "web") -> str:
        containers = self.ok("GET", f"{DEPLOYMENTS}/{name}")["spec"]["template"]["spec"]["containers"]
        return str(next(c["image"] for c in containers if c["name"] == "web"))

    def wait_for(self, what: Callable[[], Any], *, timeout: float = 20.0, message: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = what()
            if last:
                return last
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {message}; last: {last!r}")

    def wait_current_cycle(self, name: str, *, timeout: float = 20.0) -> dict[str, Any]:
        """The Promotion once its status describes the spec as it is now (a spec change was seen)."""

        def current() -> dict[str, Any] | None:
            obj = self.promotion(name)
            status = obj.get("status") or {}
            return obj if status.get("specHash") == statuses.spec_hash(obj) and status.get("phase") else None

        result: dict[str, Any] = self.wait_for(current, timeout=timeout, message=f"{name} to describe its spec")
        return result

    def wait_terminal(self, name: str, *, timeout: float = 20.0) -> dict[str, Any]:
        """The Promotion once its current cycle ended (a terminal phase for the spec as it is now)."""

        def ended() -> dict[str, Any] | None:
            obj = self.promotion(name)
            status = obj.get("status") or {}
            if status.get("phase") in TERMINAL and status.get("specHash") == statuses.spec_hash(obj):
                return obj
            return None

        result: dict[str, Any] = self.wait_for(ended, timeout=timeout, message=f"{name} to end")
        return result


def alive(operator: background.OperatorThread) -> bool:
    """Whether the operator's thread still runs (it ends on stop, kill or a crash)."""
    return operator._thread.is_alive()


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@contextmanager
def lockgate(*, workload_delay: float = 0.1) -> Iterator[Lockgate]:
    """The embedded API with the reliability policy, and the operator running against it."""
    with stack_testing.stack(operator=False, workload_delay=workload_delay) as s:
        gate = Lockgate(s)
        gate.ok("POST", f"{API}/gatepolicies", GATE_POLICY)
        gate.start_operator()
        try:
            yield gate
        finally:
            gate.stop_operator()


def snapshot(gate: Lockgate, namespace: str = NAMESPACE) -> invariants.Snapshot:
    """What the invariants read, taken now (the Promotions, Approvals and Deployments of ``namespace``)."""
    return invariants.Snapshot(
        requests=list(gate.cluster.requests),
        records=gate.trail.records(),
        durable_at=dict(gate.sink.durable_at),
        promotions=gate.promotions(namespace),
        approvals=gate.approvals(namespace),
        workloads=gate.deployments(namespace),
        seed_image=SEED_IMAGE,
        required=REQUIRED_APPROVALS,
    )


def violations(gate: Lockgate) -> list[str]:
    return invariants.check(snapshot(gate)) + invariants.trail_verifies(gate.trail)
