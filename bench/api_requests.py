"""Benchmark: API requests the operator makes for one full Promotion lifecycle, against the minimum.

Run: ``.venv/bin/python bench/api_requests.py`` (``--quick``: fewer promotions).

The operator runs as ``lockgate run`` (its ServiceAccount) against the embedded API, whose request
log names the user of every request. For each promotion: alice creates it, bob approves (counted),
carol approves (the last required one), the Deployment rolls out, the Promotion ends Succeeded.
Lifecycles run one after another (``--sequential``, the default) so every request is attributable;
watches opened at start-up are not counted. The minimum is derived in ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
from typing import Any

import harness
from lockgate.devcluster import runner

NS = "bench-requests"
IMAGE = f"registry.example/web:2.0@{harness.DIGEST}"

# Per promotion with two approvers (technical + security), no source workload, no HTTP checks.
MINIMUM = {
    "patch promotions/status": 4,  # AwaitingApproval, bob counted, Verifying, Succeeded
    "patch approvals/status": 2,  # each approval's verdict (counted / reason)
    # one per approver when their approval arrives; the decisive moment reuses them, because any RBAC
    # change reaches the operator's RBAC watch and forgets them (a revoked approver never opens the gate)
    "create subjectaccessreviews": 2,
    # no workload GET: the previous image comes from the watched view, and the patch is conditional on
    # that resourceVersion (a conflict costs a GET then, only then)
    "patch deployments": 1,  # the image change
    "create events": 3,  # one per phase transition: AwaitingApproval, Verifying, Succeeded
}


def label(record: Any) -> str:
    resource = record.resource + (f"/{record.subresource}" if record.subresource else "")
    return f"{record.verb} {resource}"


async def lifecycle(api: harness.Api, name: str, within: float = 60) -> None:
    path = f"{harness.GROUP_PATH}/namespaces/{NS}/promotions/{name}"

    async def status() -> dict[str, Any]:
        found: dict[str, Any] = (await api.call("GET", path)).get("status") or {}
        return found

    await api.create(harness.promotion_body(NS, name, name, IMAGE, timeout="60s"), user="alice")

    async def waiting() -> bool:
        return (await status()).get("phase") == "AwaitingApproval"

    await harness.wait_until(waiting, within=within, interval=0.05, what=f"{name} AwaitingApproval")
    await api.create(harness.approval_body(NS, f"{name}-bob", name), user="bob")

    async def counted() -> bool:
        return (await status()).get("countedApprovals") == 1

    await harness.wait_until(counted, within=within, interval=0.05, what=f"{name}: bob counted")
    await api.create(harness.approval_body(NS, f"{name}-carol", name), user="carol")

    async def done() -> bool:
        return (await status()).get("phase") in ("Succeeded", "Failed", "RolledBack")

    await harness.wait_until(done, within=within, interval=0.05, what=f"{name} finished")
    phase = (await status()).get("phase")
    if phase != "Succeeded":
        raise RuntimeError(f"{name} ended {phase}")


async def measure(running: runner.RunningCluster, count: int, work: Any) -> tuple[collections.Counter[str], int]:
    operator = harness.OperatorProcess(running, work).start()
    operator.wait_ready()
    try:
        async with harness.Api(running) as api:
            await api.create(harness.production_policy())
            await api.create(harness.namespace_body(NS))
            await api.gather(api.create(harness.deployment_body(NS, f"web-{i}")) for i in range(count))
            await asyncio.sleep(1.0)
            since = len(running.cluster.requests)
            for i in range(count):
                await lifecycle(api, f"web-{i}")
            await asyncio.sleep(2.0)  # trailing writes of the last lifecycle
            counts: collections.Counter[str] = collections.Counter(
                label(r) for r in harness.operator_requests(running, since) if r.verb != "watch"
            )
            return counts, count
    finally:
        operator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 promotions instead of 10")
    parser.add_argument("--count", type=int, default=None)
    args = parser.parse_args()
    count = args.count or (3 if args.quick else 10)
    with harness.workdir("lockgate-bench-requests-") as work, harness.cluster(workload_delay=0.05) as running:
        counts, n = asyncio.run(measure(running, count, work))
    keys = sorted(set(counts) | set(MINIMUM))
    rows = [[k, f"{counts.get(k, 0) / n:.2f}", str(MINIMUM.get(k, 0))] for k in keys]
    total = sum(counts.values()) / n
    minimum = sum(MINIMUM.values())
    rows.append(["total", f"{total:.2f}", str(minimum)])
    print(f"operator API requests per promotion (mean of {n} sequential lifecycles, watches excluded)")
    print(harness.table(rows, ["request", "measured", "minimum"]))
    print(f"ratio {total / minimum:.2f}x the minimum (target <= 1.25x)")
    if total / minimum > 1.25:
        print("target NOT met", file=sys.stderr)


if __name__ == "__main__":
    main()
