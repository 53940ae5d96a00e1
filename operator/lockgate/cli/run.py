"""``lockgate run``: the operator itself (in a Pod, or against any kubeconfig context)."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import typer

from lockgate import logs
from lockgate import settings as lockgate_settings


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        kubeconfig: Annotated[
            str | None, typer.Option(help="kubeconfig file (default: $KUBECONFIG, then in-cluster)")
        ] = None,
        context: Annotated[str | None, typer.Option(help="kubeconfig context to act as")] = None,
        standalone: Annotated[bool, typer.Option(help="the only replica: no leader election")] = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logs")] = False,
    ) -> None:
        """Run the Lockgate operator until interrupted."""
        from lockgate.handlers import runtime

        settings = lockgate_settings.OperatorSettings()
        if standalone:
            settings.standalone = True
        logs.configure(settings.log_format, logging.DEBUG if verbose else logging.INFO)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await runtime.run_operator(kubeconfig=kubeconfig, context=context, stop=stop, settings=settings)

        asyncio.run(main())
