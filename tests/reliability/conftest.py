"""Reliability suites: trial counts scale with ``--long``; every trial's seed derives from one base seed.

Set ``LOCKGATE_RELIABILITY_SEED`` to replay a failing run; the seed is in every failure message.
"""

from __future__ import annotations

import os
import random

import pytest

BASE_SEED = int(os.environ.get("LOCKGATE_RELIABILITY_SEED") or random.SystemRandom().randrange(1 << 30))


def pytest_report_header(config: pytest.Config) -> str:
    return f"lockgate reliability seed: LOCKGATE_RELIABILITY_SEED={BASE_SEED}"


@pytest.fixture
def long(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--long"))
