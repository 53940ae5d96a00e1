"""Fixtures for the embedded API: ``devcluster`` is a seeded DevCluster running in a background thread."""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Iterator

import pytest

from lockgate.devcluster import runner, testing

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


@pytest.fixture
def devcluster() -> Iterator[runner.RunningCluster]:
    """A fresh seeded cluster (sample world + the repo's CRDs + the test Widget CRD) per test."""
    with testing.running(
        crd_dir=testing.crd_dirs(FIXTURES), workload_delay=0.2, bookmark_interval=0.5
    ) as cluster:
        yield cluster


@pytest.fixture
def kubectl_available() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH: these tests drive the real kubectl binary")
