"""The reconciler's work queue: one worker per key at a time, and no touch is lost."""

from __future__ import annotations

import asyncio
import collections

import hypothesis
from hypothesis import strategies

from lockgate.lifecycle import queue


async def _run(touches: list[tuple[str, int]], workers: int, gate_closed: bool) -> None:
    """Touch keys (each after a pause of ``n`` loop turns); handlers yield a few times while they work."""
    busy: set[str] = set()
    handled: collections.Counter[str] = collections.Counter()
    last_touch: dict[str, int] = {}
    handled_after: dict[str, int] = {}  # when the key's latest pass began (the touch clock)
    clock = 0

    async def handle(key: str) -> None:
        nonlocal clock
        assert key not in busy, f"{key} handled by two workers at once"
        busy.add(key)
        started = clock
        for _ in range(len(key)):  # a handler that awaits (the API, the audit trail)
            await asyncio.sleep(0)
        busy.discard(key)
        handled[key] += 1
        handled_after[key] = started

    work: queue.KeyedQueue[str] = queue.KeyedQueue(handle, workers=workers)
    if gate_closed:
        work.active.clear()  # not the leader yet: touches queue up
    work.start()
    try:
        for key, pause in touches:
            clock += 1
            last_touch[key] = clock
            work.touch(key)
            for _ in range(pause):
                await asyncio.sleep(0)
        work.active.set()
        for _ in range(10_000):
            if work.idle():
                break
            await asyncio.sleep(0)
        assert work.idle(), "the queue never drained"
    finally:
        await work.stop()
    for key, touched_at in last_touch.items():
        assert handled_after.get(key, -1) >= touched_at, f"{key}: no pass began after its last touch"
    assert sum(handled.values()) <= len(touches)  # touches coalesce: never more passes than touches


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(
    touches=strategies.lists(
        strategies.tuples(strategies.sampled_from(["a", "bb", "ccc", "dddd"]), strategies.integers(0, 5)),
        min_size=1,
        max_size=40,
    ),
    workers=strategies.integers(1, 8),
    gate_closed=strategies.booleans(),
)
def test_every_touched_key_is_handled_by_one_worker_at_a_time(
    touches: list[tuple[str, int]], workers: int, gate_closed: bool
) -> None:
    asyncio.run(_run(touches, workers, gate_closed))
