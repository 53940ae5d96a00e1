"""Failures are one clear line on stderr with exit status 1, never a traceback."""

from __future__ import annotations

import pathlib

import typer.testing

from lockgate.cli import main
from lockgate.handlers import testing
from tests.cli import conftest
from tests.lifecycle import manifests


def test_an_unknown_promotion_is_not_found_in_the_namespace(cli: conftest.Cli) -> None:
    result = cli("status", "nope", context="bob")

    assert result.exit_code == 1
    assert result.stderr == 'error: promotion "nope" not found in namespace "production"\n'
    assert result.stdout == ""


def test_a_forbidden_user_gets_the_servers_message(lockgate: testing.Stack, cli: conftest.Cli) -> None:
    lockgate.apply(manifests.promotion(), context="alice")

    result = cli("status", "web-2", context="mallory")

    assert result.exit_code == 1
    assert result.stderr.startswith('error: promotions.lockgate.dev "web-2" is forbidden: User "mallory" cannot get')
    assert len(result.stderr.splitlines()) == 1


def test_the_default_namespace_comes_from_the_context(cli: conftest.Cli) -> None:
    result = cli("status", "web-2", context="bob", namespace=None)

    assert result.exit_code == 1
    assert 'not found in namespace "default"' in result.stderr


def test_a_missing_kubeconfig_or_context_is_one_line(cli: conftest.Cli, tmp_path: pathlib.Path) -> None:
    missing = cli.stack.cluster.kubeconfig
    result = cli("list", context="nobody")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: kubeconfig {missing} has no context 'nobody'")

    result = typer.testing.CliRunner().invoke(main.app, ["list", "--kubeconfig", str(tmp_path / "kc")])
    assert result.exit_code == 1
    assert (
        result.stderr == f"error: no kubeconfig at {tmp_path / 'kc'}: pass --kubeconfig or set KUBECONFIG "
        "(`lockgate dev` writes one)\n"
    )


def test_an_unreachable_api_is_one_line(lockgate: testing.Stack, cli: conftest.Cli, tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(lockgate.cluster.kubeconfig.read_text().replace(lockgate.cluster.url, "https://127.0.0.1:1"))
    result = typer.testing.CliRunner().invoke(main.app, ["list", "--kubeconfig", str(kubeconfig), "--context", "bob"])

    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach the Kubernetes API at https://127.0.0.1:1")
    assert len(result.stderr.splitlines()) == 1
