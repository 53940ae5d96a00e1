"""What the operator reads afresh while a watch is not streaming (``kube/freshreads.py``) is bounded in time as a
whole, and says what it could not read; a watch connection's keepalive is best-effort."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, cast

import pytest

from lockgate.kube import client as kclient
from lockgate.kube import freshreads


class SlowApi:
    """Answers every list after ``delay`` seconds, with nothing in it."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.asked: list[str] = []

    async def get(self, path: str, **_: Any) -> dict[str, Any]:
        self.asked.append(path)
        await asyncio.sleep(self.delay)
        return {"items": [], "metadata": {}}


async def test_the_policies_read_is_bounded_as_a_whole_not_per_request() -> None:
    """Two lists (GatePolicies, then the Namespace), each within the bound, together beyond it: unreadable."""
    reads = freshreads.FreshReads(cast(Any, SlowApi(0.3)))
    with pytest.raises(freshreads.Unreadable, match=r"reading GatePolicies and Namespace production failed: no answer"):
        await reads.policies("production", {}, seconds=0.5)


async def test_a_read_in_time_returns_what_the_api_has() -> None:
    api = SlowApi(0.0)
    policies, labels = await freshreads.FreshReads(cast(Any, api)).policies("production", {}, seconds=5)
    assert (policies, labels) == ([], {})
    assert api.asked == ["/apis/lockgate.dev/v1alpha1/gatepolicies", "/api/v1/namespaces"]


def test_a_kernel_refusing_a_keepalive_option_still_gets_a_socket(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(self: socket.socket, *args: Any) -> None:
        raise OSError(92, "Protocol not available")

    monkeypatch.setattr(socket.socket, "setsockopt", refuse)
    with caplog.at_level(logging.WARNING):
        sock = kclient.watch_socket((socket.AF_INET, socket.SOCK_STREAM, 0, "", ("127.0.0.1", 0)))
    try:
        assert sock.fileno() >= 0  # open, usable for the stream
    finally:
        sock.close()
    assert "watch connections without TCP keepalive" in caplog.text
