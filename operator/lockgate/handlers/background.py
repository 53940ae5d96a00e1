"""Running the operator on its own thread and event loop: for tests, benchmarks and restarts.

``stop()`` ends it as a pod's SIGTERM would; ``kill()`` abandons it mid-step, as a crash would
(nothing after the current await runs), so restart tests can start a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from typing import Any

from lockgate import settings as lockgate_settings
from lockgate.handlers import runtime
from lockgate.rollout import verification


def local_settings(**overrides: Any) -> lockgate_settings.OperatorSettings:
    """Settings for an operator on this machine: one replica, webhooks on 127.0.0.1, no fixed ports."""
    values: dict[str, Any] = {
        "standalone": True,
        "metrics_port": 0,
        "health_port": 0,
        "webhook_port": 0,
        "webhook_host": "127.0.0.1",
        "webhook_public_host": "127.0.0.1",
        "verification_hosts": [*verification.DEFAULT_HOSTS, *verification.LOCAL_HOSTS],
    }
    values.update(overrides)
    return lockgate_settings.OperatorSettings(**values)


class OperatorThread:
    def __init__(
        self,
        *,
        kubeconfig: str | os.PathLike[str],
        context: str = "lockgate-operator",
        settings: lockgate_settings.OperatorSettings | None = None,
        audit_trail: Any = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.settings = settings or local_settings()
        self.audit_trail = audit_trail
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="lockgate-operator", daemon=True)

    def start(self, timeout: float = 30) -> OperatorThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the operator did not become ready within {timeout}s")
        if self.error is not None:
            raise RuntimeError("the operator failed to start") from self.error
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._amain())
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()

    async def _amain(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        ready = asyncio.Event()
        waiter = asyncio.create_task(self._signal_ready(ready))
        try:
            await runtime.run_operator(
                kubeconfig=self.kubeconfig,
                context=self.context,
                stop=self._stop,
                ready=ready,
                settings=self.settings,
                audit_trail=self.audit_trail,
            )
        finally:
            waiter.cancel()

    async def _signal_ready(self, ready: asyncio.Event) -> None:
        await ready.wait()
        await asyncio.sleep(0.5)  # let the initial listings arrive and the webhooks register
        self._ready.set()

    def stop(self, timeout: float = 20) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def kill(self, timeout: float = 10) -> None:
        """Cancel every task of the operator's loop at once (a crash, as far as the cluster can tell)."""
        loop = self.loop
        if loop is None or not self._thread.is_alive():
            return

        def cancel_all() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()

        def drop_connections() -> None:
            # A dead process's sockets are closed by its kernel: peers see a reset, not a silent
            # connection (the API server's kept-alive webhook connections would otherwise hang).
            transports: Any = getattr(loop, "_transports", {})  # the selector loop's open connections
            for transport in list(transports.values()):
                with contextlib.suppress(Exception):
                    transport.abort()

        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(drop_connections)
        # Cleanup code reached by the cancellation (Kopf's shielded closing) starts new tasks, which a
        # crash would not run either: keep cancelling until the loop ends.
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(cancel_all)
            self._thread.join(0.05)

    def __enter__(self) -> OperatorThread:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
