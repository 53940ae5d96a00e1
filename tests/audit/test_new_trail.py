"""The operator's door to the trail when a sink was empty at start-up but Promotions say otherwise."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest

from lockgate.audit import trail
from lockgate.audit.sinks import sqlite
from lockgate.lifecycle import auditing

RECORDED = {
    "metadata": {"namespace": "production", "name": "web-2"},
    "status": {"phase": "Succeeded", "auditRecorded": True},
}
WAITING = {"metadata": {"namespace": "production", "name": "web-4"}, "status": {"phase": "AwaitingApproval"}}


def adapter(path: pathlib.Path, new_trail: str | None = None) -> auditing.AuditAdapter:
    made = auditing.AuditAdapter(trail.AuditTrail([sqlite.SqliteSink(path)]), operator="lockgate", new_trail=new_trail)
    asyncio.run(made.prepare())
    return made


def test_a_new_install_writes_into_its_empty_trail_once_it_is_checked(tmp_path: pathlib.Path, samples: Any) -> None:
    audit = adapter(tmp_path / "audit.sqlite3")
    assert audit.empty_at_start == [f"sqlite({tmp_path / 'audit.sqlite3'})"]
    with pytest.raises(auditing.AuditUnavailableError, match="being checked against the cluster"):
        asyncio.run(audit.write(samples.lifecycle()[0]))  # e.g. a break-glass record right at start-up
    audit.continue_trail([WAITING])  # nothing was recorded before: nothing is missing
    (stored,) = asyncio.run(audit.write(samples.lifecycle()[0]))
    assert "newTrail" not in stored.extra


def test_an_empty_trail_with_recorded_promotions_refuses_until_its_records_are_back(
    tmp_path: pathlib.Path, samples: Any
) -> None:
    audit = adapter(tmp_path / "audit.sqlite3")
    audit.continue_trail([RECORDED, WAITING])
    approved, deploying, *_ = samples.lifecycle()
    with pytest.raises(auditing.AuditUnavailableError, match=r"holds no record.*production/web-2"):
        asyncio.run(audit.write(approved))
    # The trail is restored under the running operator (here: its records written back by another writer).
    trail.AuditTrail([sqlite.SqliteSink(tmp_path / "audit.sqlite3")]).write(samples.lifecycle(name="web-2")[0])
    stored = asyncio.run(audit.write(approved, deploying))
    assert [r.event for r in stored] == ["approved", "deploying"]


def test_a_new_trail_accepted_on_purpose_says_so_in_its_first_record(tmp_path: pathlib.Path, samples: Any) -> None:
    audit = adapter(tmp_path / "audit.sqlite3", new_trail="CHG-77: moved to the encrypted volume")
    audit.continue_trail([RECORDED])
    approved, deploying, deployed, _ = samples.lifecycle()
    first, second = asyncio.run(audit.write(approved, deploying))
    assert "CHG-77: moved to the encrypted volume" in first.extra["newTrail"]
    assert "production/web-2" in first.extra["newTrail"]
    assert "newTrail" not in second.extra
    (later,) = asyncio.run(audit.write(deployed))
    assert "newTrail" not in later.extra
