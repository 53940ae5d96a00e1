"""Entry points: ``lockgate`` and the kubectl plugin ``kubectl-lockgate``.

Each command group lives in its own module and registers itself here.
"""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(
    name="lockgate",
    help="Lockgate: an auditable approval gate in front of production rollouts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, each exposing ``register(app)``. Missing modules are skipped so the
# tree stays runnable while a group is being built.
_COMMAND_MODULES = (
    "lockgate.cli.dev",
    "lockgate.cli.run",
    "lockgate.cli.crds",
    "lockgate.cli.promotions",
    "lockgate.cli.audit",
    "lockgate.cli.demo",
)

for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # pragma: no cover - only while a module is absent
        if exc.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    """Run the ``lockgate`` command."""
    app()


def kubectl_main() -> None:
    """Run as the kubectl plugin ``kubectl lockgate``."""
    app(prog_name="kubectl lockgate", args=sys.argv[1:])
