"""Keeping a local copy of one kind current: list it in pages, then watch from the list's version.

What client-go's reflector does, for the operator's view. Every listed or changed object goes to
``on_event(type, obj)`` (``ADDED`` for a listed one), in the order the API sends them. A stream's normal
end (after ``server_seconds``) or a cut connection continues from the last version seen, bookmarks
included. ``410 Gone`` (that version is too old) lists again, and every object the caller still holds
(``known()``) that the new list lacks is delivered as ``DELETED``, a tombstone carrying its namespace
and name only; so is one the list has under another uid (``held_uid``), before the new one. Repeated API
errors are retried with backoff, each with a warning. An error raised by ``on_event`` is logged and never
ends the watch of the other objects; but the caller then lacks that change, so the kind is not current
(``on_current(False)``) until a new listing has been delivered without one: the stream ends once
``RESYNC_SECONDS`` have passed (longer while the errors go on, counted from the end of the last listing)
and the kind is listed again.

Why not Kopf's watching: Kopf takes every event through its per-object machinery (a worker task,
memories, loggers, the handler's kwargs), made for handlers that keep state on the object; ours only
store the object in the view. After a restart that machinery was ~55-60 % of the CPU of listing
25,000 objects (``docs/performance.md``, eleventh round).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from lockgate.kube import client as kclient

logger = logging.getLogger("lockgate.watch")

Key = tuple[str, str]  # namespace ("" for a cluster-scoped object), name
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
# Objects per page of a listing: no response holds a whole kind. client-go asks 500; with 500 the operator
# held ~30 MB more after listing 25,000 objects than with 250 (bench/scale.py: 150 against 119 MB), and
# the listing took no longer.
PAGE = 250
YIELD_EVERY = 100  # objects delivered between two turns of the event loop (webhooks answer meanwhile)
QUICK_END_SECONDS = 1.0  # a stream that ends sooner, with no event, counts as a failure (no hot loop)
RESYNC_SECONDS = (1.0, 5.0, 30.0, 300.0)  # after a handler error: list again no sooner than this, then longer


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def tombstone(key: Key) -> dict[str, Any]:
    """What is delivered for an object that vanished while no stream was open."""
    namespace, name = key
    return {"metadata": {"namespace": namespace, "name": name} if namespace else {"name": name}}


class Informer:
    def __init__(
        self,
        api: kclient.Client,
        path: str,
        on_event: Callable[[str, dict[str, Any]], None],
        *,
        known: Callable[[], Iterable[Key]],
        held_uid: Callable[[Key], str | None] | None = None,
        on_state: Callable[[bool], None] | None = None,
        on_current: Callable[[bool], None] | None = None,
        field_selector: str = "",
        page: int = PAGE,
        server_seconds: int = 300,
    ) -> None:
        """``path``: the kind's collection (cluster-wide); ``known()``: the keys the caller holds of it;
        ``held_uid(key)``: the uid of the object it holds there, if it should hear of one replaced meanwhile
        (deleted and created again under its name while no stream was open: DELETED, then ADDED);
        ``on_state(up)``: told False when a failure makes it wait before trying again, True once a stream proves
        healthy (it delivered, or lasted ``QUICK_END_SECONDS``); ``on_current(streaming)``: True once a stream has
        lasted ``QUICK_END_SECONDS`` (what changed while none was open has arrived by then, as a rule), False
        whenever that stream ends (even when the next one opens at once, as every few minutes): while it is
        False, changes may have happened that the caller has not been told of yet."""
        self.api = api
        self.path = path
        self.on_event = on_event
        self.known = known
        self.held_uid = held_uid
        self.on_state = on_state or (lambda up: None)
        self.on_current = on_current or (lambda streaming: None)
        self.field_selector = field_selector
        self.page = page
        self.server_seconds = server_seconds
        self.synced = asyncio.Event()  # set once the first listing has been delivered whole
        self.version = ""  # the last resourceVersion seen; "" means: list first
        self.delivered = 0  # changes delivered by the current stream
        self.opened_at: float | None = None  # when the API accepted the current stream
        self._healthy_timer: asyncio.TimerHandle | None = None  # until the current stream lasted QUICK_END_SECONDS
        self._proved = False  # the current stream proved healthy (on_state told)
        self._current = False  # on_current last told True
        self._resync_at: float | None = None  # a handler failed: the caller lacks a change; list again from then
        self._resyncs = 0  # listings in a row that a handler error made necessary
        self._stream_deadline: asyncio.Timeout | None = None  # ends the open stream when a listing is due
        self.kind = path.rstrip("/").rsplit("/", 1)[-1]

    async def run(self) -> None:
        """List and watch until cancelled. The first failure after a healthy stream (accepted by the API, and
        then delivering or lasting ``QUICK_END_SECONDS``), or an expired version after none, is retried at once;
        the next ones, and every failed listing or refused watch, wait ``RETRY_SECONDS``, with a warning."""
        failures = waits = 0  # failures in a row; waits among them
        expired = False
        while True:
            self.opened_at, self.delivered, expired_before, expired = None, 0, expired, False
            try:
                if self._resync_due():
                    self.version = ""  # the caller lacks a change a handler failed on: what it holds is not the kind
                if not self.version:
                    await self._list()
                    self.synced.set()
                await self._watch()
                problem = ""
            except kclient.ApiError as exc:
                problem = str(exc)
                if exc.status == 410:  # that version is too old: list again
                    self.version, expired = "", True
            except (kclient.ApiUnavailable, ValueError) as exc:
                problem = str(exc)
            except Exception as exc:  # never a silent end of the watch: say what, and go on
                logger.exception("watch of %s failed", self.kind)
                problem = repr(exc)
            if not problem and self._resync_due():
                continue  # ended to list again after a handler error: not a failure of the watch
            healthy = self.opened_at is not None and (
                self.delivered > 0 or time.monotonic() - self.opened_at >= QUICK_END_SECONDS
            )
            if healthy:
                failures = waits = 0
                if not problem:
                    continue
            elif not problem:
                problem = "the watch ended at once"
            # Retried at once: the first failure after a healthy stream, and an expiry that follows none (an API
            # server restarted: the stream is cut, and the new one answers 410); a second in a row waits.
            if (not failures and self.opened_at is not None) or (expired and not expired_before):
                logger.info("watch of %s ended (%s); %s", self.kind, problem, "resuming" if self.version else "listing")
                failures += 1
                continue
            wait = RETRY_SECONDS[min(waits, len(RETRY_SECONDS) - 1)]
            failures, waits = failures + 1, waits + 1
            logger.warning("watch of %s lost (%s); retrying in %.1fs", self.kind, problem, wait)
            self.on_state(False)
            await asyncio.sleep(wait)

    def _opened(self) -> None:
        self.opened_at, self._proved = time.monotonic(), False
        self._healthy_timer = asyncio.get_running_loop().call_later(QUICK_END_SECONDS, self._lasted)

    def _up(self) -> None:
        """The stream proved healthy (it delivered, or lasted ``QUICK_END_SECONDS``): the kind is watched."""
        if not self._proved:
            self._proved = True
            self.on_state(True)

    def _lasted(self) -> None:
        """The stream lasted ``QUICK_END_SECONDS``: healthy, and what changed before it has arrived, as a rule."""
        self._healthy_timer = None
        self._up()
        if self._resync_at is None:  # else the caller lacks a change until the kind is listed again
            self._current = True
            self.on_current(True)

    async def _list(self) -> None:
        params = {"limit": str(self.page)}
        if self.field_selector:
            params["fieldSelector"] = self.field_selector
        listed: set[Key] = set()
        version = ""
        resyncing, self._resync_at = self._resync_at is not None, None
        while True:
            page = await self.api.get(self.path, params=dict(params), agent=f"watch {self.kind}")
            meta = page.get("metadata") or {}
            version = version or str(meta.get("resourceVersion") or "")
            kind, api_version = str(page.get("kind") or "").removesuffix("List"), page.get("apiVersion")
            for n, obj in enumerate(page.get("items") or [], start=1):
                if kind:  # list items may omit them (built-in kinds); watch events never do
                    obj.setdefault("kind", kind)
                if api_version:
                    obj.setdefault("apiVersion", api_version)
                key = key_of(obj)
                listed.add(key)
                if self.held_uid is not None:
                    held = self.held_uid(key)
                    if held and held != (obj.get("metadata") or {}).get("uid"):
                        self._deliver("DELETED", tombstone(key))
                self._deliver("ADDED", obj)
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            token = meta.get("continue")
            if not token:
                break
            params["continue"] = str(token)
            await asyncio.sleep(0)
        for key in sorted(set(self.known()) - listed):
            self._deliver("DELETED", tombstone(key))
        self.version = version
        if self._resync_at is not None:  # a handler failed during this listing: wait from its end, not from then
            self._resync_at = time.monotonic() + RESYNC_SECONDS[min(self._resyncs - 1, len(RESYNC_SECONDS) - 1)]
        else:
            self._resyncs = 0
            if resyncing:
                logger.info("watch of %s: listed again after a handler error; the view holds the kind", self.kind)

    async def _watch(self) -> None:
        """One stream from ``version``, counting the changes it delivers (``delivered``)."""
        stream = self.api.watch(
            self.path,
            self.version,
            server_seconds=self.server_seconds,
            field_selector=self.field_selector,
            agent=f"watch {self.kind}",
            opened=self._opened,
        )
        deadline = asyncio.timeout(None)
        try:
            async with deadline, contextlib.aclosing(stream):
                self._stream_deadline = deadline
                self._resync_when_due()  # a handler failed in the listing: not current until the next one
                try:
                    async for event in stream:
                        obj = event.get("object") or {}
                        if event.get("type") != "BOOKMARK":
                            self._deliver(str(event.get("type")), obj)
                            self.delivered += 1
                            self._up()
                        self.version = str((obj.get("metadata") or {}).get("resourceVersion") or self.version)
                finally:  # before the stream closes: the timer must not fire for a stream that has ended
                    if self._healthy_timer is not None:
                        self._healthy_timer.cancel()
                        self._healthy_timer = None
        except TimeoutError:
            if not deadline.expired():
                raise
            # the listing a handler error made due: ``run`` takes it now, a quiet stream waits for no event
        finally:
            self._stream_deadline = None
            if self._current:  # the stream ended: changes may go unseen until the next one
                self._current = False
                self.on_current(False)

    def _deliver(self, type_: str, obj: dict[str, Any]) -> None:
        try:
            self.on_event(type_, obj)
        except Exception:  # one object's trouble never ends the watch of all others
            logger.exception(
                "watch of %s: handling %s of %s/%s failed; the kind counts as not current until it is listed again",
                self.kind,
                type_,
                *key_of(obj),
            )
            if self._resync_at is None:
                wait = RESYNC_SECONDS[min(self._resyncs, len(RESYNC_SECONDS) - 1)]
                self._resync_at, self._resyncs = time.monotonic() + wait, self._resyncs + 1
                self._resync_when_due()
            if self._current:
                self._current = False
                self.on_current(False)

    def _resync_due(self) -> bool:
        """A handler failed and the listing that must follow is due."""
        return self._resync_at is not None and time.monotonic() >= self._resync_at

    def _resync_when_due(self) -> None:
        """End the open stream when the listing a handler error made necessary is due."""
        if self._stream_deadline is not None and self._resync_at is not None:
            loop = asyncio.get_running_loop()
            self._stream_deadline.reschedule(loop.time() + max(0.0, self._resync_at - time.monotonic()))
