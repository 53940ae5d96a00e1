"""The embedded API's fault injection as the reliability suites use it: Retry-After and dropped watches."""

from __future__ import annotations

import http.client
import time
import urllib.request
from collections.abc import Iterator

import pytest

from lockgate.devcluster import runner, server, testing


@pytest.fixture(scope="module")
def cluster() -> Iterator[runner.RunningCluster]:
    with testing.running(crd_dir=testing.crd_dirs()) as running:
        yield running


def test_a_429_carries_retry_after(cluster: runner.RunningCluster) -> None:
    def hook(record: server.RequestRecord) -> server.Fault | None:
        if record.user == "alice":
            return server.Fault(code=429, reason="TooManyRequests", message="slow down", headers={"Retry-After": "1"})
        return None

    cluster.cluster.fault_hook = hook
    try:
        request = urllib.request.Request(cluster.url + "/apis/apps/v1/namespaces/staging/deployments")
        request.add_header("Authorization", f"Bearer {cluster.users['alice'].token}")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5, context=testing.ssl_context(cluster))
        assert caught.value.code == 429
        assert caught.value.headers["Retry-After"] == "1"
    finally:
        cluster.cluster.fault_hook = None


def test_a_dropped_watch_ends_without_a_clean_end(cluster: runner.RunningCluster) -> None:
    def hook(record: server.RequestRecord) -> server.Fault | None:
        return server.Fault(drop_watch_after=0.3) if record.verb == "watch" else None

    cluster.cluster.fault_hook = hook
    try:
        request = urllib.request.Request(
            cluster.url + "/apis/apps/v1/namespaces/staging/deployments?watch=true&timeoutSeconds=10"
        )
        request.add_header("Authorization", f"Bearer {cluster.users['admin'].token}")
        started = time.monotonic()
        with (
            urllib.request.urlopen(request, timeout=5, context=testing.ssl_context(cluster)) as response,
            pytest.raises((http.client.IncompleteRead, ConnectionError)),
        ):
            while response.read(1024):
                pass
        assert time.monotonic() - started < 3  # dropped long before the watch's own 10 s deadline
    finally:
        cluster.cluster.fault_hook = None
