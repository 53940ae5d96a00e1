"""The gate reuses what it parsed of an unchanged object, and never a parse of an older version."""

from __future__ import annotations

import datetime
from typing import Any

from lockgate.kube import access
from lockgate.lifecycle import gating
from tests.lifecycle.test_fresh_decision import KEY, NOW, RbacChangingApi, approved_world, watching


def _gate() -> tuple[gating.Gate, Any, dict[str, Any]]:
    cluster, body = approved_world()
    approvers = access.ApproverAccess(RbacChangingApi(), ttl=60)  # type: ignore[arg-type]
    watching(approvers)
    return gating.Gate(cluster, approvers, KEY), cluster, body


async def test_a_changed_approval_is_judged_on_its_new_version() -> None:
    gate, cluster, body = _gate()
    assert (await gate.evaluate(body, NOW)).view.may_deploy
    carol = next(a for a in cluster.approvals_for(("production", "web-1-4-2")) if a["spec"]["approver"] == "carol")
    carol["spec"]["stamp"]["signature"] = "hmac-sha256:" + "0" * 64  # forged
    carol["metadata"]["resourceVersion"] = "8"  # same uid, a new version: its stamp no longer verifies
    cluster.put_approval(carol)
    later = NOW + datetime.timedelta(seconds=1)  # past the decision memo's second
    result = await gate.evaluate(body, later)
    assert not result.view.may_deploy
    assert result.approval_statuses["web-1-4-2-carol"]["counted"] is False


async def test_an_unchanged_object_is_parsed_once() -> None:
    gate, _, body = _gate()
    parses: list[str] = []
    promotion, approval = gate._promotion, gate._approval
    gate._promotion = lambda obj: parses.append("promotion") or promotion(obj)  # type: ignore[method-assign]
    gate._approval = lambda obj: parses.append("approval") or approval(obj)  # type: ignore[method-assign]
    first = await gate.evaluate(body, NOW)
    second = await gate.evaluate(body, NOW + datetime.timedelta(seconds=1))
    assert sorted(parses) == ["approval", "approval", "promotion"]
    assert first.view == second.view and first.status == second.status


def test_the_cache_is_bounded_and_drops_the_oldest() -> None:
    parsed = gating.Parsed(size=2)
    objs = [{"metadata": {"uid": f"u-{i}", "resourceVersion": "1"}} for i in range(3)]
    for obj in objs:
        assert parsed.get("Approval", obj, lambda o: o["metadata"]["uid"]) == obj["metadata"]["uid"]
    calls: list[str] = []
    parsed.get("Approval", objs[0], lambda o: calls.append("again") or "u-0")
    parsed.get("Approval", objs[2], lambda o: calls.append("again") or "u-2")
    assert calls == ["again"]  # the oldest was dropped; the newest kept
    assert parsed.get("Approval", {"metadata": {}}, lambda o: "unversioned") == "unversioned"
