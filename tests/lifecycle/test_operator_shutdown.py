"""An operator that ends, by SIGTERM or by a crash mid-request, leaves no API session of its own open."""

from __future__ import annotations

import gc
import time
import warnings

import aiohttp
import pytest

from lockgate.devcluster import server, world
from lockgate.handlers import background, testing


@pytest.mark.parametrize("ending", ["stop", "kill"])
def test_an_ended_operator_leaves_no_api_session_open(ending: str) -> None:
    """Kopf closes its API sessions in a cleanup that a crash (every task cancelled while requests hang) skips;
    the operator closes them itself. Open sessions still referenced, and unreferenced ones (aiohttp warns
    "Unclosed client session" when they are collected), both count."""
    with testing.stack(operator=False) as stack:
        operator = background.OperatorThread(kubeconfig=stack.cluster.kubeconfig, audit_trail=stack.trail()).start()
        loop = operator.loop
        stack.cluster.cluster.fault_hook = lambda r: (
            server.Fault(delay=3) if r.user == world.OPERATOR_USERNAME else None
        )
        stack.apply(_namespace("busy"), context="admin")  # the operator's reads of it now hang
        time.sleep(0.3)
        getattr(operator, ending)()
        stack.cluster.cluster.fault_hook = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            gc.collect()
        unclosed = [str(w.message) for w in caught if "Unclosed client session" in str(w.message)]
        left = [
            s
            for s in gc.get_objects()
            if isinstance(s, aiohttp.ClientSession) and getattr(s, "_loop", None) is loop and not s.closed
        ]
        assert (left, unclosed) == ([], []), f"API sessions of the {ending}ped operator left open"


def _namespace(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {{lockgate.dev/environment: x}}\n"
