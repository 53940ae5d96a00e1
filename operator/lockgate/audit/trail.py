"""The audit trail: every configured sink at once, failing closed.

``write`` returns only when every sink holds the record; if any sink cannot, it raises
``AuditUnavailable`` naming the sink and what to do, and the caller must not proceed.
Because appends are idempotent by record id, calling ``write`` again later completes
the sinks that missed it without duplicating it in the ones that had it.

Each sink chains independently, so ``seq``/``hash`` of one record may differ between
sinks; ids and content are the same. The first sink is the primary: its copy is what
``write``, ``find`` and ``records`` return.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

from lockgate.audit import chain, errors, record, settings
from lockgate.audit.sinks import base


def _guard(sink: base.AuditSink, exc: Exception, action: str) -> errors.AuditUnavailable:
    if isinstance(exc, errors.AuditUnavailable):
        return exc
    return errors.AuditUnavailable(
        f"audit sink {sink.name} could not {action}: {type(exc).__name__}: {exc}; check the sink and retry",
        sink=sink.name,
    )


class AuditTrail:
    """All configured sinks, written together."""

    def __init__(self, sinks: Sequence[base.AuditSink]) -> None:
        if not sinks:
            raise ValueError("an audit trail needs at least one sink")
        self.sinks = list(sinks)

    @classmethod
    def from_settings(cls, config: settings.AuditSettings) -> AuditTrail:
        """Build the sinks named in ``config`` (boto3 clients are created here, not on import)."""
        made: list[base.AuditSink] = []
        for name in config.sinks:
            if name == "sqlite":
                from lockgate.audit.sinks import sqlite

                made.append(sqlite.SqliteSink(config.sqlite_path))
            elif name == "dynamodb":
                from lockgate.audit.sinks import dynamodb

                assert config.dynamodb_table  # checked by AuditSettings
                made.append(
                    dynamodb.DynamoDBSink(
                        config.dynamodb_table,
                        dynamodb=dynamodb.client(config.dynamodb_region, config.endpoint_url),
                    )
                )
            else:
                from lockgate.audit.sinks import s3

                assert config.s3_bucket  # checked by AuditSettings
                made.append(
                    s3.S3Sink(
                        config.s3_bucket,
                        s3=s3.client(config.s3_region or config.dynamodb_region, config.endpoint_url),
                        prefix=config.s3_prefix,
                    )
                )
        return cls(made)

    @property
    def primary(self) -> base.AuditSink:
        """The sink whose copy is returned to callers."""
        return self.sinks[0]

    def write(self, rec: record.AuditRecord) -> record.AuditRecord:
        """Append ``rec`` durably to every sink; raise ``AuditUnavailable`` if any cannot."""
        return self.write_all([rec])[0]

    def prepare(self) -> list[errors.AuditUnavailable]:
        """Open what each sink keeps open for writing (at start-up, not at the first decision).

        Returns the sinks' problems (nothing is raised: a sink that cannot be prepared now fails the
        first write closed, as it would have anyway).
        """
        problems: list[errors.AuditUnavailable] = []
        for sink in self.sinks:
            prepare = getattr(sink, "prepare", None)
            if not callable(prepare):
                continue
            try:
                prepare()
            except Exception as exc:
                problems.append(_guard(sink, exc, "be opened for writing"))
        return problems

    def write_all(self, recs: Sequence[record.AuditRecord]) -> list[record.AuditRecord]:
        """Append ``recs`` in order to every sink (in one transaction where the sink has ``append_all``)."""
        stored: list[record.AuditRecord] = []
        for index, sink in enumerate(self.sinks):
            batch = getattr(sink, "append_all", None)
            try:
                copies = batch(recs) if callable(batch) else [sink.append(rec) for rec in recs]
            except Exception as exc:
                failure = _guard(sink, exc, "append a record")
                named = ", ".join(f"{rec.event} for {rec.promotion.namespace}/{rec.promotion.name}" for rec in recs)
                raise errors.AuditUnavailable(
                    f"audit record {named} is not durable: {failure.message}", sink=sink.name
                ) from exc
            if index == 0:
                stored = list(copies)
        return stored

    def get(self, record_id: str) -> record.AuditRecord | None:
        """The record with this id if *every* sink holds it (i.e. the write completed)."""
        found: record.AuditRecord | None = None
        for index, sink in enumerate(self.sinks):
            try:
                copy = sink.get(record_id)
            except Exception as exc:
                raise _guard(sink, exc, "read a record") from exc
            if copy is None:
                return None
            if index == 0:
                found = copy
        return found

    def find(
        self, promotion_uid: str, event: str, *, spec_hash: str, key: str | None = None
    ) -> record.AuditRecord | None:
        """The record of ``event`` for this Promotion cycle, if it is durable in every sink.

        Use it after a restart: "was the deploying record written?" (if not, write it).
        """
        return self.get(record.record_id(promotion_uid, spec_hash, event, key))

    def empty_sinks(self) -> list[str]:
        """The sinks that hold no record at all: a new trail, or one that lost its records."""
        empty: list[str] = []
        for sink in self.sinks:
            holds = getattr(sink, "holds_records", None)  # a cheap probe where the sink has one
            try:
                if not (holds() if callable(holds) else sink.streams()):
                    empty.append(sink.name)
            except Exception as exc:
                raise _guard(sink, exc, "list streams") from exc
        return empty

    def streams(self) -> list[str]:
        """Streams in the primary sink."""
        try:
            return self.primary.streams()
        except Exception as exc:
            raise _guard(self.primary, exc, "list streams") from exc

    def records(
        self,
        stream: str | None = None,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
    ) -> list[record.AuditRecord]:
        """Records from the primary sink (one stream or all) with ``since <= at < until``."""
        try:
            return self.primary.records(stream, since, until)
        except Exception as exc:
            raise _guard(self.primary, exc, "read records") from exc

    def verify(self, stream: str | None = None) -> list[chain.VerifyReport]:
        """Walk every stream (or one) in every sink; one report per sink and stream."""
        reports: list[chain.VerifyReport] = []
        for sink in self.sinks:
            try:
                names = [stream] if stream else sink.streams()
                for name in names:
                    report = chain.verify(sink.entries(name), stream=name, head=sink.head(name))
                    reports.append(dataclasses.replace(report, sink=sink.name))
            except Exception as exc:
                raise _guard(sink, exc, "read the chain") from exc
        return reports
