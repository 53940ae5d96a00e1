"""The DynamoDB sink keeps the seed's item shape, a TTL equal to the retention, and one chain."""

from __future__ import annotations

import concurrent.futures
import datetime
from typing import Any

import pytest

from lockgate.audit import trail
from lockgate.audit.sinks import dynamodb


@pytest.fixture
def table(aws_endpoint: str, unique: str) -> tuple[Any, str]:
    client = dynamodb.client("us-east-1", aws_endpoint)
    dynamodb.create_table(client, unique)
    return client, unique


def test_item_has_the_seed_shape_chain_fields_and_ttl(table: tuple[Any, str], samples: Any) -> None:
    client, name = table
    sink = dynamodb.DynamoDBSink(name, dynamodb=client)
    promo = samples.promotion()
    rec = samples.make(
        "deploying", promo, retention="3y", extra={"commit": "9f1c2e7", "pipelineRun": "ci/run/77"}
    )
    stored = sink.append(rec)

    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")
    items = client.query(
        TableName=name,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": "DEPLOY#production"}},
    )["Items"]
    item = next(i for i in items if i["SK"]["S"] != "HEAD")
    assert item["SK"]["S"] == "2026-03-02T09:00:00.000000Z#000000000001"
    plain = {k: next(iter(v.values())) for k, v in item.items()}
    assert plain["actor"] == "carol"
    assert plain["approver"] == "alice,sam"
    assert plain["commit"] == "9f1c2e7"
    assert plain["imageTag"] == "sha256:" + "ab" * 32
    assert plain["pipelineRun"] == "ci/run/77"
    assert (plain["scanStatus"], plain["testStatus"]) == ("passed", "passed")
    assert plain["changeDescription"] == "Fix the login timeout"
    assert plain["rollbackTarget"] == promo["status"]["previousImage"]
    assert (plain["seq"], plain["prevHash"], plain["hash"]) == ("1", "", stored.hash)
    assert plain["record"] == stored.canonical().decode()
    expected = datetime.datetime(2029, 3, 2, 9, 0, tzinfo=datetime.UTC)  # at + 3y
    assert int(plain["ttl"]) == int(expected.timestamp())
    head = next(i for i in items if i["SK"]["S"] == "HEAD")
    assert (head["seq"]["N"], head["hash"]["S"]) == ("1", stored.hash)


def test_retry_never_duplicates(table: tuple[Any, str], samples: Any) -> None:
    client, name = table
    sink = dynamodb.DynamoDBSink(name, dynamodb=client)
    recs = samples.lifecycle()
    first = sink.append(recs[0])
    sink.append(recs[1])
    assert sink.append(recs[0]) == first
    assert sink.get(recs[0].id) == first
    assert [r.event for r in sink.records()] == ["approved", "deploying"]


def test_two_concurrent_writers_never_fork(table: tuple[Any, str], samples: Any, aws_endpoint: str) -> None:
    _, name = table
    records = [r for _ in range(6) for r in samples.lifecycle()]

    def writer(chunk: list[Any]) -> None:
        # Each writer is a separate "operator replica" with its own client.
        sink = dynamodb.DynamoDBSink(name, dynamodb=dynamodb.client("us-east-1", aws_endpoint))
        for rec in chunk:
            sink.append(rec)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(writer, [records[0::2], records[1::2]]))
    sink = dynamodb.DynamoDBSink(name, dynamodb=dynamodb.client("us-east-1", aws_endpoint))
    [report] = trail.AuditTrail([sink]).verify()
    assert report.ok and report.count == 24
    assert sorted(r.seq for r in sink.records()) == list(range(1, 25))


def test_tampered_item_is_named_by_verify(table: tuple[Any, str], samples: Any) -> None:
    client, name = table
    sink = dynamodb.DynamoDBSink(name, dynamodb=client)
    stored = [sink.append(r) for r in samples.lifecycle()]
    key = {"PK": {"S": stored[1].stream}, "SK": {"S": dynamodb.sort_key(stored[1])}}
    item = client.get_item(TableName=name, Key=key)["Item"]
    client.update_item(
        TableName=name,
        Key=key,
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "record"},
        ExpressionAttributeValues={":r": {"S": item["record"]["S"].replace('"alice"', '"mallory"')}},
    )
    [report] = trail.AuditTrail([sink]).verify()
    assert (report.ok, report.first_broken_seq, report.problem) == (False, 2, "edited")


def test_an_empty_table_is_told_apart_from_one_that_holds_records(table: tuple[Any, str], samples: Any) -> None:
    client, name = table
    sink = dynamodb.DynamoDBSink(name, dynamodb=client)
    assert trail.AuditTrail([sink]).empty_sinks() == [sink.name]
    sink.append(samples.lifecycle()[0])
    assert trail.AuditTrail([sink]).empty_sinks() == []


class CountingClient:
    """The boto3 client, counting the calls that go over the network."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return method(*args, **kwargs)

        return counted


def test_a_decisions_records_are_written_together_in_two_round_trips(table: tuple[Any, str], samples: Any) -> None:
    """The records of one decision (``approved`` and ``deploying``) are one transaction, chained in order: the
    head's read and the write, where one append after another took three round trips each; a retried batch,
    or one holding a stored record, returns what is stored and writes nothing twice."""
    client, name = table
    counting = CountingClient(client)
    sink = dynamodb.DynamoDBSink(name, dynamodb=counting)  # type: ignore[arg-type]
    first, second, third, fourth = samples.lifecycle()
    stored = sink.append_all([first, second])
    assert [r.seq for r in stored] == [1, 2] and stored[1].prev_hash == stored[0].hash
    assert counting.calls == 2
    assert sink.append_all([first, second]) == stored  # a retry: nothing new
    assert sink.append_all([second, third, fourth, third]) == [
        stored[1],
        *sink.append_all([third, fourth]),
        sink.get(third.id),
    ]
    assert [r.id for r in sink.records()] == [first.id, second.id, third.id, fourth.id]
    assert [r.seq for r in sink.records()] == [1, 2, 3, 4]
    assert all(report.ok for report in trail.AuditTrail([sink]).verify())


def test_a_transaction_refused_for_another_reason_than_a_race_fails_at_once_saying_why(
    table: tuple[Any, str], samples: Any
) -> None:
    """Only a race (a stored id, a moved head, a conflict, throttling) is read again and retried; DynamoDB refusing
    the items themselves is reported with its reason, not as "contention" after fifty tries."""
    import botocore.exceptions

    from lockgate.audit import errors

    client, name = table
    counting = CountingClient(client)

    def refuse(**_: Any) -> None:
        counting.calls += 1
        reasons = [{"Code": "None"}, {"Code": "ValidationError", "Message": "Item size has exceeded the maximum"}]
        error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled [None, ValidationError]"}
        raise botocore.exceptions.ClientError(
            {"Error": error, "CancellationReasons": reasons},  # type: ignore[typeddict-unknown-key]
            "TransactWriteItems",
        )

    counting.transact_write_items = refuse  # type: ignore[method-assign]
    sink = dynamodb.DynamoDBSink(name, dynamodb=counting)  # type: ignore[arg-type]
    with pytest.raises(errors.AuditUnavailable, match="ValidationError"):
        sink.append(samples.lifecycle()[0])
    assert counting.calls == 2  # the head's read and one write
