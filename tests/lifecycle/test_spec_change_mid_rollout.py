"""A spec change while a rollout is verified: the rollout finishes and is recorded as what it was,
then the new spec starts its own cycle at once; Ready never claims the new generation."""

from __future__ import annotations

from lockgate.handlers import testing
from tests.lifecycle import manifests

WEB_2 = f"registry.example/web:2.0@{manifests.DIGEST}"


def test_the_rollout_in_flight_is_finished_and_recorded_as_deployed(lockgate: testing.Stack) -> None:
    lockgate.cluster.cluster.workload_delay = 1.5
    lockgate.apply(manifests.promotion(), context="alice")
    first = lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    lockgate.wait_phase("web-2", "Verifying", timeout=20)
    lockgate.kubectl(
        "patch",
        "promo",
        "web-2",
        "-n",
        "production",
        "--type=merge",
        "-p",
        '{"spec":{"image":"registry.example/web:3.0"}}',
        context="admin",
    )
    promo = lockgate.wait_for(
        lambda: (
            (p := lockgate.get("promo", "web-2"))["status"].get("specHash") != first["status"]["specHash"]
            and p["status"].get("phase") in ("Pending", "AwaitingApproval")
            and p
        ),
        timeout=30,
        message="the new cycle",
    )
    ready = next(c for c in promo["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert lockgate.image() == WEB_2  # the new spec deploys only after its own approvals
    records = [r for r in lockgate.trail().records() if r.promotion.name == "web-2"]
    verified = [r for r in records if r.event == "verified"]
    assert len(verified) == 1
    assert verified[0].image == WEB_2
    assert verified[0].promotion.spec_hash == first["status"]["specHash"]
    waited = lockgate.kubectl(
        "wait", "--for=condition=Ready", "promo/web-2", "-n", "production", "--timeout=1s", check=False
    )
    assert waited.returncode != 0
