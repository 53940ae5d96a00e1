"""Shared test configuration: the ``--long`` switch, and ``lockgate``: a whole Lockgate per test."""

from __future__ import annotations

import os
import pathlib
import shutil
from collections.abc import Iterator

import hypothesis
import pytest

from lockgate.gates import spechash
from lockgate.handlers import testing

REPO = pathlib.Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False, help="run the long reliability trials")


# ``make test`` (and so CI) explores the same examples on every run: a property that fails there fails on every
# machine, and a run that passed proves the same thing again. ``--long`` explores new examples each time (print_blob
# gives the failing one's reproduction); HYPOTHESIS_PROFILE=explore does that at ``make test`` size.
hypothesis.settings.register_profile("deterministic", derandomize=True, print_blob=True)
hypothesis.settings.register_profile("explore", derandomize=False, print_blob=True)


def pytest_configure(config: pytest.Config) -> None:
    explore = config.getoption("--long") or os.environ.get("HYPOTHESIS_PROFILE") == "explore"
    hypothesis.settings.load_profile("explore" if explore else "deterministic")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip_long = pytest.mark.skip(reason="long trial: run with --long")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip_long)


@pytest.fixture
def lockgate() -> Iterator[testing.Stack]:
    """The embedded API + operator (sqlite audit trail) with the example production GatePolicy."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH: these tests drive the real kubectl binary")
    with testing.stack() as running:
        running.kubectl("apply", "-f", str(REPO / "examples" / "gatepolicy-production.yaml"))
        yield running


@pytest.fixture(autouse=True)
def _fresh_spec_hash_memo() -> Iterator[None]:
    """Tests build Promotions with fixed uids and resourceVersions; the spec-hash memo (one identity, one spec: true
    of the API) must not carry one test's spec into another."""
    spechash._memo.clear()
    yield
