"""Readiness: a replica joins the webhook Service only once it can judge a review (its webhook server
listens and its view holds every GatePolicy and Namespace); before, the image guard would hold a review
and refuse it with 503. Liveness answers while the event loop does."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

from lockgate import probes
from lockgate.handlers import background, testing


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_readiness_names_what_it_waits_for_until_everything_is_loaded() -> None:
    async def scenario() -> list[tuple[int, dict[str, Any]]]:
        view, webhooks = asyncio.Event(), asyncio.Event()
        port = _free_port()
        runner = await probes.Probes([(view, "the view"), (webhooks, "the webhook server")]).serve("127.0.0.1", port)
        seen = []
        try:
            for event in (None, webhooks, view):
                if event is not None:
                    event.set()
                seen.append(await asyncio.to_thread(_get, port, "/readyz"))
            seen.append(await asyncio.to_thread(_get, port, "/healthz"))
        finally:
            await runner.cleanup()
        return seen

    assert asyncio.run(scenario()) == [
        (503, {"ready": False, "waitingFor": ["the view", "the webhook server"]}),
        (503, {"ready": False, "waitingFor": ["the view"]}),
        (200, {"ready": True}),
        (200, {"alive": True}),
    ]


def test_a_running_operator_becomes_ready_and_stays_alive() -> None:
    port = _free_port()
    settings = background.local_settings(health_port=port, health_host="127.0.0.1")
    with testing.stack(settings=settings):
        deadline = time.monotonic() + 15
        while (answer := _get(port, "/readyz"))[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert answer == (200, {"ready": True})
        assert _get(port, "/healthz") == (200, {"alive": True})


def test_readiness_says_why_the_view_cannot_load() -> None:
    """An operator whose role may not list GatePolicies never loads its view: not ready, saying why, until
    the API answers (then ready)."""
    from lockgate.kube import client as kclient
    from lockgate.lifecycle import reconciler, view

    class Api:
        def __init__(self) -> None:
            self.refused = asyncio.Event()

        async def get(self, path: str, params: Any = None) -> dict[str, Any]:
            if not self.refused.is_set():
                self.refused.set()
                raise kclient.ApiError(403, "Forbidden", "cannot list resource gatepolicies")
            return {"items": []}

    async def scenario() -> list[list[str]]:
        api = Api()
        engine = reconciler.Reconciler(api, view.ClusterView(), None, None, None)  # type: ignore[arg-type]
        ready = probes.Probes([(engine.primed, engine.priming)])
        seen = [ready.waiting_for()]
        priming = asyncio.create_task(engine._prime())
        await api.refused.wait()  # the priming task told why before it went to sleep for its retry
        seen.append(ready.waiting_for())
        await asyncio.wait_for(priming, 5)
        return [*seen, ready.waiting_for()]

    assert asyncio.run(scenario()) == [
        ["the view of GatePolicies and Namespaces (loading)"],
        [
            "the view of GatePolicies and Namespaces (cannot list them: 403 Forbidden: cannot list resource "
            "gatepolicies)"
        ],
        [],
    ]
