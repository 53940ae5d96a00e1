"""The object store: current objects, a cluster-wide resourceVersion counter, the event log for watches."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from lockgate.devcluster import errors

GroupResource = tuple[str, str]  # (group, plural): storage is shared by all versions of a resource


@dataclasses.dataclass(frozen=True)
class Event:
    resource_version: int
    group_resource: GroupResource
    type: str  # ADDED, MODIFIED, DELETED
    object: dict[str, Any]


class Store:
    """In-memory objects with monotonic resourceVersions and a bounded, replayable event log."""

    def __init__(self, *, history: int = 20000, on_event: Callable[[Event], None] | None = None) -> None:
        # Per resource, as etcd keys are prefixed by it: a list never walks other kinds' objects.
        self._objects: dict[GroupResource, dict[tuple[str, str], dict[str, Any]]] = collections.defaultdict(dict)
        self._rv = 100
        self._events: collections.deque[Event] = collections.deque(maxlen=history)
        self._waiters: set[asyncio.Event] = set()
        self._on_event = on_event

    @property
    def resource_version(self) -> int:
        return self._rv

    def oldest_resource_version(self) -> int:
        return self._events[0].resource_version - 1 if len(self._events) == self._events.maxlen else 0

    def get(self, gr: GroupResource, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self._objects[gr].get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        gr: GroupResource,
        namespace: str | None = None,
        *,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Objects in key order (namespace, name); a page: those after ``after``, at most ``limit``."""
        items = []
        for key, obj in sorted(self._objects[gr].items()):
            if (namespace is not None and key[0] != namespace) or (after is not None and key <= after):
                continue
            if predicate is not None and not predicate(obj):
                continue
            items.append(copy.deepcopy(obj))
            if limit is not None and len(items) >= limit:
                break
        return items, self._rv

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._rv += 1
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        return obj

    def _emit(self, gr: GroupResource, type_: str, obj: dict[str, Any]) -> None:
        event = Event(self._rv, gr, type_, copy.deepcopy(obj))
        self._events.append(event)
        if self._on_event is not None:
            self._on_event(event)
        for waiter in self._waiters:
            waiter.set()

    def create(self, gr: GroupResource, namespace: str, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        key = (namespace, name)
        if key in self._objects[gr]:
            raise errors.already_exists(gr[1], gr[0], name)
        stored = self._stamp(obj)
        self._objects[gr][key] = stored
        self._emit(gr, "ADDED", stored)
        return copy.deepcopy(stored)

    def update(self, gr: GroupResource, namespace: str, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        key = (namespace, name)
        if key not in self._objects[gr]:
            raise errors.not_found(gr[1], gr[0], name)
        stored = self._stamp(obj)
        self._objects[gr][key] = stored
        self._emit(gr, "MODIFIED", stored)
        return copy.deepcopy(stored)

    def delete(
        self, gr: GroupResource, namespace: str, name: str, final: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Remove an object; ``final`` is its last state (e.g. with the last finalizer removed)."""
        key = (namespace, name)
        if key not in self._objects[gr]:
            raise errors.not_found(gr[1], gr[0], name)
        last = self._objects[gr].pop(key)
        stored = self._stamp(final if final is not None else last)
        self._emit(gr, "DELETED", stored)
        return copy.deepcopy(stored)

    async def watch(
        self,
        gr: GroupResource,
        *,
        since: int | None,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float | None,  # noqa: ASYNC109  (the watch timeoutSeconds, a server-side deadline)
        bookmark_every: float | None,
        bookmark: Callable[[int], dict[str, Any]],
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield watch events (``{"type", "object"}``) in resourceVersion order.

        ``since=None`` starts with synthetic ADDED events for the current objects (as for an unset or "0"
        resourceVersion); otherwise events after ``since`` are replayed, or 410 Gone if too old.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if since is None:
            items, last = self.list(gr)
            for obj in items:
                if predicate(obj):
                    yield {"type": "ADDED", "object": obj}
        else:
            if since < self.oldest_resource_version():
                raise errors.gone(f"too old resource version: {since} ({self.oldest_resource_version() + 1})")
            last = since
        next_bookmark = None if bookmark_every is None else time.monotonic() + bookmark_every
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            while True:
                waiter.clear()
                snapshot = self._rv
                pending = []
                for event in reversed(self._events):  # only the events since the last look, not the history
                    if event.resource_version <= last:
                        break
                    if event.group_resource == gr:
                        pending.append(event)
                pending.reverse()
                for event in pending:
                    last = event.resource_version
                    if predicate(event.object):
                        yield {"type": event.type, "object": copy.deepcopy(event.object)}
                last = max(last, snapshot)  # every event up to the snapshot was looked at
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return
                if next_bookmark is not None and now >= next_bookmark:
                    last = max(last, snapshot)
                    yield {"type": "BOOKMARK", "object": bookmark(last)}
                    next_bookmark = now + (bookmark_every or 0)
                wait = min(t for t in (deadline, next_bookmark, now + 30) if t is not None) - now
                if not pending:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(waiter.wait(), timeout=max(wait, 0.001))
        finally:
            self._waiters.discard(waiter)
