"""The watch handlers (``handlers/watching.py``) fed what an informer delivers, tombstones included.

A tombstone (an object that vanished while no stream was open, found by a new listing) carries only a
namespace and a name: what the deletion's audit record needs comes from the view. Records being written
when the operator stops get their time; work for one object runs in event order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
import yaml

from lockgate.handlers import watching
from lockgate.kube import informer
from lockgate.lifecycle import view
from tests.lifecycle import manifests


class Reconciler:
    """What the handlers ask of the reconciler, recorded."""

    def __init__(self, deleting: float = 0.0) -> None:
        self.touched: list[view.Key] = []
        self.deleted: list[dict[str, Any]] = []
        self.deleting = deleting

    def touch(self, key: view.Key) -> None:
        self.touched.append(key)

    def touch_all(self, namespaces: list[str] | None = None) -> None:
        self.touched.append(("*", ",".join(namespaces or [])))

    def busy(self, key: view.Key) -> bool:
        return False

    async def promotion_deleted(self, obj: dict[str, Any], *, under_way: bool = False) -> None:
        await asyncio.sleep(self.deleting)
        self.deleted.append(obj)


class PolicyStatuses:
    def __init__(self) -> None:
        self.published: list[str] = []

    def changed(self) -> None:
        pass

    async def publish(self, obj: dict[str, Any]) -> None:
        version = obj["metadata"]["resourceVersion"]
        await asyncio.sleep({"1": 0.2, "2": 0.1}.get(version, 0))  # the older statuses take longer to write
        self.published.append(version)


def promotion(phase: str, rv: str = "5") -> dict[str, Any]:
    obj = cast(dict[str, Any], yaml.safe_load(manifests.promotion()))
    obj["metadata"].update(uid="uid-web-2", resourceVersion=rv)
    obj["status"] = {"phase": phase, "specHash": "sha256:" + "1" * 64}
    return obj


def approval(name: str, rv: str = "7") -> dict[str, Any]:
    obj = cast(dict[str, Any], yaml.safe_load(manifests.approval(name, "web-2")))
    obj["metadata"].update(uid=f"uid-{name}", resourceVersion=rv)
    obj["spec"]["approver"] = name.split("-")[-1]
    return obj


def watches(
    reconciler: Reconciler, withdrawn: list[tuple[str, str]] | None = None, writing: float = 0.0
) -> tuple[watching.Watches, view.ClusterView]:
    cluster = view.ClusterView()

    async def approval_deleted(old: dict[str, Any], promotion: dict[str, Any] | None) -> None:
        await asyncio.sleep(writing)
        assert withdrawn is not None
        withdrawn.append((old["metadata"]["name"], (promotion or {}).get("status", {}).get("phase", "-")))

    handlers = watching.Watches(
        cast(Any, None),  # the informers are not started here: the handlers are called directly
        cluster,
        cast(Any, reconciler),
        cast(Any, PolicyStatuses()),
        on_approval_deleted=approval_deleted,
    )
    return handlers, cluster


async def test_a_promotion_gone_while_no_stream_was_open_is_recorded_from_the_view() -> None:
    reconciler = Reconciler()
    handlers, cluster = watches(reconciler)
    handlers.promotion_event("ADDED", promotion("Verifying"))
    handlers.promotion_event("DELETED", informer.tombstone(("production", "web-2")))
    await handlers.stop()
    assert ("production", "web-2") not in cluster.promotions
    assert [(d["metadata"]["uid"], d["status"]["phase"]) for d in reconciler.deleted] == [("uid-web-2", "Verifying")]


async def test_an_approval_gone_while_no_stream_was_open_is_recorded_as_withdrawn() -> None:
    withdrawn: list[tuple[str, str]] = []
    reconciler = Reconciler()
    handlers, cluster = watches(reconciler, withdrawn)
    handlers.promotion_event("ADDED", promotion("AwaitingApproval"))
    handlers.approval_event("ADDED", approval("web-2-bob"))
    looks = reconciler.touched.count(("production", "web-2"))
    handlers.approval_event("DELETED", informer.tombstone(("production", "web-2-bob")))
    assert reconciler.touched.count(("production", "web-2")) == looks + 1  # its Promotion is looked at again
    handlers.promotion_event("MODIFIED", promotion("Rejected", rv="9"))  # the record says what it was then
    await handlers.stop()
    assert withdrawn == [("web-2-bob", "AwaitingApproval")]
    assert cluster.approvals_for(("production", "web-2")) == []


async def test_stopping_waits_for_the_records_being_written_and_logs_one_cut_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    withdrawn: list[tuple[str, str]] = []
    handlers, _ = watches(Reconciler(), withdrawn, writing=0.3)
    handlers.approval_event("ADDED", approval("web-2-bob"))
    handlers.approval_event("DELETED", approval("web-2-bob", rv="8"))
    await handlers.stop()
    assert withdrawn == [("web-2-bob", "-")]  # written before the stop returned

    stuck = Reconciler(deleting=60)
    handlers, _ = watches(stuck)
    handlers.promotion_event("ADDED", promotion("Deploying"))
    handlers.promotion_event("DELETED", promotion("Deploying", rv="6"))
    with caplog.at_level(logging.ERROR, logger="lockgate.watch"):
        await asyncio.wait_for(handlers.stop(), watching.DRAIN_SECONDS + 5)
    assert stuck.deleted == []
    assert any("recording the deletion of promotion production/web-2 did not finish" in m for m in caplog.messages)


async def test_one_objects_work_runs_in_event_order() -> None:
    handlers, _ = watches(Reconciler())
    policy = {"apiVersion": "lockgate.dev/v1alpha1", "kind": "GatePolicy", "metadata": {"name": "production"}}
    for version in ("1", "2", "3"):
        handlers.policy_event("MODIFIED", {**policy, "metadata": {"name": "production", "resourceVersion": version}})
    await handlers.stop()
    statuses = cast(PolicyStatuses, handlers.policy_statuses)
    assert statuses.published == ["1", "2", "3"]  # an older status is never written after a newer one


async def test_the_informers_know_the_uid_of_each_promotion_and_approval_held() -> None:
    """What lets a new listing report one replaced under its name (deleted and created again) as deleted first."""
    handlers, _ = watches(Reconciler())
    handlers.promotion_event("ADDED", promotion("Verifying"))
    handlers.approval_event("ADDED", approval("web-2-bob"))
    by_kind = {i.kind: i for i in handlers.informers}
    assert by_kind["promotions"].held_uid is not None and by_kind["approvals"].held_uid is not None
    assert by_kind["promotions"].held_uid(("production", "web-2")) == "uid-web-2"
    assert by_kind["approvals"].held_uid(("production", "web-2-bob")) == "uid-web-2-bob"
    assert by_kind["approvals"].held_uid(("production", "web-2-carol")) is None
    assert set(by_kind["promotions"].known()) == {("production", "web-2")}
    await handlers.stop()
