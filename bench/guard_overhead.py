"""Benchmark: what Lockgate's image guard adds to every workload change in a guarded namespace.

Run: ``.venv/bin/python bench/guard_overhead.py`` (``--samples N``, 300 by default).

The operator runs as ``lockgate run`` in a subprocess against a fresh embedded API; the guard's
webhooks get the chart's default namespace selector (``lockgate.dev/environment`` exists). Admin
merge-patches a label of a Deployment (no image change, so the guard allows it) alternately in a
gated namespace, where the API server calls the guard, and in an unlabelled one, where it does not;
the clock runs from the request to its answer. The difference is the guard's cost per change, paid by
every ``kubectl apply``, scale or edit of a workload in a gated namespace and by each rollout of the
operator.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import harness

GUARDED, UNGUARDED = "guard-bench-gated", "guard-bench-outside"


async def patch_seconds(api: harness.Api, namespace: str, n: int) -> float:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
    body = {"metadata": {"labels": {"bench-sample": str(n)}}}
    start = time.perf_counter()
    await api.call("PATCH", path, body, content_type="application/merge-patch+json", attempts=1)
    return time.perf_counter() - start


async def measure(running: Any, samples: int, warmup: int = 30) -> dict[str, list[float]]:
    async with harness.Api(running) as api:
        await api.create(harness.production_policy())
        await api.create(harness.namespace_body(GUARDED))
        await api.create(harness.namespace_body(UNGUARDED, environment=None))
        await harness.guard_only_labelled_namespaces(api)
        for namespace in (GUARDED, UNGUARDED):
            await api.create(harness.deployment_body(namespace, "web"))
        times: dict[str, list[float]] = {GUARDED: [], UNGUARDED: []}
        for n in range(warmup + samples):
            for namespace in (GUARDED, UNGUARDED):
                elapsed = await patch_seconds(api, namespace, n)
                if n >= warmup:
                    times[namespace].append(elapsed)
            await asyncio.sleep(0.005)
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    with harness.workdir("lockgate-bench-guard-") as work, harness.cluster() as running:
        operator = harness.OperatorProcess(running, work).start()
        try:
            operator.wait_ready()
            times = asyncio.run(measure(running, args.samples))
        finally:
            operator.stop()
    g50, g99, _ = harness.summary_ms(times[GUARDED])
    u50, u99, _ = harness.summary_ms(times[UNGUARDED])
    print("workload change (merge patch of a Deployment, no image change), request -> answer (ms)")
    print(
        harness.table(
            [[str(args.samples), f"{g50:.2f}", f"{g99:.2f}", f"{u50:.2f}", f"{u99:.2f}", f"{g50 - u50:.2f}"]],
            ["samples", "guarded p50", "guarded p99", "unguarded p50", "unguarded p99", "guard's p50 cost"],
        )
    )


if __name__ == "__main__":
    main()
