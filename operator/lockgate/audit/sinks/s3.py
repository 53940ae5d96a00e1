"""The S3 sink: one immutable object per record, Object Lock retention when the bucket has it.

Layout under ``prefix``:

* ``<prefix><stream>/<seq 12 digits>.json`` - the canonical record. It is written with
  ``If-None-Match: *``, so the object key *is* the claim on that seq: two writers can
  never both store seq N (no fork), and a lost race re-reads the head and retries.
  The record id is also in the object's metadata (``x-amz-meta-record-id``).
* ``<prefix>ids/<id>.json`` - a pointer ``{stream, seq}`` written just before the
  record, so a retried append finds the stored record instead of duplicating it.

When the bucket has Object Lock enabled every record object gets COMPLIANCE-mode
retention until ``retentionUntil`` (at + retention): nobody, root included, can
delete or overwrite it before then (AU-9, AU-11).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.exceptions

from lockgate.audit import chain, errors, record
from lockgate.audit.sinks import base

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_RACE_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
_MISSING_CODES = ("NoSuchKey", "404", "NotFound")


def client(region: str | None, endpoint_url: str | None) -> S3Client:
    """An S3 client with short, bounded retries (an outage must surface, not hang)."""
    config = botocore.config.Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})
    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Sink(base.RecordsFromEntries):
    """Audit chain as objects in an S3 bucket."""

    def __init__(self, bucket: str, *, s3: S3Client, prefix: str = "lockgate/audit/") -> None:
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.name = f"s3({bucket}/{self.prefix})"
        self._client = s3
        self._object_lock: bool | None = None
        self._heads: dict[str, tuple[str, chain.ChainHead]] = {}

    def _fail(self, action: str, exc: BaseException) -> errors.AuditUnavailable:
        return errors.AuditUnavailable(
            f"audit sink S3 bucket {self.bucket} could not {action}: {exc}; "
            "check the bucket exists, the endpoint is reachable and the operator's role may write it",
            sink=self.name,
        )

    def record_key(self, stream: str, seq: int) -> str:
        """Where record ``seq`` of ``stream`` lives."""
        return f"{self.prefix}{stream}/{seq:012d}.json"

    def _id_key(self, record_id: str) -> str:
        return f"{self.prefix}ids/{record_id}.json"

    def object_lock_enabled(self) -> bool:
        """Whether the bucket has Object Lock enabled (asked once)."""
        if self._object_lock is None:
            try:
                conf = self._client.get_object_lock_configuration(Bucket=self.bucket)
                enabled = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
                self._object_lock = enabled == "Enabled"
            except botocore.exceptions.ClientError as exc:
                if "ObjectLockConfigurationNotFound" not in _code(exc):
                    raise
                self._object_lock = False
        return self._object_lock

    def _read(self, key: str) -> str | None:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                return None
            raise
        return body.decode("utf-8", "replace")

    def _by_id(self, record_id: str) -> record.AuditRecord | None:
        pointer = self._read(self._id_key(record_id))
        if pointer is None:
            return None
        where = json.loads(pointer)
        text = self._read(self.record_key(str(where["stream"]), int(where["seq"])))
        if text is None:
            return None
        stored = record.parse(text)
        return stored if stored.id == record_id else None

    def _keys(self, stream: str, start_after: str = "") -> list[str]:
        keys: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{self.prefix}{stream}/"}
        if start_after:
            kwargs["StartAfter"] = start_after
        for page in paginator.paginate(**kwargs):
            keys.extend(obj["Key"] for obj in page.get("Contents", []) if obj["Key"].endswith(".json"))
        return sorted(keys)

    def _head(self, stream: str) -> chain.ChainHead | None:
        cached = self._heads.get(stream)
        keys = self._keys(stream, cached[0] if cached else "")
        if not keys:
            return cached[1] if cached else None
        text = self._read(keys[-1])
        if text is None:
            return cached[1] if cached else None
        last = record.parse(text)
        head = chain.head_of(last)
        self._heads[stream] = (keys[-1], head)
        return head

    def append(self, rec: record.AuditRecord) -> record.AuditRecord:
        """Chain ``rec`` after the last object and store it with a create-only put."""
        try:
            lock = self.object_lock_enabled()
            for attempt in range(base.MAX_APPEND_ATTEMPTS):
                existing = self._by_id(rec.id)
                if existing is not None:
                    return existing
                linked = chain.link(rec, self._head(rec.stream))
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=self._id_key(linked.id),
                    Body=json.dumps({"stream": linked.stream, "seq": linked.seq}).encode(),
                    ContentType="application/json",
                )
                if self._put_record(linked, lock):
                    self._heads[linked.stream] = (
                        self.record_key(linked.stream, linked.seq),
                        chain.head_of(linked),
                    )
                    return linked
                time.sleep(min(0.01 * (attempt + 1), 0.2))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail("append a record", exc) from exc
        raise self._fail("append a record", RuntimeError("too much contention for the chain head"))

    def _put_record(self, linked: record.AuditRecord, lock: bool) -> bool:
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.record_key(linked.stream, linked.seq),
            "Body": linked.canonical(),
            "ContentType": "application/json",
            "IfNoneMatch": "*",
            "Metadata": {"record-id": linked.id, "event": linked.event, "hash": linked.hash},
        }
        if lock:
            kwargs["ObjectLockMode"] = "COMPLIANCE"
            kwargs["ObjectLockRetainUntilDate"] = linked.retention_until
        try:
            self._client.put_object(**kwargs)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in _RACE_CODES:
                return False
            raise
        return True

    def get(self, record_id: str) -> record.AuditRecord | None:
        """The stored record with this id, if any."""
        try:
            return self._by_id(record_id)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail("read a record", exc) from exc

    def head(self, stream: str) -> chain.ChainHead | None:
        """The last record object of ``stream``."""
        try:
            return self._head(stream)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail("read the chain head", exc) from exc

    def holds_records(self) -> bool:
        """Whether anything was ever recorded under the prefix (one key listed)."""
        try:
            page = self._client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
            return bool(page.get("KeyCount") or page.get("Contents"))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail("list the bucket", exc) from exc

    def streams(self) -> list[str]:
        """Every stream (top-level "folder" under the prefix, except ``ids/``)."""
        try:
            names: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(self.prefix) :].rstrip("/")
                    if name != "ids":
                        names.append(name)
            return sorted(names)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail("list streams", exc) from exc

    def entries(self, stream: str) -> list[chain.Entry]:
        """Every record object of ``stream`` in key (seq) order, as stored."""
        try:
            out: list[chain.Entry] = []
            for key in self._keys(stream):
                text = self._read(key) or ""
                seq_text = key.rsplit("/", 1)[-1].removesuffix(".json")
                seq = int(seq_text) if seq_text.isdigit() else -1
                try:
                    rid = str(json.loads(text).get("id", ""))
                except ValueError:
                    rid = ""
                out.append(chain.Entry(stream=stream, seq=seq, id=rid, text=text))
            return out
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail("read the chain", exc) from exc
