"""A restarted operator judges no Promotion before its watches delivered the GatePolicies (no flap to Pending)."""

from __future__ import annotations

import json
import time

from lockgate.devcluster import server, world
from lockgate.handlers import testing
from tests.lifecycle import manifests


def test_a_restart_while_gatepolicies_are_slow_to_list_does_not_flap_waiting_promotions(
    lockgate: testing.Stack,
) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.stop_operator()
    slow_until = time.monotonic() + 2.0

    def hook(record: server.RequestRecord) -> server.Fault | None:
        if (
            record.user == world.OPERATOR_USERNAME
            and record.resource == "gatepolicies"
            and time.monotonic() < slow_until
        ):
            return server.Fault(code=429, reason="TooManyRequests", message="slow down", headers={"Retry-After": "1"})
        return None

    lockgate.cluster.cluster.fault_hook = hook
    try:
        lockgate.start_operator()
        time.sleep(3.0)  # the policies arrive after the Promotions; the operator must have waited for them
        lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
        lockgate.wait_for(
            lambda: lockgate.get("promo", "web-2")["status"].get("countedApprovals") == 1, message="bob counted"
        )
    finally:
        lockgate.cluster.cluster.fault_hook = None
    events = json.loads(lockgate.kubectl("get", "events", "-n", "production", "-o", "json").stdout)["items"]
    transitions = [e["message"] for e in events if e.get("involvedObject", {}).get("name") == "web-2"]
    assert not [m for m in transitions if "Pending" in m or "no GatePolicy" in m], transitions
    assert lockgate.phase("web-2") == "AwaitingApproval"
