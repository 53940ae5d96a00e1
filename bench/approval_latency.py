"""Benchmark: approval -> rollout latency of the operator against a floor with no gate logic.

Run: ``.venv/bin/python bench/approval_latency.py`` (``--quick`` for a smaller run).

For each N (live waiting Promotions spread over many namespaces, so the operator carries real state)
a fresh embedded API is started and the operator runs as ``lockgate run`` in a subprocess. Each
measured Promotion targets its own Deployment; bob's approval is counted first, then carol's (the
last required one) is created and the clock runs from its 201 to the moment a watch on Deployments
(as admin) shows the new image. The floor (``bench/floor.py``, also a subprocess) does the same for
Approvals in an ungated namespace: watch, count two approvers, patch. Operator and floor samples
alternate so both see the same load.

The floor's patch is judged by Lockgate's image guard like every workload change in a namespace the
guard is called for (``lockgate dev`` lets Kopf manage the webhook configuration, with no namespace
selector: every namespace); the guard answers ``NotGated``. ``--floor-unguarded`` gives the guard the
chart's default namespace selector (``lockgate.dev/environment`` exists) and leaves that label off the
floor's namespace: the floor then runs as in a cluster without Lockgate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any

import harness
from lockgate.devcluster import runner

LIVE_NS = "bench-live"
FLOOR_NS = "bench-floor"
NEW_IMAGE = f"registry.example/web:2.0@{harness.DIGEST}"
FLOOR_HASH = "sha256:" + "0" * 64


class Probe:
    """``bench/probe.py`` in a subprocess: creates each deciding Approval and times the image change."""

    def __init__(self, running: runner.RunningCluster, work: pathlib.Path) -> None:
        self.running = running
        self.cafile = work / "ca.pem"
        self.cafile.write_bytes(running.running.ca_pem)
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Probe:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(pathlib.Path(__file__).with_name("probe.py")),
            "--url",
            self.running.url,
            f"--token={self.running.users['admin'].token}",  # one argument: a token may begin with "-"
            "--cafile",
            str(self.cafile),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        await self._answer()  # {"ready": true}: its watch streams
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def _answer(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError("the latency probe exited")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"latency probe: {answer['error']}")
        return answer

    async def seconds(self, body: dict[str, Any], user: str, image: str) -> float:
        """Create ``body`` as ``user``; seconds from its 201 until the Deployment it names shows ``image``."""
        assert self.proc is not None and self.proc.stdin is not None
        meta = body["metadata"]
        command = {
            "path": harness.collection_path(body),
            "token": self.running.users[user].token,
            "body": body,
            "expect": [meta["namespace"], body["spec"]["promotion"], image],
        }
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()
        return float((await self._answer())["seconds"])


async def phases(api: harness.Api, namespace: str) -> dict[str, dict[str, Any]]:
    items = await api.list(f"{harness.GROUP_PATH}/namespaces/{namespace}/promotions")
    return {p["metadata"]["name"]: p.get("status") or {} for p in items}


async def settled_promotion(api: harness.Api, namespace: str, name: str) -> None:
    """Wait until the measured Promotion Succeeded: the operator is quiet before the next sample."""

    async def succeeded() -> bool:
        path = f"{harness.GROUP_PATH}/namespaces/{namespace}/promotions/{name}"
        return ((await api.call("GET", path)).get("status") or {}).get("phase") == "Succeeded"

    await harness.wait_until(succeeded, within=30, interval=0.02, what=f"promotion {name} Succeeded")


def timeline(running: runner.RunningCluster, since: int) -> list[str]:
    """The API requests from the last operator sample's approval to its Deployment patch."""
    records = running.cluster.requests[since:]
    starts = [
        i
        for i, r in enumerate(records)
        if r.verb == "create" and r.resource == "approvals" and r.namespace == LIVE_NS and r.user == "carol"
    ]
    if not starts:
        return []
    first = records[starts[-1]]
    lines = []
    for r in records[starts[-1] :]:
        if r.verb == "watch" or r.user == "admin":
            continue
        lines.append(
            f"{(r.time - first.time) * 1e3:7.1f} ms  {r.user.rsplit(':', 1)[-1]:18} {r.verb:6} "
            f"{r.resource}{'/' + r.subresource if r.subresource else ''} {r.name} -> {r.code}"
        )
        if r.verb == "patch" and r.resource == "deployments" and r.namespace == LIVE_NS:
            break
    return lines


def profile_measurement(operator: harness.OperatorProcess) -> subprocess.Popen[bytes] | None:
    """With LOCKGATE_BENCH_PROFILE_MEASURE=<file>: py-spy's raw stacks of the operator while measured
    (LOCKGATE_BENCH_PROFILE_RATE: samples per second, 500 by default)."""
    path = os.environ.get("LOCKGATE_BENCH_PROFILE_MEASURE")
    if not path:
        return None
    spy = pathlib.Path(sys.executable).parent / "py-spy"
    rate = os.environ.get("LOCKGATE_BENCH_PROFILE_RATE", "500")  # samples/s; >1,000 slows the operator visibly
    return subprocess.Popen([str(spy), "record", "--format", "raw", "-r", rate, "-o", path, "--pid", str(operator.pid)])


def start_floor(running: runner.RunningCluster, work: pathlib.Path) -> subprocess.Popen[bytes]:
    cafile = work / "ca.pem"
    cafile.write_bytes(running.running.ca_pem)
    return subprocess.Popen(
        [
            sys.executable,
            str(pathlib.Path(__file__).with_name("floor.py")),
            "--url",
            running.url,
            # one argument: a random token may begin with "-", which argparse would take for an option
            f"--token={running.users['lockgate-operator'].token}",
            "--cafile",
            str(cafile),
            "--namespace",
            FLOOR_NS,
        ]
    )


async def measure(
    running: runner.RunningCluster,
    operator: harness.OperatorProcess,
    fillers: int,
    measured: int,
    filler_namespaces: int,
    work: pathlib.Path,
    floor_unguarded: bool = False,
) -> dict[str, Any]:
    async with harness.Api(running, concurrency=32) as api:
        await api.create(harness.production_policy())
        await api.create(harness.namespace_body(LIVE_NS))
        await api.create(harness.namespace_body(FLOOR_NS, environment=None if floor_unguarded else "floor"))
        if floor_unguarded:
            await harness.guard_only_labelled_namespaces(api)
        fill_ns = [f"bench-fill-{i}" for i in range(filler_namespaces)]
        await api.gather(api.create(harness.namespace_body(ns)) for ns in fill_ns)
        await api.gather(
            api.create(harness.deployment_body(ns, f"{prefix}-{i}"))
            for ns, prefix in ((LIVE_NS, "m"), (FLOOR_NS, "f"))
            for i in range(measured)
        )
        # Each filler targets a Deployment of its own (a missing target would hold it Pending).
        await api.gather(
            api.create(harness.deployment_body(fill_ns[i % len(fill_ns)], f"filler-{i}")) for i in range(fillers)
        )
        started = time.monotonic()
        await api.gather(
            api.create(
                harness.promotion_body(
                    fill_ns[i % len(fill_ns)], f"filler-{i}", f"filler-{i}", f"registry.example/f:{i}"
                ),
                user="alice",
            )
            for i in range(fillers)
        )
        await api.gather(
            api.create(harness.promotion_body(LIVE_NS, f"m-{i}", f"m-{i}", NEW_IMAGE), user="alice")
            for i in range(measured)
        )
        created = time.monotonic() - started

        async def all_waiting() -> bool:
            seen = await phases(api, LIVE_NS)
            return sum(s.get("phase") == "AwaitingApproval" for s in seen.values()) == measured

        await harness.wait_until(all_waiting, within=300, interval=0.5, what="measured promotions waiting")
        await api.gather(
            api.create(harness.approval_body(LIVE_NS, f"m-{i}-bob", f"m-{i}"), user="bob") for i in range(measured)
        )
        floor_bob = []
        for i in range(measured):
            body = harness.approval_body(FLOOR_NS, f"f-{i}-bob", f"f-{i}", FLOOR_HASH)
            body["metadata"]["annotations"] = {"lockgate.dev/image": NEW_IMAGE}
            floor_bob.append(api.create(body, user="bob"))
        await api.gather(floor_bob)

        async def bob_counted() -> bool:
            seen = await phases(api, LIVE_NS)
            return sum(s.get("countedApprovals") == 1 for s in seen.values()) == measured

        await harness.wait_until(bob_counted, within=300, interval=0.5, what="bob's approvals counted")

        async def fillers_waiting() -> bool:
            n = 0
            for ns in fill_ns:
                n += sum(s.get("phase") == "AwaitingApproval" for s in (await phases(api, ns)).values())
            return n == fillers

        settled = await harness.wait_until(fillers_waiting, within=600, interval=1.0, what="filler promotions waiting")
        await asyncio.sleep(1.0)
        spy = profile_measurement(operator)
        gate: list[float] = []
        base: list[float] = []
        since = len(running.cluster.requests)
        async with Probe(running, work) as probe:
            await asyncio.sleep(0.5)
            for i in range(measured):
                await asyncio.sleep(0.05)
                body = harness.approval_body(LIVE_NS, f"m-{i}-carol", f"m-{i}")
                gate.append(await probe.seconds(body, "carol", NEW_IMAGE))
                # the rollout's own work (status, records, Events) stays out of the floor's sample
                await settled_promotion(api, LIVE_NS, f"m-{i}")
                await asyncio.sleep(0.05)
                body = harness.approval_body(FLOOR_NS, f"f-{i}-carol", f"f-{i}", FLOOR_HASH)
                body["metadata"]["annotations"] = {"lockgate.dev/image": NEW_IMAGE}
                base.append(await probe.seconds(body, "carol", NEW_IMAGE))
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        trace = timeline(running, since)
        op_requests = len(harness.operator_requests(running, since))
        return {
            "fillers": fillers,
            "measured": measured,
            "operator": gate,
            "floor": base,
            "create_s": created,
            "settle_s": settled,
            "rss_kb": operator.memory_kb(),
            "operator_requests": op_requests,
            "trace": trace,
        }


def run_one(fillers: int, measured: int, *, floor_unguarded: bool = False) -> dict[str, Any]:
    with harness.workdir("lockgate-bench-latency-") as work, harness.cluster() as running:
        namespaces = max(1, min(50, fillers // 20))
        operator = harness.OperatorProcess(running, work).start()
        floor = start_floor(running, work)
        try:
            ready = operator.wait_ready()
            result = asyncio.run(measure(running, operator, fillers, measured, namespaces, work, floor_unguarded))
        finally:
            floor.terminate()
            floor.wait(10)
            operator.stop()
        return {**result, "ready_s": ready}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 10 and 200, 20 samples")
    parser.add_argument("--n", type=int, action="append", help="live promotions (repeatable)")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--trace", action="store_true", help="print the requests of the last operator sample")
    parser.add_argument(
        "--floor-unguarded",
        action="store_true",
        help="the floor's namespace is outside the image guard's namespace selector (a cluster without Lockgate)",
    )
    args = parser.parse_args()
    ns = args.n or ([10, 200] if args.quick else [10, 1000])
    samples = args.samples or (20 if args.quick else 50)
    rows = []
    for n in ns:
        result = run_one(n, samples, floor_unguarded=args.floor_unguarded)
        op50, op99, _ = harness.summary_ms(result["operator"])
        fl50, fl99, _ = harness.summary_ms(result["floor"])
        rows.append(
            [
                str(n),
                str(samples),
                f"{op50:.1f}",
                f"{op99:.1f}",
                f"{fl50:.1f}",
                f"{fl99:.1f}",
                f"{op50 / fl50:.2f}x",
                f"{op99 / fl99:.2f}x",
                f"{result['rss_kb'].get('VmHWM', 0) / 1024:.0f}",
            ]
        )
        print(
            f"N={n}: setup created in {result['create_s']:.1f}s, settled in {result['settle_s']:.1f}s; "
            f"operator ready in {result['ready_s']:.1f}s",
            file=sys.stderr,
        )
        if args.trace:
            print("\n".join(result["trace"]), file=sys.stderr)
    print("approval -> rollout latency (ms), last required Approval's 201 -> Deployment image change seen by a watch")
    print(
        harness.table(
            rows,
            [
                "N live",
                "samples",
                "gate p50",
                "gate p99",
                "floor p50",
                "floor p99",
                "p50 ratio",
                "p99 ratio",
                "op peak RSS MB",
            ],
        )
    )
    print("targets: p50 <= 1.5x floor, p99 <= 2x floor, p50 <= 150 ms at N = 1,000")


if __name__ == "__main__":
    main()
