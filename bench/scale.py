"""Benchmark: scale. 5,000 Promotions with 3 Approvals each across 100 namespaces (``--quick``: 500 / 10).

Run: ``.venv/bin/python bench/scale.py`` (``--quick`` for a smaller run).

Reports the operator's peak RSS (``VmHWM`` of the ``lockgate run`` subprocess, sampled from
``/proc``), the time from the first Promotion's creation until every Promotion is Succeeded, and the
resync time after a restart: from starting a fresh operator until it acts on a Promotion created
as soon as its webhooks are back (that Promotion's first event queues behind the whole initial
listing, so it is handled only after the operator has looked at every existing object).

Each Promotion targets its own Deployment (seeded directly into the embedded API: that is set-up,
not what is measured); Promotions and Approvals are created through the API and its admission
webhooks (alice requests; bob, carol and dan approve), with bounded concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import sys
import threading
import time
from typing import Any

import harness
from lockgate.devcluster import runner, workloads

IMAGE = f"registry.example/web:2.0@{harness.DIGEST}"
APPROVERS = ("bob", "carol", "dan")


def seed_deployments(running: runner.RunningCluster, namespaces: list[str], per_namespace: int) -> None:
    """Store the target Deployments (rolled out, complete) directly, on the API's own loop."""

    async def seed() -> None:
        for ns in namespaces:
            running.cluster.seed(harness.namespace_body(ns))
            for j in range(per_namespace):
                body = harness.deployment_body(ns, f"app-{j}")
                body["metadata"]["generation"] = 1
                status = workloads.next_status("Deployment", body, "complete")
                running.cluster.seed(body, status=status, observe=False)
            await asyncio.sleep(0)

    future: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(seed(), running.loop)
    future.result(timeout=600)


class Sampler:
    """VmRSS of the operator every 0.5 s, in a thread."""

    def __init__(self, operator: harness.OperatorProcess) -> None:
        self.operator = operator
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_rss = max(self.peak_rss, self.operator.memory_kb().get("VmRSS", 0))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


async def count_phases(api: harness.Api) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in await api.list(f"{harness.GROUP_PATH}/promotions"):
        phase = str((p.get("status") or {}).get("phase") or "New")
        counts[phase] = counts.get(phase, 0) + 1
    return counts


async def load(running: runner.RunningCluster, namespaces: list[str], per_namespace: int) -> dict[str, Any]:
    total = len(namespaces) * per_namespace
    async with harness.Api(running, concurrency=48) as api:
        await api.create(harness.production_policy())
        started = time.monotonic()
        await api.gather(
            api.create(harness.promotion_body(ns, f"app-{j}", f"app-{j}", IMAGE, timeout="10m"), user="alice")
            for ns in namespaces
            for j in range(per_namespace)
        )
        promotions_created = time.monotonic() - started
        await api.gather(
            api.create(harness.approval_body(ns, f"app-{j}-{who}", f"app-{j}"), user=who)
            for ns in namespaces
            for j in range(per_namespace)
            for who in APPROVERS
        )
        approvals_created = time.monotonic() - started
        last: dict[str, int] = {}

        async def all_succeeded() -> bool:
            nonlocal last
            last = await count_phases(api)
            return last.get("Succeeded", 0) == total

        try:
            await harness.wait_until(all_succeeded, within=1800, interval=3.0, what="every promotion Succeeded")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; phases: {last}") from None
        return {
            "promotions_created_s": promotions_created,
            "approvals_created_s": approvals_created,
            "all_succeeded_s": time.monotonic() - started,
            "phases": last,
        }


async def sentinel(running: runner.RunningCluster, namespace: str) -> float:
    """Create a Promotion now; seconds until the operator publishes it as AwaitingApproval."""
    async with harness.Api(running) as api:
        started = time.monotonic()
        body = harness.promotion_body(namespace, "sentinel", "sentinel", IMAGE)
        await api.create(body, user="alice")
        path = f"{harness.GROUP_PATH}/namespaces/{namespace}/promotions/sentinel"

        async def waiting() -> bool:
            status = (await api.call("GET", path)).get("status") or {}
            return status.get("phase") == "AwaitingApproval"

        await harness.wait_until(waiting, within=300, interval=0.1, what="the sentinel promotion evaluated")
        return time.monotonic() - started


def run(namespace_count: int, per_namespace: int) -> dict[str, Any]:
    namespaces = [f"scale-{i}" for i in range(namespace_count)]
    with harness.workdir("lockgate-bench-scale-") as work, harness.cluster(workload_delay=0.05) as running:
        seed_deployments(running, namespaces, per_namespace)
        operator = harness.OperatorProcess(running, work).start()
        try:
            operator.wait_ready()
            with Sampler(operator) as sampler:
                result = asyncio.run(load(running, namespaces, per_namespace))
            first = {"peak_rss_kb": max(sampler.peak_rss, operator.memory_kb().get("VmHWM", 0))}
        finally:
            operator.stop()
        restarted = harness.OperatorProcess(running, work).start()
        try:
            ready = restarted.wait_ready(timeout=120)
            with Sampler(restarted) as sampler:
                handled = asyncio.run(sentinel(running, namespaces[0]))
            resync = time.monotonic() - restarted.started_at
            second = {"peak_rss_kb": max(sampler.peak_rss, restarted.memory_kb().get("VmHWM", 0))}
        finally:
            restarted.stop()
        return {
            **result,
            "first": first,
            "restart_ready_s": ready,
            "sentinel_s": handled,
            "resync_s": resync,
            "second": second,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 promotions in 10 namespaces")
    parser.add_argument("--namespaces", type=int, default=None)
    parser.add_argument("--per-namespace", type=int, default=50)
    args = parser.parse_args()
    namespaces = args.namespaces or (10 if args.quick else 100)
    total = namespaces * args.per_namespace
    r = run(namespaces, args.per_namespace)
    print(f"phases at the end: {r['phases']}", file=sys.stderr)
    rows = [
        ["promotions created (alice, through the webhook)", f"{r['promotions_created_s']:.1f} s", ""],
        [f"+ {total * 3:,} approvals created", f"{r['approvals_created_s']:.1f} s", ""],
        ["time until every promotion Succeeded", f"{r['all_succeeded_s']:.1f} s", ""],
        ["operator peak RSS (VmHWM), first run", f"{r['first']['peak_rss_kb'] / 1024:.0f} MB", "<= 150 MB"],
        ["restart: watches and webhooks up", f"{r['restart_ready_s']:.1f} s", ""],
        ["restart: resync (start -> new promotion handled)", f"{r['resync_s']:.1f} s", "<= 20 s"],
        ["operator peak RSS after restart", f"{r['second']['peak_rss_kb'] / 1024:.0f} MB", "<= 150 MB"],
    ]
    print(f"scale: {total:,} promotions x 3 approvals across {namespaces} namespaces")
    print(harness.table(rows, ["measure", "value", "target"]))


if __name__ == "__main__":
    main()
