"""A small asynchronous Kubernetes API client: one session, retries with deadlines, Status errors.

Every call may name what it does for (``agent``): the User-Agent then names the promotion,
so the cluster's own audit log ties each write to the approval behind it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import ssl
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp

from lockgate.kube import config

logger = logging.getLogger(__name__)

BASE_AGENT = "lockgate/0.1.0"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
RETRIABLE = frozenset({429, 500, 502, 503, 504})
MAX_LINE = 64 * 1024 * 1024  # a watch event, at most (an object is at most ~1.5 MB in etcd)
WATCH_CONNECT_SECONDS = 10.0
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL = 30, 10  # seconds: a silently dead watch connection fails within ~1 min


class ApiError(Exception):
    """The API answered with a Status failure."""

    def __init__(self, status: int, reason: str, message: str, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = dict(body or {})


class ApiUnavailable(Exception):
    """The API could not be reached within the call's deadline."""


CONNECTIONS = 16


def _ssl_context(creds: config.Credentials) -> ssl.SSLContext | bool:
    if not creds.server.startswith("https"):
        return False
    if creds.insecure:
        return False
    ctx = ssl.create_default_context()
    if creds.ca_data:
        ctx.load_verify_locations(cadata=creds.ca_data.decode())
    if creds.client_cert_data and creds.client_key_data:
        with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
            cert.write(creds.client_cert_data)
            cert.flush()
            key.write(creds.client_key_data)
            key.flush()
            ctx.load_cert_chain(cert.name, key.name)
    return ctx


class Client:
    """Talks to one API server with one identity. Use as an async context manager."""

    def __init__(
        self, creds: config.Credentials, *, timeout: float = 10.0, attempts: int = 6, user_agent: str = BASE_AGENT
    ) -> None:
        self.creds = creds
        self.user_agent = user_agent
        self.timeout = timeout
        self.attempts = attempts
        self._session: aiohttp.ClientSession | None = None
        self._streams: aiohttp.ClientSession | None = None  # watches: never queued behind requests
        self.calls = 0

    async def __aenter__(self) -> Client:
        await self.open()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is None:
            headers = {"Accept": "application/json"}
            if self.creds.token:
                headers["Authorization"] = f"Bearer {self.creds.token}"
            ssl_context = _ssl_context(self.creds)
            # Each TLS connection holds a 256 KB read buffer (asyncio's SSLProtocol): 64 kept-alive
            # connections were 17 MB of the operator's memory. Requests beyond the limit wait for a
            # free connection. Watch streams have their own pool: a stream reopening (every minute)
            # never waits behind a burst of requests (the RBAC watch counts as open meanwhile).
            connector = aiohttp.TCPConnector(ssl=ssl_context, limit=CONNECTIONS)
            self._session = aiohttp.ClientSession(self.creds.server, headers=headers, connector=connector)
            streams = aiohttp.TCPConnector(ssl=ssl_context, limit=0, socket_factory=watch_socket)
            self._streams = aiohttp.ClientSession(self.creds.server, headers=headers, connector=streams)

    async def close(self) -> None:
        sessions = [session for session in (self._streams, self._session) if session is not None]
        self._streams = self._session = None
        await asyncio.gather(*(session.close() for session in sessions))  # together: one await point

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        agent: str | None = None,
    ) -> dict[str, Any]:
        """One API call with retries on 429/5xx and connection errors, within ``attempts``."""
        await self.open()
        assert self._session is not None
        headers = {"User-Agent": f"{self.user_agent} ({agent})" if agent else self.user_agent}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = content_type
        delay = 0.05
        for attempt in range(1, self.attempts + 1):
            self.calls += 1
            try:
                async with self._session.request(
                    method,
                    path,
                    data=data,
                    params=params,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as response:
                    text = await response.text()
                    payload: dict[str, Any] = json.loads(text) if text.strip().startswith("{") else {}
                    if response.status < 400:
                        return payload
                    if response.status in RETRIABLE and attempt < self.attempts:
                        retry_after = response.headers.get("Retry-After", "")
                        wait = float(retry_after) if retry_after.isdigit() else delay
                        logger.debug("retrying %s %s after %s: %s", method, path, wait, response.status)
                        await asyncio.sleep(min(wait, 5.0))
                        delay = min(delay * 2, 2.0) * (1 + random.random() / 4)
                        continue
                    raise ApiError(
                        response.status,
                        str(payload.get("reason") or response.reason),
                        str(payload.get("message") or text[:200]),
                        payload,
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt >= self.attempts:
                    raise ApiUnavailable(f"{method} {path}: {exc!r}") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise ApiUnavailable(f"{method} {path}: no attempts left")  # pragma: no cover

    async def get(self, path: str, **kw: Any) -> dict[str, Any]:
        return await self.request("GET", path, **kw)

    async def watch(
        self,
        path: str,
        resource_version: str,
        *,
        server_seconds: int = 60,
        field_selector: str = "",
        agent: str | None = None,
        opened: Callable[[], None] | None = None,
    ) -> AsyncGenerator[dict[str, Any]]:
        """Watch events (``{"type", "object"}``, bookmarks included) after ``resource_version``.

        The API server ends the stream after ``server_seconds``; a stream still open 30 s later (a dead
        connection), or one not connected within ``WATCH_CONNECT_SECONDS``, raises ``ApiUnavailable``, and an
        error answer or ERROR event raises ``ApiError``. ``opened()`` is called once the API accepted it.
        """
        await self.open()
        assert self._streams is not None
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(server_seconds),
        }
        if field_selector:
            params["fieldSelector"] = field_selector
        headers = {"User-Agent": f"{self.user_agent} ({agent})" if agent else self.user_agent}
        timeout = aiohttp.ClientTimeout(total=server_seconds + 30, sock_connect=WATCH_CONNECT_SECONDS)
        try:
            async with self._streams.get(path, params=params, headers=headers, timeout=timeout) as response:
                if response.status >= 400:
                    text = await response.text()
                    raise ApiError(response.status, str(response.reason), text[:200])
                if opened is not None:
                    opened()
                async for line in _lines(response.content):
                    event: dict[str, Any] = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        code = int(status.get("code") or 500)
                        raise ApiError(code, str(status.get("reason")), str(status.get("message")), status)
                    yield event
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiUnavailable(f"watch {path}: {exc!r}") from None

    async def get_or_none(self, path: str, **kw: Any) -> dict[str, Any] | None:
        try:
            return await self.request("GET", path, **kw)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create(self, path: str, body: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
        return await self.request("POST", path, body=body, **kw)

    async def patch(self, path: str, body: Any, *, content_type: str = MERGE_PATCH, **kw: Any) -> dict[str, Any]:
        return await self.request("PATCH", path, body=body, content_type=content_type, **kw)


def watch_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """A watch stream's socket, with TCP keepalive: a connection that died silently (a node, NAT or load balancer
    that dropped it without a reset) fails after ~``KEEPALIVE_IDLE`` + 3 x ``KEEPALIVE_INTERVAL`` seconds instead
    of looking open until the stream's deadline, so the informer resumes it (client-go pings HTTP/2 for this)."""
    family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
    sock = socket.socket(family=family, type=kind, proto=proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        probes = (("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL), ("TCP_KEEPCNT", 3))
        for option, value in probes:
            if hasattr(socket, option):  # Linux (and most others); elsewhere the system's defaults apply
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    except OSError as exc:  # a kernel that refuses an option: the stream still works, only without the probes
        logger.warning("watch connections without TCP keepalive: %s", exc)
    except BaseException:
        sock.close()
        raise
    return sock


async def _lines(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The stream's non-empty lines, however long up to ``MAX_LINE`` (aiohttp's own line iterator refuses one
    over 128 KiB: a watch event of an object with large annotations or managed fields)."""
    pieces: list[bytes] = []  # of the line not ended yet
    size = 0
    async for chunk in content.iter_any():
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            line = b"".join([*pieces, chunk[start:end]]) if pieces else chunk[start:end]
            pieces, size = [], 0
            if line.strip():
                yield line
            start = end + 1
        if start < len(chunk):
            pieces.append(chunk[start:])
            size += len(chunk) - start
            if size > MAX_LINE:
                raise ValueError(f"a watch event longer than {MAX_LINE} bytes")
    rest = b"".join(pieces)
    if rest.strip():
        yield rest


def resource_path(
    group: str,
    version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    sub: str = "",
) -> str:
    """The REST path of a resource, a namespaced collection, an object or a subresource."""
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    if name:
        base += f"/{name}"
    if sub:
        base += f"/{sub}"
    return base
