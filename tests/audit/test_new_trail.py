"""The operator's door to the trail when a sink holds nothing but Promotions say they were recorded."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest

from lockgate.audit import record, trail
from lockgate.audit.sinks import sqlite
from lockgate.lifecycle import auditing, statuses


def adapter(path: pathlib.Path, new_trail: str | None = None) -> auditing.AuditAdapter:
    made = auditing.AuditAdapter(trail.AuditTrail([sqlite.SqliteSink(path)]), operator="lockgate", new_trail=new_trail)
    asyncio.run(made.prepare())
    return made


def claiming(*records: record.AuditRecord) -> Any:
    """The cluster's recorded Promotions, as ``check_trail`` asks for them: one per record given."""

    async def listed() -> list[statuses.RecordedDecision]:
        return [
            statuses.RecordedDecision(
                f"{r.promotion.namespace}/{r.promotion.name}", r.promotion.uid, r.promotion.spec_hash, r.event
            )
            for r in records
        ]

    return listed


def test_nothing_is_written_before_the_trail_is_checked(
    tmp_path: pathlib.Path, samples: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit = adapter(tmp_path / "audit.sqlite3")
    monkeypatch.setattr(auditing, "CHECK_WAIT_SECONDS", 0.05)  # a record waits that long for the check
    with pytest.raises(auditing.AuditUnavailableError, match="being checked against the cluster"):
        asyncio.run(audit.write(samples.lifecycle()[0]))  # e.g. a break-glass record right at start-up
    asyncio.run(audit.check_trail(claiming()))  # a new install: nothing was recorded before
    assert audit.empty_at_start == [f"sqlite({tmp_path / 'audit.sqlite3'})"]
    (stored,) = asyncio.run(audit.write(samples.lifecycle()[0]))
    assert "newTrail" not in stored.extra


def test_a_lost_trail_refuses_until_the_claimed_records_are_back(tmp_path: pathlib.Path, samples: Any) -> None:
    earlier = samples.lifecycle(name="web-2")  # what the lost trail held
    audit = adapter(tmp_path / "audit.sqlite3")
    asyncio.run(audit.check_trail(claiming(earlier[1])))
    approved, deploying, *_ = samples.lifecycle(name="web-3")
    with pytest.raises(auditing.AuditUnavailableError, match=r"holds no record.*production/web-2"):
        asyncio.run(audit.write(approved))
    # Another writer's records (another environment's stream) are not the lost trail: still refused.
    elsewhere = trail.AuditTrail([sqlite.SqliteSink(tmp_path / "audit.sqlite3")])
    elsewhere.write(samples.lifecycle(name="web-9", namespace="staging")[0])
    audit._looked_at = 0.0  # no waiting for the next look in a test
    with pytest.raises(auditing.AuditUnavailableError, match="holds no record"):
        asyncio.run(audit.write(approved))
    # The trail is restored (its records written back): writing resumes.
    elsewhere.write_all(earlier)
    audit._looked_at = 0.0
    stored = asyncio.run(audit.write(approved, deploying))
    assert [r.event for r in stored] == ["approved", "deploying"]


def test_a_new_trail_accepted_on_purpose_says_so_in_its_first_record(tmp_path: pathlib.Path, samples: Any) -> None:
    audit = adapter(tmp_path / "audit.sqlite3", new_trail="CHG-77: moved to the encrypted volume")
    asyncio.run(audit.check_trail(claiming(samples.lifecycle(name="web-2")[1])))
    approved, deploying, deployed, _ = samples.lifecycle()
    first, second = asyncio.run(audit.write(approved, deploying))
    assert "CHG-77: moved to the encrypted volume" in first.extra["newTrail"]
    assert "production/web-2" in first.extra["newTrail"]
    assert "newTrail" not in second.extra
    (later,) = asyncio.run(audit.write(deployed))
    assert "newTrail" not in later.extra


def test_a_cycle_says_which_record_it_must_have() -> None:
    def decided(phase: str, **status: Any) -> Any:
        promotion = {"metadata": {"namespace": "production", "name": "web-2", "uid": "u1"}}
        return statuses.recorded_decision(
            {**promotion, "status": {"phase": phase, "auditRecorded": True, "specHash": "sha256:c1", **status}}
        )

    assert decided("Succeeded", rollout={"image": "web:2"}).event == "deploying"
    assert decided("Failed").event == "failed"  # never deployed: its failure is what was recorded
    assert decided("Rejected").event == "rejected"
    assert decided("Superseded").event == "superseded"
    assert decided("AwaitingApproval") is None
    assert decided("Succeeded", auditRecorded=False) is None


def test_a_record_at_start_up_waits_for_the_check_instead_of_failing(tmp_path: pathlib.Path, samples: Any) -> None:
    audit = adapter(tmp_path / "audit.sqlite3")

    async def start_up() -> list[record.AuditRecord]:
        writing = asyncio.create_task(audit.write(samples.lifecycle()[0]))  # e.g. a resumed deploy's record
        await asyncio.sleep(0.05)
        assert not writing.done()
        await audit.check_trail(claiming())
        return await writing

    (stored,) = asyncio.run(start_up())
    assert stored.event == "approved"
