"""The view's informer (``kube/informer.py``) against the embedded API, through faults a real API serves.

It lists in pages, then delivers every change once and in order; a dropped stream continues from the last
version without listing again; an expired version (410) lists again and reports what vanished meanwhile
(or was replaced under its name) as deleted; a refusing API is retried with backoff, not in a hot loop;
one object's handler error leaves the others' events flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import pathlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import aiohttp.web
import pytest

from lockgate.devcluster import runner, server
from lockgate.devcluster import testing as devtesting
from lockgate.kube import client as kclient
from lockgate.kube import config, informer

NS = "staging"
CONFIGMAPS = kclient.resource_path("", "v1", "configmaps")


def configmap(name: str, value: str = "1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, "data": {"v": value}}


class Copy:
    """What the operator's view does with the events: a local copy, and the events of ``NS`` in order."""

    def __init__(self, fail_on: str = "") -> None:
        self.objects: dict[informer.Key, dict[str, Any]] = {}
        self.events: list[tuple[str, str]] = []
        self.fail_on = fail_on

    def on_event(self, type_: str, obj: dict[str, Any]) -> None:
        key = informer.key_of(obj)
        if key[0] != NS:
            return
        if key[1] == self.fail_on:
            raise RuntimeError("a handler's own bug")
        self.events.append((type_, key[1]))
        if type_ == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj

    def names(self) -> set[str]:
        return {name for _, name in self.objects}


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
async def cluster() -> AsyncIterator[runner.RunningCluster]:
    with devtesting.running() as running:
        yield running
        running.cluster.fault_hook = None


@contextlib.asynccontextmanager
async def informing(
    cluster: runner.RunningCluster, copy: Copy, **kw: Any
) -> AsyncIterator[tuple[informer.Informer, kclient.Client]]:
    """An informer on ConfigMaps, and a client to change them."""
    async with (
        kclient.Client(config.load(cluster.kubeconfig, "admin")) as api,
        kclient.Client(config.load(cluster.kubeconfig, "admin")) as admin,
    ):
        watch = informer.Informer(api, CONFIGMAPS, copy.on_event, known=lambda: list(copy.objects), **kw)
        task = asyncio.create_task(watch.run())
        try:
            yield watch, admin
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Requests:
    """The informer's requests (its User-Agent says ``watch configmaps``), by verb; ``fault`` answers them."""

    def __init__(self) -> None:
        self.verbs: list[str] = []
        self.times: list[float] = []  # time.monotonic() of each
        self.fault: Callable[[str], server.Fault | None] = lambda verb: None

    def __call__(self, record: server.RequestRecord) -> server.Fault | None:
        if "(watch configmaps)" not in record.user_agent:
            return None
        self.verbs.append(record.verb)
        self.times.append(time.monotonic())
        return self.fault(record.verb)


def cutting_streams(cluster: runner.RunningCluster, *, after: float) -> Requests:
    """The informer's requests, each of its watch streams cut ``after`` seconds (without a clean end)."""
    requests = Requests()
    requests.fault = lambda verb: server.Fault(drop_watch_after=after) if verb == "watch" else None
    cluster.cluster.fault_hook = requests
    return requests


async def test_lists_in_pages_then_delivers_each_change_once_in_order(cluster: runner.RunningCluster) -> None:
    requests = Requests()
    cluster.cluster.fault_hook = requests
    copy = Copy()
    async with kclient.Client(config.load(cluster.kubeconfig, "admin")) as admin:
        for n in range(7):
            await admin.create(kclient.resource_path("", "v1", "configmaps", NS), configmap(f"c{n}"))
    async with informing(cluster, copy, page=3) as (watch, admin):
        await asyncio.wait_for(watch.synced.wait(), 10)
        assert copy.names() == {f"c{n}" for n in range(7)}
        assert requests.verbs.count("list") >= 3  # 7 objects (and the world's) in pages of 3
        listed = len(copy.events)

        await admin.create(kclient.resource_path("", "v1", "configmaps", NS), configmap("new"))
        await admin.patch(kclient.resource_path("", "v1", "configmaps", NS, "c1"), {"data": {"v": "2"}})
        await admin.request("DELETE", kclient.resource_path("", "v1", "configmaps", NS, "c2"))
        await until(lambda: len(copy.events) == listed + 3)
        assert copy.events[listed:] == [("ADDED", "new"), ("MODIFIED", "c1"), ("DELETED", "c2")]
        assert copy.objects[(NS, "c1")]["data"] == {"v": "2"}
        assert copy.names() == {"c0", "c1", "c3", "c4", "c5", "c6", "new"}


async def test_a_dropped_stream_continues_from_the_last_version_without_listing_again(
    cluster: runner.RunningCluster,
) -> None:
    requests = cutting_streams(cluster, after=0.2)
    copy = Copy()
    async with informing(cluster, copy) as (watch, admin):
        await asyncio.wait_for(watch.synced.wait(), 10)
        for n in range(8):
            await admin.create(kclient.resource_path("", "v1", "configmaps", NS), configmap(f"d{n}"))
            await asyncio.sleep(0.1)  # spread over several streams
        await until(lambda: len(copy.events) == 8)
        assert copy.events == [("ADDED", f"d{n}") for n in range(8)]  # each once, in order
        assert requests.verbs.count("watch") >= 3  # it was cut off, and came back, several times
        assert requests.verbs.count("list") == 1


async def test_an_expired_version_lists_again_and_reports_what_vanished_meanwhile(
    cluster: runner.RunningCluster,
) -> None:
    requests = Requests()
    cluster.cluster.fault_hook = requests
    copy = Copy()
    async with kclient.Client(config.load(cluster.kubeconfig, "admin")) as admin:
        for name in ("gone", "kept", "changed", "replaced"):
            await admin.create(kclient.resource_path("", "v1", "configmaps", NS), configmap(name))

    def held_uid(key: informer.Key) -> str | None:
        return str(copy.objects[key]["metadata"]["uid"]) if key in copy.objects else None

    async with informing(cluster, copy, server_seconds=1, held_uid=held_uid) as (watch, admin):
        await asyncio.wait_for(watch.synced.wait(), 10)
        # No stream from now on: the one open ends after its second, and every new one is refused.
        requests.fault = lambda verb: server.Fault(code=503, message="down") if verb == "watch" else None
        await asyncio.sleep(1.5)
        refused = requests.verbs.count("watch")
        await admin.request("DELETE", kclient.resource_path("", "v1", "configmaps", NS, "gone"))
        await admin.patch(kclient.resource_path("", "v1", "configmaps", NS, "changed"), {"data": {"v": "2"}})
        old_uid = held_uid((NS, "replaced"))
        await admin.request("DELETE", kclient.resource_path("", "v1", "configmaps", NS, "replaced"))
        await admin.create(kclient.resource_path("", "v1", "configmaps", NS), configmap("replaced", "new"))
        assert copy.names() == {"gone", "kept", "changed", "replaced"}  # nothing told it yet
        listed = len(copy.events)

        requests.fault = lambda verb: (
            server.Fault(code=410, reason="Expired", message="too old") if verb == "watch" else None
        )
        await until(lambda: "gone" not in copy.names(), within=15)
        assert requests.verbs.count("watch") > refused
        assert ("DELETED", "gone") in copy.events
        assert copy.objects[(NS, "changed")]["data"] == {"v": "2"}
        assert copy.names() == {"kept", "changed", "replaced"}
        replaced = [event for event in copy.events[listed:] if event[1] == "replaced"]
        assert replaced == [("DELETED", "replaced"), ("ADDED", "replaced")]  # the one held went, a new one came
        assert held_uid((NS, "replaced")) != old_uid

        requests.fault = lambda verb: None  # the API serves watches again: changes flow again
        await admin.create(kclient.resource_path("", "v1", "configmaps", NS), configmap("after"))
        await until(lambda: "after" in copy.names(), within=15)


async def test_an_object_larger_than_a_stream_buffer_arrives_whole(cluster: runner.RunningCluster) -> None:
    copy = Copy()
    big = "x" * 300_000  # a watch event of ~300 KB in one line: large annotations or managed fields
    async with informing(cluster, copy) as (watch, admin):
        await asyncio.wait_for(watch.synced.wait(), 10)
        await admin.create(kclient.resource_path("", "v1", "configmaps", NS), configmap("big", big))
        await admin.create(kclient.resource_path("", "v1", "configmaps", NS), configmap("next"))
        await until(lambda: "next" in copy.names())
        assert copy.objects[(NS, "big")]["data"] == {"v": big}


@pytest.mark.parametrize("slow", ["list", "watch"])
async def test_a_slowly_refused_request_backs_off_with_warnings(
    cluster: runner.RunningCluster, caplog: pytest.LogCaptureFixture, slow: str
) -> None:
    """However long the API took to refuse a listing or a watch, the next attempt waits, with a warning."""
    requests = Requests()
    cluster.cluster.fault_hook = requests
    refused_at: list[float] = []

    def refuse(verb: str) -> server.Fault | None:
        if verb != slow:
            return None
        refused_at.append(time.monotonic() + 1.2)
        return server.Fault(delay=1.2, code=403, reason="Forbidden", message="no")

    requests.fault = refuse
    async with informing(cluster, Copy()):
        await until(lambda: len(refused_at) >= 4, within=20)
    lost = [r for r in caplog.records if r.name == "lockgate.watch" and "lost" in r.getMessage()]
    assert len(lost) >= 2
    gaps = [later - earlier for earlier, later in itertools.pairwise(refused_at)]
    assert min(gaps) > 1.6  # the 1.2 s the API took, and 0.5 s or more of waiting


async def test_lines_of_a_stream_are_whole_however_they_are_cut() -> None:
    class Chunks:
        def __init__(self, *chunks: bytes) -> None:
            self.chunks = chunks

        async def iter_any(self) -> AsyncIterator[bytes]:
            for chunk in self.chunks:
                yield chunk

    async def lines(*chunks: bytes) -> list[bytes]:
        return [line async for line in kclient._lines(cast(Any, Chunks(*chunks)))]

    assert await lines(b'{"a": 1}\n{"b"', b": 2}\r\n\n", b'{"c": 3}') == [b'{"a": 1}', b'{"b": 2}\r', b'{"c": 3}']
    long = b"x" * 1_000_000
    assert await lines(*[long[i : i + 4096] for i in range(0, len(long), 4096)], b"\nz\n") == [long, b"z"]
    with pytest.raises(ValueError, match="longer than"):
        await lines(*[b"y" * 1_000_000] * 70)


async def test_a_refusing_api_is_retried_with_backoff_not_in_a_hot_loop(cluster: runner.RunningCluster) -> None:
    requests = Requests()
    requests.fault = lambda verb: server.Fault(code=403, reason="Forbidden", message="no")
    cluster.cluster.fault_hook = requests
    copy = Copy()
    states: list[bool] = []
    async with informing(cluster, copy, on_state=states.append) as (watch, _):
        await asyncio.sleep(3)
        assert not watch.synced.is_set()
        assert 2 <= len(requests.verbs) <= 6  # 0.5 + 1 + 2 s of backoff between the attempts
        assert states and not any(states)  # told it is down (the gauge lockgate_watch_up)

        requests.fault = lambda verb: None
        await asyncio.wait_for(watch.synced.wait(), 15)  # and it comes back by itself
        await until(lambda: states[-1])


async def test_it_says_whether_a_stream_is_open_each_time_one_ends_and_proves_healthy(
    cluster: runner.RunningCluster,
) -> None:
    """``on_current``: what a decision to deploy trusts the view by; ``on_state`` (the gauge) does not flap."""
    requests = cutting_streams(cluster, after=1.5)
    states: list[bool] = []
    current: list[bool] = []
    async with informing(cluster, Copy(), on_state=states.append, on_current=current.append):
        await until(lambda: current[-2:] == [True, False] and len(current) >= 3, within=15)
        assert current[:4] == [True, False, True, False][: len(current[:4])]  # up after 1 s, down at each cut
        assert states and all(states)  # each cut stream resumed at once: the watch was never down
        requests.fault = lambda verb: server.Fault(code=403, reason="Forbidden", message="no")
        await until(lambda: states[-1] is False, within=15)
        assert current[-1] is False


async def test_one_objects_handler_error_leaves_the_others_flowing(cluster: runner.RunningCluster) -> None:
    copy = Copy(fail_on="bad")
    async with informing(cluster, copy) as (watch, admin):
        await asyncio.wait_for(watch.synced.wait(), 10)
        for name in ("before", "bad", "after"):
            await admin.create(kclient.resource_path("", "v1", "configmaps", NS), configmap(name))
        await until(lambda: "after" in copy.names())
        assert copy.events == [("ADDED", "before"), ("ADDED", "after")]


EXPIRED = {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410, "message": "too old"}


class ScriptedApi:
    """A minimal API on 127.0.0.1 for ConfigMaps: each watch request is answered by the next of ``watches``:
    ``"expired"`` (200 and an ERROR event of code 410, as kube-apiserver does), ``"expired status"`` (the
    status 410, as some do) or ``"cut"`` (one event, then the connection drops: a restarting API server)."""

    def __init__(self, *watches: str) -> None:
        self.watches = list(watches)
        self.asked: list[tuple[str, float]] = []
        self.url = ""
        self._runner: aiohttp.web.AppRunner | None = None

    async def _serve(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        verb = "watch" if request.query.get("watch") == "true" else "list"
        self.asked.append((verb, time.monotonic()))
        item = configmap("only") | {"metadata": {"name": "only", "namespace": NS, "resourceVersion": "5"}}
        if verb == "list":
            return aiohttp.web.json_response(
                {"kind": "ConfigMapList", "metadata": {"resourceVersion": "5"}, "items": [item]}
            )
        answer = self.watches.pop(0) if self.watches else "expired"
        if answer == "expired status":
            return aiohttp.web.json_response(EXPIRED, status=410)
        response = aiohttp.web.StreamResponse()
        await response.prepare(request)
        if answer == "cut":
            await response.write(json.dumps({"type": "MODIFIED", "object": item}).encode() + b"\n")
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write(json.dumps({"type": "ERROR", "object": EXPIRED}).encode() + b"\n")
        return response

    def verbs(self) -> list[str]:
        return [verb for verb, _ in self.asked]

    async def __aenter__(self) -> ScriptedApi:
        app = aiohttp.web.Application()
        app.router.add_get(CONFIGMAPS, self._serve)
        self._runner = aiohttp.web.AppRunner(app)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def test_the_clients_watch_raises_an_expiry_sent_inside_the_stream() -> None:
    async with ScriptedApi("expired") as scripted, kclient.Client(config.Credentials(server=scripted.url)) as api:
        with pytest.raises(kclient.ApiError) as caught:
            async for _ in api.watch(CONFIGMAPS, "5"):
                pass
        assert caught.value.status == 410


@pytest.mark.parametrize(
    "watches",
    [("expired",), ("expired status",), ("cut", "expired")],
    ids=["in the stream", "as the status", "after a restart cut the stream"],
)
async def test_an_expired_version_lists_again_at_once_and_a_second_in_a_row_waits(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, watches: tuple[str, ...]
) -> None:
    """An expiry (whichever way the API says it, and also right after the stream was cut, as when the API
    server restarts) lists again at once, without a warning; only a second expiry in a row waits."""
    monkeypatch.setattr(informer, "RETRY_SECONDS", (3.0,))
    copy = Copy()
    async with ScriptedApi(*watches) as scripted, kclient.Client(config.Credentials(server=scripted.url)) as api:
        watch = informer.Informer(api, CONFIGMAPS, copy.on_event, known=lambda: list(copy.objects))
        task = asyncio.create_task(watch.run())
        try:
            await until(lambda: scripted.verbs().count("list") >= 3, within=15)
            expected = ["list", *(["watch"] if "cut" in watches else []), "watch", "list", "watch", "list"]
            assert scripted.verbs()[: len(expected)] == expected
            times = [at for _, at in scripted.asked]
            first_relist, second_relist = len(expected) - 3, len(expected) - 1
            assert times[first_relist] - times[first_relist - 1] < 2.0  # the first expiry: at once
            assert times[second_relist] - times[second_relist - 1] >= 3.0  # the second in a row: after a wait
            warnings = [
                r.getMessage() for r in caplog.records if r.name == "lockgate.watch" and r.levelname == "WARNING"
            ]
            assert warnings and all("410" in w for w in warnings)
            assert len(warnings) <= scripted.verbs().count("watch") - 1 - ("cut" in watches)  # not the first's
            assert copy.names() == {"only"}
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _keepalive_timers(port: int) -> list[str]:
    """The timer ("tr") of each established client connection to ``port`` on 127.0.0.1 (02: keepalive)."""
    timers = []
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, timer = fields[2], fields[3], fields[5].split(":")[0]
        if state == "01" and remote == f"0100007F:{port:04X}":
            timers.append(timer)
    return timers


@pytest.mark.skipif(not pathlib.Path("/proc/net/tcp").exists(), reason="reads Linux's table of TCP connections")
async def test_a_watch_connection_keeps_tcp_keepalive_so_a_silently_dead_one_fails(
    cluster: runner.RunningCluster,
) -> None:
    """A node, NAT or load balancer that drops the connection without a reset would otherwise leave the stream
    looking open (and the view current) until its deadline; with keepalive the kernel probes and fails it."""
    port = int(cluster.url.rsplit(":", 1)[1])
    opened = asyncio.Event()
    async with kclient.Client(config.load(cluster.kubeconfig, "admin")) as api:
        stream = api.watch(CONFIGMAPS, "", server_seconds=30, opened=opened.set)

        async def drain() -> None:
            async for _ in stream:
                pass

        task = asyncio.create_task(drain())
        try:
            await asyncio.wait_for(opened.wait(), 10)
            assert _keepalive_timers(port) == ["02"]  # the watch's one connection, its keepalive timer running
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_after_a_handler_error_the_kind_is_not_current_until_it_is_listed_again(
    cluster: runner.RunningCluster,
) -> None:
    """The caller lacks the change its handler failed on: a decision must not trust the view of that kind (it
    reads afresh) until a listing has been delivered whole, taken even while the kind is quiet; a handler that
    keeps failing keeps it so, listing again less and less often."""
    requests = Requests()
    cluster.cluster.fault_hook = requests
    cluster.cluster.bookmark_interval = 60.0  # no bookmark ends a stream: only the listing that is due does
    copy = Copy(fail_on="bad")
    current: list[bool] = []
    async with informing(cluster, copy, on_current=current.append) as (_, admin):
        await until(lambda: current == [True])
        await admin.create(kclient.resource_path("", "v1", "configmaps", NS), configmap("bad"))
        await until(lambda: current == [True, False])
        # No other event: the stream ends by itself after RESYNC_SECONDS[0] and the kind is listed again;
        # "bad" fails again there, so the next listing waits RESYNC_SECONDS[1] from the end of this one.
        await until(lambda: requests.verbs.count("list") == 2, within=informer.RESYNC_SECONDS[0] + 5)
        await asyncio.sleep(informer.QUICK_END_SECONDS + 0.5)
        assert current == [True, False] and "bad" not in copy.names()
        assert requests.verbs.count("list") == 2

        copy.fail_on = ""  # the handler copes now
        await until(lambda: current[-1] is True, within=informer.RESYNC_SECONDS[1] + 5)
        assert requests.verbs.count("list") == 3 and current == [True, False, True]
        assert "bad" in copy.names()


async def test_the_next_listing_after_a_handler_error_waits_from_the_end_of_the_last_one(
    cluster: runner.RunningCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kind whose listing takes longer than the wait is not listed back to back while an object keeps failing."""
    monkeypatch.setattr(informer, "RESYNC_SECONDS", (1.0,))
    async with kclient.Client(config.load(cluster.kubeconfig, "admin")) as admin:
        for name in ("a-bad", "b", "c", "d"):
            await admin.create(kclient.resource_path("", "v1", "configmaps", NS), configmap(name))
    requests = Requests()
    requests.fault = lambda verb: server.Fault(delay=0.4) if verb == "list" else None  # each page: 0.4 s
    cluster.cluster.fault_hook = requests
    async with informing(cluster, Copy(fail_on="a-bad"), page=1):  # "a-bad" fails on the first page of each
        await until(lambda: requests.verbs.count("watch") >= 3, within=30)
    listings: list[tuple[int, int]] = []  # the first and the last page request of each listing
    for i, verb in enumerate(requests.verbs):
        if verb == "list" and listings and listings[-1][1] == i - 1:
            listings[-1] = (listings[-1][0], i)
        elif verb == "list":
            listings.append((i, i))
    assert len(listings) >= 3 and all(last > first for first, last in listings)  # pages: longer than the wait
    for (_, last), (first, _) in itertools.pairwise(listings):
        assert requests.times[first] - requests.times[last] >= 1.0  # the last page's 0.4 s, then the 1 s wait
