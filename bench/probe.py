"""The latency probe: creates the deciding Approval and watches for the image, in a process of its own.

Run by ``bench/approval_latency.py`` as a subprocess, so that neither end of the clock shares an
interpreter (and its GIL) with the embedded API, which the benchmark runs in a thread of its own
process: a real API server is a process apart from its clients, and in the same interpreter every
request the API serves after storing the image would hold back the measuring watch.

Protocol, one JSON object per line. In, on stdin: ``{"path", "token", "body", "expect": [namespace,
name, image]}``. Out, on stdout: ``{"ready": true}`` once the watch streams, then for each command
``{"seconds": ...}`` (from the create's 201 to the first watch event of ``expect``'s Deployment showing
that image) or ``{"error": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from typing import Any

import aiohttp

WAIT_SECONDS = 30.0


def image_of(deployment: dict[str, Any], container: str = "web") -> str:
    for c in deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
        if c.get("name") == container:
            return str(c.get("image"))
    return ""


class ImageWatch:
    """A watch on every Deployment: when each first showed the image it is expected to show."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.waiting: dict[tuple[str, str], tuple[str, asyncio.Future[float]]] = {}
        self.streaming = asyncio.Event()

    def expect(self, namespace: str, name: str, image: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[(namespace, name)] = (image, future)
        return future

    async def run(self) -> None:
        version = ""
        while True:
            params = {"watch": "true", "allowWatchBookmarks": "true"}
            if version:
                params["resourceVersion"] = version
            async with self.session.get(
                "/apis/apps/v1/deployments", params=params, timeout=aiohttp.ClientTimeout(total=None)
            ) as stream:
                stream.raise_for_status()
                self.streaming.set()
                async for line in stream.content:
                    now = time.monotonic()
                    if not line.strip():
                        continue
                    obj = json.loads(line).get("object") or {}
                    meta = obj.get("metadata", {})
                    version = meta.get("resourceVersion") or version
                    wanted = self.waiting.get((str(meta.get("namespace")), str(meta.get("name"))))
                    if wanted and image_of(obj) == wanted[0] and not wanted[1].done():
                        wanted[1].set_result(now)


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def probe(url: str, admin_token: str, cafile: str) -> None:
    context = ssl.create_default_context(cafile=cafile)
    headers = {"Authorization": f"Bearer {admin_token}", "Accept": "application/json"}
    async with aiohttp.ClientSession(url, headers=headers, connector=aiohttp.TCPConnector(ssl=context)) as session:
        watch = ImageWatch(session)
        watching = asyncio.create_task(watch.run())
        await asyncio.wait_for(watch.streaming.wait(), WAIT_SECONDS)
        say({"ready": True})
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            command = json.loads(line)
            done = watch.expect(*command["expect"])
            async with session.post(
                command["path"],
                data=json.dumps(command["body"]),
                headers={"Authorization": f"Bearer {command['token']}", "Content-Type": "application/json"},
            ) as response:
                await response.read()
                t0 = time.monotonic()
            if response.status != 201:
                say({"error": f"create answered {response.status}"})
                continue
            try:
                say({"seconds": await asyncio.wait_for(done, WAIT_SECONDS) - t0})
            except TimeoutError:
                say({"error": f"no image change within {WAIT_SECONDS:.0f} s"})
        watching.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True, help="a token that may watch every Deployment")
    parser.add_argument("--cafile", required=True)
    args = parser.parse_args()
    asyncio.run(probe(args.url, args.token, args.cafile))


if __name__ == "__main__":
    main()
