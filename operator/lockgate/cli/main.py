"""Entry points: ``lockgate`` and the kubectl plugin ``kubectl-lockgate``.

Each command group lives in its own module and registers itself here.
"""

from __future__ import annotations

import importlib
import sys

import typer

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
# ``lockgate run`` is the operator's process: it imports only its own command (the others pull in the
# kubernetes client, rich tables and the embedded API, ~12 MB the operator never uses).
_ONLY_FOR = {"run": ("lockgate.cli.run",)}


def _group() -> None:
    """Lockgate: an auditable approval gate in front of production rollouts."""


def build(modules: tuple[str, ...] = _COMMAND_MODULES) -> typer.Typer:
    """The ``lockgate`` command with the commands of ``modules``."""
    made = typer.Typer(
        name="lockgate",
        help="Lockgate: an auditable approval gate in front of production rollouts.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    made.callback()(_group)  # a group even with one command: ``lockgate run ...`` keeps its word
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # pragma: no cover - only while a module is absent
            if exc.name != name:
                raise
            continue
        module.register(made)
    return made


def __getattr__(name: str) -> typer.Typer:  # ``main.app``: every command (tests, docs)
    if name == "app":
        return build()
    raise AttributeError(name)


def main() -> None:
    """Run the ``lockgate`` command."""
    args = sys.argv[1:]
    build(_ONLY_FOR.get(args[0], _COMMAND_MODULES) if args else _COMMAND_MODULES)()


def kubectl_main() -> None:
    """Run as the kubectl plugin ``kubectl lockgate``."""
    build()(prog_name="kubectl lockgate", args=sys.argv[1:])
