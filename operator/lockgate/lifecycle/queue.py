"""A keyed work queue: each key is handled by one worker at a time; touches while busy coalesce.

Timers schedule a key for later (the engine's next-look time); an earlier timer replaces a later one.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
logger = logging.getLogger(__name__)


class KeyedQueue(Generic[K]):
    def __init__(self, handle: Callable[[K], Awaitable[None]], *, workers: int = 8) -> None:
        self._handle = handle
        self._workers = workers
        self._ready: collections.deque[K] = collections.deque()
        self._queued: set[K] = set()
        self._busy: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._ready_count = asyncio.Semaphore(0)  # one per key in ``_ready``: a touch wakes one worker, not all
        self._tasks: list[asyncio.Task[None]] = []
        self.handled = 0
        self.active = asyncio.Event()  # cleared: keys queue up but nothing is handled (not the leader)
        self.active.set()

    def touch(self, key: K) -> None:
        """Handle ``key`` as soon as possible (once, however many touches arrive meanwhile)."""
        if key in self._busy:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)
            self._ready_count.release()

    def touch_at(self, key: K, when: datetime.datetime) -> None:
        """Handle ``key`` at ``when`` (UTC) unless an earlier timer is already set."""
        loop = asyncio.get_running_loop()
        delay = max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())
        due = loop.time() + delay
        current = self._timers.get(key)
        if current is not None:
            if current[0] <= due:
                return
            current[1].cancel()
        self._timers[key] = (due, loop.call_at(due, self._fire, key))

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.touch(key)

    def busy(self, key: K) -> bool:
        """Whether ``key`` is being handled right now."""
        return key in self._busy

    def idle(self) -> bool:
        return not self._ready and not self._busy

    async def _worker(self) -> None:
        while True:
            await self._ready_count.acquire()
            await self.active.wait()
            key = self._ready.popleft()
            self._queued.discard(key)
            self._busy.add(key)
            try:
                await self._handle(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("handling %s failed; retrying in 2s", key)
                self.touch_at(key, datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2))
            finally:
                self.handled += 1
                self._busy.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.touch(key)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(), name=f"lockgate-worker-{i}") for i in range(self._workers)]

    async def stop(self) -> None:
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
