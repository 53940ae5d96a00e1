"""The S3 sink: one create-only object per record, COMPLIANCE retention when Object Lock is on."""

from __future__ import annotations

import concurrent.futures
import datetime
from typing import Any

import pytest

from lockgate.audit import trail
from lockgate.audit.sinks import s3


@pytest.fixture
def s3_client(aws_endpoint: str) -> Any:
    return s3.client("us-east-1", aws_endpoint)


def test_object_lock_bucket_gets_compliance_retention(s3_client: Any, unique: str, samples: Any) -> None:
    s3_client.create_bucket(Bucket=unique, ObjectLockEnabledForBucket=True)
    sink = s3.S3Sink(unique, s3=s3_client, prefix="audit")
    stored = sink.append(samples.make("deploying", samples.promotion(), retention="7y"))

    key = "audit/DEPLOY#production/000000000001.json"
    assert sink.record_key(stored.stream, stored.seq) == key
    head = s3_client.head_object(Bucket=unique, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == datetime.datetime(2033, 3, 2, 9, 0, tzinfo=datetime.UTC)
    assert head["Metadata"]["record-id"] == stored.id
    body = s3_client.get_object(Bucket=unique, Key=key)["Body"].read()
    assert body == stored.canonical()


def test_plain_bucket_stores_records_without_lock(s3_client: Any, unique: str, samples: Any) -> None:
    s3_client.create_bucket(Bucket=unique)
    sink = s3.S3Sink(unique, s3=s3_client)
    stored = [sink.append(r) for r in samples.lifecycle()]
    head = s3_client.head_object(Bucket=unique, Key=sink.record_key(stored[0].stream, 1))
    assert "ObjectLockMode" not in head
    assert sink.streams() == ["DEPLOY#production"]
    assert sink.records() == stored
    [report] = trail.AuditTrail([sink]).verify()
    assert report.ok and report.count == 4


def test_retry_never_duplicates_even_from_a_fresh_process(s3_client: Any, unique: str, samples: Any) -> None:
    s3_client.create_bucket(Bucket=unique)
    recs = samples.lifecycle()
    first = s3.S3Sink(unique, s3=s3_client).append(recs[0])
    restarted = s3.S3Sink(unique, s3=s3_client)  # no cached head: a restarted operator
    assert restarted.append(recs[0]) == first
    assert [r.seq for r in restarted.records()] == [1]


def test_two_concurrent_writers_never_fork(aws_endpoint: str, unique: str, samples: Any) -> None:
    s3.client("us-east-1", aws_endpoint).create_bucket(Bucket=unique)
    records = [r for _ in range(5) for r in samples.lifecycle()]

    def writer(chunk: list[Any]) -> None:
        sink = s3.S3Sink(unique, s3=s3.client("us-east-1", aws_endpoint))
        for rec in chunk:
            sink.append(rec)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(writer, [records[0::2], records[1::2]]))
    sink = s3.S3Sink(unique, s3=s3.client("us-east-1", aws_endpoint))
    [report] = trail.AuditTrail([sink]).verify()
    assert report.ok and report.count == 20
    assert sorted(r.id for r in sink.records()) == sorted(r.id for r in records)


def test_an_empty_prefix_is_told_apart_from_one_that_holds_records(s3_client: Any, unique: str, samples: Any) -> None:
    s3_client.create_bucket(Bucket=unique)
    sink = s3.S3Sink(unique, s3=s3_client)
    other = s3.S3Sink(unique, s3=s3_client, prefix="elsewhere/")
    assert trail.AuditTrail([sink]).empty_sinks() == [sink.name]
    sink.append(samples.lifecycle()[0])
    assert trail.AuditTrail([sink, other]).empty_sinks() == [other.name]
