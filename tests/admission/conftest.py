"""Fixtures: a whole Lockgate (embedded API + operator with its webhooks) per test."""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Iterator

import pytest

from lockgate.handlers import testing

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def lockgate() -> Iterator[testing.Stack]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH: these tests drive the real kubectl binary")
    with testing.stack() as running:
        running.kubectl("apply", "-f", str(REPO / "examples" / "gatepolicy-production.yaml"))
        yield running
