"""``lockgate dev``: the embedded Kubernetes API, sample world, kubeconfig and the operator in-process."""

from __future__ import annotations

import asyncio
import importlib
import os
import pathlib
import signal
import socket
from typing import Annotated

import typer

from lockgate import settings as lockgate_settings
from lockgate.devcluster import runner
from lockgate.rollout import verification


def register(app: typer.Typer) -> None:
    app.command("dev")(dev)


def dev(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (a free one is used if taken).")] = 6443,
    crds: Annotated[pathlib.Path | None, typer.Option(help="Directory of CRD YAML files (default: crds/).")] = None,
    kubeconfig: Annotated[pathlib.Path, typer.Option(help="Where to write the kubeconfig.")] = pathlib.Path(
        "lockgate-dev.kubeconfig"
    ),
    empty: Annotated[bool, typer.Option("--empty", help="Do not seed the sample world.")] = False,
    no_operator: Annotated[bool, typer.Option("--no-operator", help="Do not run the operator in-process.")] = False,
    metrics_port: Annotated[int, typer.Option(help="The operator's /metrics port on 127.0.0.1 (0: off).")] = 9090,
    audit: Annotated[
        pathlib.Path, typer.Option(help="The sqlite audit trail file (LOCKGATE_AUDIT_* sinks when set).")
    ] = pathlib.Path("lockgate-audit.sqlite3"),
) -> None:
    """Run an embedded Kubernetes API on 127.0.0.1 with the sample world, until interrupted."""
    crd_dir = crds if crds is not None else runner.default_crd_dir()
    settings = lockgate_settings.OperatorSettings(
        standalone=True,
        webhook_host="127.0.0.1",
        webhook_public_host="127.0.0.1",
        webhook_port=0,
        health_port=0,
        metrics_host="127.0.0.1",
        metrics_port=_free(metrics_port),
        verification_hosts=[*verification.DEFAULT_HOSTS, *verification.LOCAL_HOSTS],
    )
    os.environ.setdefault("LOCKGATE_AUDIT_SQLITE_PATH", str(audit))
    asyncio.run(
        _main(
            port=port,
            crd_dir=crd_dir,
            kubeconfig=kubeconfig,
            seed=not empty,
            operator=settings if not no_operator else None,
        )
    )


def _free(port: int) -> int:
    """``port`` when it can be bound on 127.0.0.1, otherwise 0 (metrics off, said at start)."""
    if not port:
        return 0
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            typer.echo(f"Port {port} is taken: the operator's /metrics endpoint is off (use --metrics-port).")
            return 0
    return port


async def _main(
    *,
    port: int,
    crd_dir: pathlib.Path | None,
    kubeconfig: pathlib.Path,
    seed: bool,
    operator: lockgate_settings.OperatorSettings | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with runner.serve(crd_dir=crd_dir, seed=seed, port=port, kubeconfig_path=kubeconfig) as running:
        if running.port_fallback:
            typer.echo(f"Port {port} is taken; using port {running.port} instead.")
        typer.echo(f"Embedded Kubernetes API: {running.url}")
        typer.echo(f"CRDs loaded from: {crd_dir if crd_dir is not None else '(none found)'}")
        typer.echo(f"Kubeconfig: {running.kubeconfig.resolve()}  (contexts: {', '.join(running.users)})")
        typer.echo("Try:")
        kc = f"KUBECONFIG={running.kubeconfig}"
        typer.echo(f"  {kc} kubectl get deploy -n staging")
        typer.echo(f"  {kc} kubectl --context alice get promo -n production")
        typer.echo(f"  {kc} kubectl --context mallory get promo -n production   # Forbidden")
        typer.echo(f"  {kc} kubectl --context bob auth can-i approve promotions.lockgate.dev -n production")
        typer.echo(
            f"  {kc} kubectl set image deployment/web web=img:2 -n staging && "
            f"{kc} kubectl rollout status deployment/web -n staging"
        )
        operator_task: asyncio.Task[None] | None = None
        if operator is not None:
            if operator.metrics_port:
                typer.echo(f"Operator metrics: http://127.0.0.1:{operator.metrics_port}/metrics")
            operator_task = _start_operator(running.kubeconfig, stop, operator)
        typer.echo("Press Ctrl-C to stop.")
        await stop.wait()
        typer.echo("Stopping...")
        if operator_task is not None:
            try:
                await asyncio.wait_for(operator_task, timeout=15)
            except (TimeoutError, asyncio.CancelledError):
                operator_task.cancel()
            except Exception as exc:  # the operator's failure must not hide the clean shutdown
                typer.echo(f"operator stopped with an error: {exc!r}")


def _start_operator(
    kubeconfig: pathlib.Path, stop: asyncio.Event, settings: lockgate_settings.OperatorSettings
) -> asyncio.Task[None] | None:
    try:
        runtime = importlib.import_module("lockgate.handlers.runtime")
    except ModuleNotFoundError as exc:
        if exc.name not in ("lockgate.handlers.runtime", "lockgate.handlers"):
            raise
        typer.echo("operator not available yet (lockgate.handlers.runtime is missing); serving the API only")
        return None
    typer.echo("Running the operator in-process as system:serviceaccount:lockgate-system:lockgate-operator")
    coro = runtime.run_operator(kubeconfig=str(kubeconfig), context="lockgate-operator", stop=stop, settings=settings)
    return asyncio.get_running_loop().create_task(coro)
