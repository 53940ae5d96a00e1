"""Fail closed: if any sink cannot durably write, the trail refuses; a retry completes it exactly once."""

from __future__ import annotations

import pathlib
import socket
import time
from typing import Any

import pytest

from lockgate.audit import chain, errors, record, trail
from lockgate.audit.sinks import dynamodb, s3, sqlite


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_outage_refuses_then_recovery_writes_each_decision_once(
    tmp_path: pathlib.Path, aws_endpoint: str, unique: str, samples: Any
) -> None:
    local = sqlite.SqliteSink(tmp_path / "audit.sqlite3")
    client = dynamodb.client("us-east-1", aws_endpoint)
    remote = dynamodb.DynamoDBSink(unique, dynamodb=client)  # the table is not there yet: the sink is "down"
    audit = trail.AuditTrail([local, remote])
    approved, deploying, deployed, verified = samples.lifecycle()

    with pytest.raises(errors.AuditUnavailable) as refused:
        audit.write(approved)
    assert refused.value.sink == remote.name
    assert f"DynamoDB table {unique}" in str(refused.value)
    assert "check the table exists" in str(refused.value)
    # The operator asks "is it durable?" before deploying: it cannot know while a sink is down.
    with pytest.raises(errors.AuditUnavailable):
        audit.find(approved.promotion.uid, "approved", spec_hash=approved.promotion.spec_hash)

    # The operator keeps retrying while the sink is down; nothing more gets chained anywhere.
    for _ in range(3):
        with pytest.raises(errors.AuditUnavailable):
            audit.write(approved)
    assert [r.id for r in local.records()] == [approved.id]

    dynamodb.create_table(client, unique)  # the sink returns, empty
    assert audit.find(approved.promotion.uid, "approved", spec_hash=approved.promotion.spec_hash) is None
    for rec in (approved, approved, deploying, deploying, deployed, verified, verified):
        audit.write(rec)

    for sink in (local, remote):
        stored = sink.records()
        assert [r.event for r in stored] == ["approved", "deploying", "deployed", "verified"]
        assert [r.seq for r in stored] == [1, 2, 3, 4]
    assert all(report.ok and report.count == 4 for report in audit.verify())
    found = audit.find(deploying.promotion.uid, "deploying", spec_hash=deploying.promotion.spec_hash)
    assert found is not None and found.id == deploying.id


def test_unreachable_endpoint_refuses_quickly(samples: Any) -> None:
    sink = dynamodb.DynamoDBSink(
        "audit", dynamodb=dynamodb.client("us-east-1", f"http://127.0.0.1:{_closed_port()}")
    )
    started = time.monotonic()
    with pytest.raises(errors.AuditUnavailable, match="could not append a record"):
        trail.AuditTrail([sink]).write(samples.make("deploying", samples.promotion()))
    assert time.monotonic() - started < 30


def test_missing_bucket_refuses(aws_endpoint: str, unique: str, samples: Any) -> None:
    sink = s3.S3Sink(unique, s3=s3.client("us-east-1", aws_endpoint))
    with pytest.raises(errors.AuditUnavailable, match=f"S3 bucket {unique}"):
        trail.AuditTrail([sink]).write(samples.make("deploying", samples.promotion()))


def test_unwritable_sqlite_location_refuses(tmp_path: pathlib.Path, samples: Any) -> None:
    sink = sqlite.SqliteSink(tmp_path / "no-such-volume" / "audit.sqlite3")
    with pytest.raises(errors.AuditUnavailable, match="check that the volume is mounted"):
        trail.AuditTrail([sink]).write(samples.make("deploying", samples.promotion()))


class _Broken:
    """A sink with a bug: it raises something that is not AuditUnavailable."""

    name = "broken"

    def append(self, rec: record.AuditRecord) -> record.AuditRecord:
        raise RuntimeError("boom")

    def get(self, record_id: str) -> record.AuditRecord | None:
        return None

    def head(self, stream: str) -> chain.ChainHead | None:
        return None

    def records(self, stream: Any = None, since: Any = None, until: Any = None) -> list[record.AuditRecord]:
        return []

    def entries(self, stream: str) -> list[chain.Entry]:
        return []

    def streams(self) -> list[str]:
        return []


def test_any_sink_failure_is_an_audit_refusal(tmp_path: pathlib.Path, samples: Any) -> None:
    audit = trail.AuditTrail([sqlite.SqliteSink(tmp_path / "a.sqlite3"), _Broken()])
    with pytest.raises(errors.AuditUnavailable, match="broken could not append a record: RuntimeError: boom"):
        audit.write(samples.make("deploying", samples.promotion()))
