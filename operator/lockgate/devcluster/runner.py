"""Running a DevCluster: as an async context manager, or in a background thread for tests and sync callers.

The embedded API (kmock, the schemas, TLS) is imported when one is served, not with this module: the
``lockgate`` command imports it for ``lockgate dev``, and ``lockgate run`` (the operator) must not pay for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import tempfile
import threading
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lockgate.devcluster import server, world

HOST = "127.0.0.1"


@dataclasses.dataclass
class Running:
    """A serving cluster: its URL, kubeconfig, users (with tokens) and the DevCluster itself."""

    cluster: server.DevCluster
    url: str
    port: int
    kubeconfig: pathlib.Path
    users: dict[str, world.User]
    ca_pem: bytes = b""  # the self-signed certificate the server presents (its own CA)
    port_fallback: bool = False  # the requested port was taken and a free one was used instead


def default_crd_dir() -> pathlib.Path | None:
    """The repository's ``crds/`` (package-relative), else ``./crds`` in the working directory."""
    here = pathlib.Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "crds"
        if candidate.is_dir() and (parent / "pyproject.toml").exists():
            return candidate
    cwd = pathlib.Path.cwd() / "crds"
    return cwd if cwd.is_dir() else None


@contextlib.asynccontextmanager
async def serve(
    *,
    crd_dir: str | pathlib.Path | Sequence[str | pathlib.Path] | None = None,
    seed: bool = True,
    port: int = 0,
    kubeconfig_path: str | pathlib.Path | None = None,
    workload_delay: float = 0.3,
    bookmark_interval: float = 5.0,
) -> AsyncIterator[Running]:
    """Serve a DevCluster on 127.0.0.1 for the duration of the context."""
    import kmock

    from lockgate.devcluster import server, tls, world

    cluster = server.DevCluster(workload_delay=workload_delay, bookmark_interval=bookmark_interval)
    world.base(cluster)
    crd_dirs = [crd_dir] if isinstance(crd_dir, str | pathlib.Path) else list(crd_dir or [])
    for directory in crd_dirs:
        world.load_crds(cluster, directory)
    users = world.seed(cluster) if seed else world.seed_users_only(cluster)
    fallback = False
    certificate = tls.make_certificate()
    server_cls = tls.server_class(certificate.server_context())
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(cluster)
        try:
            http = await stack.enter_async_context(
                kmock.Server(cluster, host=HOST, port=port or None, server_cls=server_cls)
            )
        except OSError:
            if not port:
                raise
            fallback = True
            http = await stack.enter_async_context(kmock.Server(cluster, host=HOST, server_cls=server_cls))
        url = f"https://{HOST}:{http.port}"
        tmpdir = None
        if kubeconfig_path is None:
            tmpdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="lockgate-dev-"))
            kubeconfig_path = pathlib.Path(tmpdir) / "kubeconfig"
        path = world.write_kubeconfig(kubeconfig_path, url, users, ca_pem=certificate.cert_pem)
        try:
            yield Running(
                cluster=cluster,
                url=url,
                port=http.port,
                kubeconfig=path,
                users=users,
                ca_pem=certificate.cert_pem,
                port_fallback=fallback,
            )
        finally:
            await cluster.close()


class RunningCluster:
    """A DevCluster served from a background thread with its own event loop."""

    def __init__(self, **kwargs: object) -> None:
        self._kwargs = kwargs
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._running: Running | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="lockgate-devcluster", daemon=True)

    def start(self, timeout: float = 30) -> RunningCluster:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the embedded API did not start within {timeout}s")
        if self._error is not None:
            raise RuntimeError("the embedded API failed to start") from self._error
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._amain())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(**self._kwargs) as running:  # type: ignore[arg-type]
            self._running = running
            self._ready.set()
            await self._stop.wait()

    @property
    def running(self) -> Running:
        if self._running is None:
            raise RuntimeError("the embedded API is not running")
        return self._running

    @property
    def cluster(self) -> server.DevCluster:
        return self.running.cluster

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def kubeconfig(self) -> pathlib.Path:
        return self.running.kubeconfig

    @property
    def users(self) -> dict[str, world.User]:
        return self.running.users

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the embedded API is not running")
        return self._loop

    def stop(self, timeout: float = 10) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> RunningCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_in_thread(
    *,
    crd_dir: str | pathlib.Path | Sequence[str | pathlib.Path] | None = None,
    seed: bool = True,
    port: int = 0,
    kubeconfig_path: str | pathlib.Path | None = None,
    workload_delay: float = 0.3,
    bookmark_interval: float = 5.0,
) -> RunningCluster:
    """Start a DevCluster in a background thread; use as a context manager or call ``.stop()``."""
    return RunningCluster(
        crd_dir=crd_dir,
        seed=seed,
        port=port,
        kubeconfig_path=kubeconfig_path,
        workload_delay=workload_delay,
        bookmark_interval=bookmark_interval,
    ).start()
