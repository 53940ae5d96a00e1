"""The operator's probes, on one port: ``/healthz`` (alive: its event loop answers) and ``/readyz`` (ready to
answer admission reviews: its webhook server listens and its view holds every GatePolicy and Namespace).

Readiness keeps a starting replica out of the webhook Service until it can tell a gated namespace from
another. A TCP check of the webhook port let reviews reach it as soon as the port opened; the image
guard then held them (up to 5 s) and refused them with 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import aiohttp.web


class Probes:
    """Liveness and readiness; ``waits`` are the events readiness waits for, each with what it waits for
    (or a function that says it, with why it is taking long)."""

    def __init__(self, waits: Sequence[tuple[asyncio.Event, str | Callable[[], str]]]) -> None:
        self.waits = list(waits)

    def waiting_for(self) -> list[str]:
        """What this replica still waits for before it is ready (nothing: ready)."""
        return [what if isinstance(what, str) else what() for event, what in self.waits if not event.is_set()]

    async def healthz(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({"alive": True})

    async def readyz(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        waiting = self.waiting_for()
        if waiting:
            return aiohttp.web.json_response({"ready": False, "waitingFor": waiting}, status=503)
        return aiohttp.web.json_response({"ready": True})

    async def serve(self, host: str, port: int) -> aiohttp.web.AppRunner:
        """Listen on ``host``:``port`` (on this event loop) until the returned runner is cleaned up."""
        app = aiohttp.web.Application()
        app.add_routes([aiohttp.web.get("/healthz", self.healthz), aiohttp.web.get("/readyz", self.readyz)])
        runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await aiohttp.web.TCPSite(runner, host, port).start()
        return runner
