"""Benchmark: scale. 5,000 Promotions with 3 Approvals each across 100 namespaces.

Run: ``.venv/bin/python bench/scale.py`` (``--quick``: 1,000 of state, 200 processed).

Two parts, one embedded API, the operator as a ``lockgate run`` subprocess:

1. Processed: ``--process`` Promotions (default 500, in 10 namespaces) are created through the API and
   its admission webhooks (alice requests; bob, carol and dan approve, 48 requests in flight), each
   targeting its own Deployment; measured: the time from the first Promotion's creation until every
   one is Succeeded, and the operator's peak RSS.
2. State and restart: the operator is stopped; the full count (5,000 x 3 Approvals across 100
   namespaces) is stored directly, as the webhook and the operator would have left it (Promotions
   stamped as alice's and Succeeded, with the status the operator wrote in part 1; Approvals stamped
   with the operator's HMAC key, with their verdicts). A fresh operator is started; measured: its
   peak RSS and the resync time, from process start until it acts on a Promotion created as soon as
   its webhooks are back (that Promotion's first event queues behind the whole initial listing).

Why part 2 does not go through the API: the embedded API sorts every stored object on each list
(``devcluster/store.py``) and lists webhook configurations on every write, so its cost per request
grows with the store (~10 creations/s at 3,000 objects): 20,000 creations and the operator's
~100,000 writes through it would take hours. The operator's own cost is what part 2 measures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import copy
import datetime
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import harness
from lockgate.admission import stamping
from lockgate.api import promotion
from lockgate.devcluster import runner, workloads
from lockgate.gates import spechash

IMAGE = f"registry.example/web:2.0@{harness.DIGEST}"
APPROVERS = ("bob", "carol", "dan")
GROUPS = {
    "alice": ("engineers",),
    "bob": ("engineering-leads",),
    "carol": ("security-leads",),
    "dan": ("oncall-leads",),
}


def on_api_loop(running: runner.RunningCluster, work: Callable[[], Iterator[None]]) -> None:
    """Run ``work`` (which stores objects) on the embedded API's own loop, yielding between batches."""

    async def seed() -> None:
        for _ in work():
            await asyncio.sleep(0)

    future: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(seed(), running.loop)
    future.result(timeout=1800)


def seed_deployments(
    running: runner.RunningCluster,
    namespaces: list[str],
    per_namespace: int,
    image: str = "registry.example/web:1.0",
    extra: tuple[str, ...] = (),
) -> None:
    """Store the target Deployments (rolled out, complete) directly; ``extra`` names more in the first namespace."""

    def deployment(ns: str, name: str) -> None:
        body = harness.deployment_body(ns, name, image)
        body["metadata"]["generation"] = 1
        status = workloads.next_status("Deployment", body, "complete")
        running.cluster.seed(body, status=status, observe=False)

    def work() -> Iterator[None]:
        for i, ns in enumerate(namespaces):
            running.cluster.seed(harness.namespace_body(ns))
            for j in range(per_namespace):
                deployment(ns, f"app-{j}")
            for name in extra if i == 0 else ():
                deployment(ns, name)
            yield

    on_api_loop(running, work)


def seed_state(
    running: runner.RunningCluster,
    namespaces: list[str],
    per_namespace: int,
    promotion_status: dict[str, Any],
    approval_status: dict[str, Any],
) -> None:
    """Store Succeeded Promotions and their judged Approvals as the webhook and the operator leave them."""
    secret = running.cluster.store.get(("", "secrets"), "lockgate-system", "lockgate-stamp-key")
    assert secret is not None, "the operator has not made its stamp key yet"
    key = base64.b64decode(secret["data"]["hmac-key"])
    now = datetime.datetime.now(datetime.UTC)
    users = {who: stamping.User(who, groups) for who, groups in GROUPS.items()}

    def work() -> Iterator[None]:
        for ns in namespaces:
            for j in range(per_namespace):
                name = f"app-{j}"
                body = harness.promotion_body(ns, name, name, IMAGE, timeout="10m")
                annotation = stamping.stamp_promotion(key, body, None, users["alice"], now)
                body["metadata"]["annotations"] = {stamping.REQUESTED_BY: annotation}
                spec_hash = spechash.of_promotion(promotion.Promotion.from_k8s(body))
                status = copy.deepcopy(promotion_status)
                status["specHash"] = spec_hash
                for entry in status.get("approvals") or []:
                    entry["approval"] = f"{name}-{entry.get('approver')}"
                running.cluster.seed(body, status=status)
                for who in APPROVERS:
                    approval = harness.approval_body(ns, f"{name}-{who}", name, spec_hash)
                    approval["spec"].update(
                        stamping.stamp_approval(key, ns, f"{name}-{who}", approval["spec"], users[who], now)
                    )
                    running.cluster.seed(approval, status=copy.deepcopy(approval_status))
            yield

    on_api_loop(running, work)


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
        done = (await api.list(f"{harness.GROUP_PATH}/promotions"))[0]
        appr = (await api.list(f"{harness.GROUP_PATH}/approvals"))[0]
        return {
            "templates": (done.get("status") or {}, appr.get("status") or {}),
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


def run(process: int, state_namespaces: int, per_namespace: int) -> dict[str, Any]:
    processed_ns = [f"processed-{i}" for i in range(max(1, process // 50))]
    per_processed = process // len(processed_ns)
    state_ns = [f"scale-{i}" for i in range(state_namespaces)]
    with harness.workdir("lockgate-bench-scale-") as work, harness.cluster(workload_delay=0.05) as running:
        seed_deployments(running, processed_ns, per_processed)
        operator = harness.OperatorProcess(running, work).start()
        try:
            operator.wait_ready()
            with Sampler(operator) as sampler:
                result = asyncio.run(load(running, processed_ns, per_processed))
            first = max(sampler.peak_rss, operator.memory_kb().get("VmHWM", 0))
            first_steady = operator.memory_kb().get("VmRSS", 0)
            operator.snapshot()
        finally:
            operator.stop()
        started = time.monotonic()
        # The sentinel targets a Deployment of its own (a missing target holds a Promotion Pending).
        seed_deployments(running, state_ns, per_namespace, IMAGE, extra=("sentinel",))
        seed_state(running, state_ns, per_namespace, *result.pop("templates"))
        seeded = time.monotonic() - started
        restarted = harness.OperatorProcess(running, work).start()
        try:
            ready = restarted.wait_ready(timeout=300)
            with Sampler(restarted) as sampler:
                handled = asyncio.run(sentinel(running, state_ns[0]))
                resync = time.monotonic() - restarted.started_at
                resync_cpu = restarted.cpu_seconds()
                time.sleep(3)  # settle: the peak of the initial listing and its passes
            second = max(sampler.peak_rss, restarted.memory_kb().get("VmHWM", 0))
            second_steady = restarted.memory_kb().get("VmRSS", 0)
            restarted.snapshot()
        finally:
            restarted.stop()
        return {
            **result,
            "processed": per_processed * len(processed_ns),
            "processed_namespaces": len(processed_ns),
            "first_rss_kb": first,
            "first_steady_kb": first_steady,
            "second_steady_kb": second_steady,
            "seeded_s": seeded,
            "restart_ready_s": ready,
            "sentinel_s": handled,
            "resync_s": resync,
            "resync_cpu_s": resync_cpu,
            "second_rss_kb": second,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 promotions of state, 200 processed")
    parser.add_argument("--process", type=int, default=None, help="promotions processed through the API")
    parser.add_argument("--namespaces", type=int, default=None, help="namespaces of stored state")
    parser.add_argument("--per-namespace", type=int, default=50)
    args = parser.parse_args()
    namespaces = args.namespaces or (20 if args.quick else 100)
    process = args.process or (200 if args.quick else 500)
    total = namespaces * args.per_namespace
    r = run(process, namespaces, args.per_namespace)
    print(f"phases at the end of part 1: {r['phases']}; state stored in {r['seeded_s']:.0f}s", file=sys.stderr)
    n = r["processed"]
    rows = [
        [f"1. {n} promotions created through the webhook", f"{r['promotions_created_s']:.1f} s", ""],
        [f"1. + {n * 3:,} approvals created", f"{r['approvals_created_s']:.1f} s", ""],
        [f"1. time until all {n} Succeeded", f"{r['all_succeeded_s']:.1f} s", ""],
        [f"1. operator peak RSS ({n} processed)", f"{r['first_rss_kb'] / 1024:.0f} MB", "<= 150 MB"],
        [f"2. restart on {total:,} x 3: watches and webhooks up", f"{r['restart_ready_s']:.1f} s", ""],
        [f"2. resync on {total:,} x 3 (start -> new promotion handled)", f"{r['resync_s']:.1f} s", "<= 20 s"],
        ["2. resync CPU time of the operator (user + system)", f"{r['resync_cpu_s']:.1f} s", ""],
        [f"2. operator peak RSS holding {total:,} x 3", f"{r['second_rss_kb'] / 1024:.0f} MB", "<= 150 MB"],
        ["   RSS at the end of part 1 / of part 2 (after the listing)",
         f"{r['first_steady_kb'] / 1024:.0f} / {r['second_steady_kb'] / 1024:.0f} MB", ""],
    ]
    print(f"scale: {total:,} promotions x 3 approvals across {namespaces} namespaces ({n} processed end to end)")
    print(harness.table(rows, ["measure", "value", "target"]))


if __name__ == "__main__":
    main()
