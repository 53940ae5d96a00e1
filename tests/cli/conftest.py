"""Fixtures: a whole Lockgate (embedded API + operator) with the production GatePolicy, and the CLI."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import typer.testing

from lockgate.cli import main
from lockgate.handlers import testing


@dataclasses.dataclass
class Cli:
    """``lockgate`` as a sample user: ``cli("status", "web-2", context="bob")``."""

    stack: testing.Stack

    def __call__(self, *args: str, context: str = "alice", namespace: str | None = "production") -> Any:
        argv = [*args, "--kubeconfig", str(self.stack.cluster.kubeconfig), "--context", context]
        if namespace is not None:
            argv += ["-n", namespace]
        return typer.testing.CliRunner().invoke(main.app, argv, env={"COLUMNS": "200", "KUBECONFIG": None})


@pytest.fixture
def cli(lockgate: testing.Stack) -> Cli:
    return Cli(lockgate)
