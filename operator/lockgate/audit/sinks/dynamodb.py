"""The DynamoDB sink: the seed's deployment-record table, plus the hash chain.

Items (one table, on-demand):

* record ``PK=DEPLOY#<env>``, ``SK=<at UTC ISO>#<seq 12 digits>``: the seed's attributes
  (actor, approver, commit, imageTag, pipelineRun, scanStatus, testStatus,
  changeDescription, rollbackTarget, ``ttl`` = at + retention in epoch seconds), the
  chain fields (recordId, seq, prevHash, hash) and ``record`` (the canonical JSON);
* head ``PK=DEPLOY#<env>``, ``SK=HEAD``: seq, hash and id of the last record;
* id claim ``PK=RECORD#<id>``, ``SK=RECORD``: makes appends idempotent by record id.

All three are written in one ``TransactWriteItems``: the record and the id claim only
if absent, the head only if it still holds the seq/hash the record was chained to.
A retry of the same record, or a second writer racing for the same seq, is cancelled
and re-reads instead of forking the chain. ``append_all`` writes a decision's records (and
their streams' heads) in one such transaction: two round trips (the head, the write) where
one append after another took three each.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.exceptions

from lockgate.audit import chain, errors, record
from lockgate.audit.sinks import base

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

HEAD_SK = "HEAD"
#: DynamoDB's limit on the items of one TransactWriteItems.
MAX_TRANSACTION_ITEMS = 100
#: Why a transaction may be cancelled by a concurrent or repeated write, or load: read again and retry.
_RACE_REASONS = frozenset({"ConditionalCheckFailed", "TransactionConflict", "ThrottlingError"})


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _n(value: int) -> dict[str, Any]:
    return {"N": str(value)}


def sort_key(rec: record.AuditRecord) -> str:
    """``<timestamp>#<seq>``: the seed's SK, sortable as text."""
    return f"{record.format_time(rec.at)}#{rec.seq:012d}"


def _status(evidence: dict[str, Any], name: str) -> str | None:
    item = evidence.get(name)
    return str(item.get("status")) if isinstance(item, dict) and item.get("status") is not None else None


def _image_tag(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else (image.split("@", 1)[1] if "@" in image else "latest")


def item_for(rec: record.AuditRecord) -> dict[str, Any]:
    """The DynamoDB item of a chained record (seed attributes + chain + canonical record)."""
    attrs: dict[str, str | None] = {
        "actor": rec.requester.username if rec.requester else None,
        "approver": ",".join(a.username for a in rec.approvers) or None,
        "commit": str(rec.extra["commit"]) if rec.extra.get("commit") else None,
        "image": rec.image,
        "imageTag": _image_tag(rec.image),
        "digest": rec.digest,
        "pipelineRun": str(rec.extra["pipelineRun"]) if rec.extra.get("pipelineRun") else None,
        "scanStatus": _status(rec.evidence, "securityScan"),
        "testStatus": _status(rec.evidence, "integrationTests"),
        "changeDescription": rec.change.description,
        "ticket": rec.change.ticket,
        "rollbackTarget": rec.previous_image,
        "event": rec.event,
        "at": record.format_time(rec.at),
        "promotion": f"{rec.promotion.namespace}/{rec.promotion.name}",
        "promotionUid": rec.promotion.uid,
        "specHash": rec.promotion.spec_hash,
        "author": rec.author,
        "operator": rec.operator,
        "recordId": rec.id,
        "prevHash": rec.prev_hash,
        "hash": rec.hash,
        "record": rec.canonical().decode("utf-8"),
    }
    item: dict[str, Any] = {"PK": _s(rec.stream), "SK": _s(sort_key(rec))}
    item.update({k: _s(v) for k, v in attrs.items() if v})
    item["prevHash"] = _s(rec.prev_hash)  # empty for the first record of a stream: still present
    item["seq"] = _n(rec.seq)
    item["ttl"] = _n(int(rec.retention_until.timestamp()))
    return item


def create_table(client: DynamoDBClient, table: str) -> None:
    """Create the audit table (PK/SK strings, on-demand) and enable TTL on ``ttl``. For dev/tests."""
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    client.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})


def client(region: str | None, endpoint_url: str | None) -> DynamoDBClient:
    """A DynamoDB client with short, bounded retries (an outage must surface, not hang)."""
    config = botocore.config.Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})
    return boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url, config=config)


class DynamoDBSink(base.RecordsFromEntries):
    """Audit chain in a DynamoDB table with the seed's key schema."""

    def __init__(self, table: str, *, dynamodb: DynamoDBClient) -> None:
        self.table = table
        self.name = f"dynamodb({table})"
        self._client = dynamodb

    def _fail(self, action: str, exc: BaseException) -> errors.AuditUnavailable:
        return errors.AuditUnavailable(
            f"audit sink DynamoDB table {self.table} could not {action}: {exc}; "
            "check the table exists, the endpoint is reachable and the operator's role may write it",
            sink=self.name,
        )

    def _get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self.table, Key={"PK": _s(pk), "SK": _s(sk)}, ConsistentRead=True)
        item = response.get("Item")
        return dict(item) if item else None

    def _by_id(self, record_id: str) -> record.AuditRecord | None:
        claim = self._get_item(f"RECORD#{record_id}", "RECORD")
        if claim is None:
            return None
        stored = self._get_item(claim["stream"]["S"], claim["sk"]["S"])
        return record.parse(stored["record"]["S"]) if stored else None

    def _head(self, stream: str) -> chain.ChainHead | None:
        item = self._get_item(stream, HEAD_SK)
        if item is None:
            return None
        return chain.ChainHead(
            stream=stream, seq=int(item["seq"]["N"]), hash=item["hash"]["S"], id=item["recordId"]["S"]
        )

    def append(self, rec: record.AuditRecord) -> record.AuditRecord:
        """Chain and write ``rec`` in one conditional transaction; idempotent by id."""
        return self.append_all([rec])[0]

    def append_all(self, recs: Sequence[record.AuditRecord]) -> list[record.AuditRecord]:
        """Chain ``recs`` in order and write them in one conditional transaction; idempotent by id.

        The first try assumes none is stored (the usual case: the head's read, then the write); a
        cancelled write looks the ids up, so a retry returns the stored records unchanged, and chains
        those not stored yet after the head, in their order.
        """
        if 2 * len(recs) + len({r.stream for r in recs}) > MAX_TRANSACTION_ITEMS:
            return [self.append_all([rec])[0] for rec in recs]
        try:
            for attempt in range(base.MAX_APPEND_ATTEMPTS):
                stored = self._stored(recs) if attempt else {}
                if all(rec.id in stored for rec in recs):
                    return [stored[rec.id] for rec in recs]
                before = {stream: self._head(stream) for stream in {r.stream for r in recs if r.id not in stored}}
                heads = dict(before)
                linked: list[record.AuditRecord] = []
                for rec in recs:
                    if rec.id not in stored:  # a repeat within ``recs``: the first one is the record
                        stored[rec.id] = chain.link(rec, heads[rec.stream])
                        heads[rec.stream] = chain.head_of(stored[rec.id])
                        linked.append(stored[rec.id])
                if self._try_write(linked, before):
                    return [stored[rec.id] for rec in recs]
                time.sleep(min(0.01 * (attempt + 1), 0.2) * random.uniform(0.5, 1.5))  # writers racing part ways
        except botocore.exceptions.BotoCoreError as exc:
            raise self._fail("append a record", exc) from exc
        except botocore.exceptions.ClientError as exc:
            raise self._fail("append a record", exc) from exc
        raise self._fail("append a record", RuntimeError("too much contention for the chain head"))

    def _stored(self, recs: Sequence[record.AuditRecord]) -> dict[str, record.AuditRecord]:
        """The records of ``recs`` stored already, by id."""
        found = {rec.id: self._by_id(rec.id) for rec in recs}
        return {rid: rec for rid, rec in found.items() if rec is not None}

    def _try_write(self, linked: Sequence[record.AuditRecord], before: Mapping[str, chain.ChainHead | None]) -> bool:
        """Each record with its id claim, and each stream's new head if it still is ``before``'s."""
        puts: list[dict[str, Any]] = []
        last: dict[str, tuple[record.AuditRecord, dict[str, Any]]] = {}
        for rec in linked:
            item = item_for(rec)
            claim = {
                "PK": _s(f"RECORD#{rec.id}"),
                "SK": _s("RECORD"),
                "stream": _s(rec.stream),
                "sk": item["SK"],
                "seq": _n(rec.seq),
                "ttl": item["ttl"],
            }
            puts += [
                {"TableName": self.table, "Item": it, "ConditionExpression": "attribute_not_exists(PK)"}
                for it in (item, claim)
            ]
            last[rec.stream] = (rec, item)
        for stream, (rec, item) in last.items():
            head_put: dict[str, Any] = {
                "TableName": self.table,
                "Item": {
                    "PK": _s(stream),
                    "SK": _s(HEAD_SK),
                    "seq": _n(rec.seq),
                    "hash": _s(rec.hash),
                    "recordId": _s(rec.id),
                    "recordSK": item["SK"],
                },
                "ConditionExpression": "attribute_not_exists(PK)",
            }
            head = before.get(stream)
            if head is not None:
                head_put["ConditionExpression"] = "seq = :seq AND #h = :hash"
                head_put["ExpressionAttributeNames"] = {"#h": "hash"}
                head_put["ExpressionAttributeValues"] = {":seq": _n(head.seq), ":hash": _s(head.hash)}
            puts.append(head_put)
        try:
            self._client.transact_write_items(TransactItems=[{"Put": put} for put in puts])  # type: ignore[typeddict-item]
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            reasons = {r.get("Code") for r in exc.response.get("CancellationReasons") or []} - {"None", None}
            if code == "TransactionCanceledException" and not reasons <= _RACE_REASONS:
                raise  # not a race another write could win (a malformed item, say): say so, do not retry
            if code in (
                "TransactionCanceledException",
                "ConditionalCheckFailedException",
                "TransactionConflictException",
            ):
                return False  # an id stored already, or another writer moved the head: read again
            raise
        return True

    def get(self, record_id: str) -> record.AuditRecord | None:
        """The stored record with this id, if any."""
        try:
            return self._by_id(record_id)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail("read a record", exc) from exc

    def head(self, stream: str) -> chain.ChainHead | None:
        """The head item of ``stream``."""
        try:
            return self._head(stream)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail("read the chain head", exc) from exc

    def holds_records(self) -> bool:
        """Whether anything was ever recorded here (a one-item scan: records, id claims and heads all count)."""
        try:
            page = self._client.scan(TableName=self.table, Limit=1, ProjectionExpression="PK")
            return bool(page.get("Items"))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail("read the table", exc) from exc

    def streams(self) -> list[str]:
        """Every stream with a head item."""
        try:
            names: list[str] = []
            paginator = self._client.get_paginator("scan")
            for page in paginator.paginate(
                TableName=self.table,
                FilterExpression="SK = :head",
                ExpressionAttributeValues={":head": _s(HEAD_SK)},
                ProjectionExpression="PK",
            ):
                names.extend(item["PK"]["S"] for item in page.get("Items", []))
            return sorted(names)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail("list streams", exc) from exc

    def entries(self, stream: str) -> list[chain.Entry]:
        """The record items of ``stream`` in seq order, documents as stored."""
        try:
            out: list[chain.Entry] = []
            paginator = self._client.get_paginator("query")
            for page in paginator.paginate(
                TableName=self.table,
                KeyConditionExpression="PK = :pk",
                ExpressionAttributeValues={":pk": _s(stream)},
                ConsistentRead=True,
            ):
                for item in page.get("Items", []):
                    if item["SK"]["S"] == HEAD_SK:
                        continue
                    out.append(
                        chain.Entry(
                            stream=stream,
                            seq=int(item["seq"]["N"]),
                            id=item.get("recordId", {}).get("S", ""),
                            text=item.get("record", {}).get("S", ""),
                        )
                    )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail("read the chain", exc) from exc
        return sorted(out, key=lambda e: e.seq)
