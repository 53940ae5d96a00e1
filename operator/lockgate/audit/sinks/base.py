"""The contract every audit sink keeps, and the small helpers sinks share."""

from __future__ import annotations

import datetime
from typing import Protocol

from lockgate.audit import chain, record

MAX_APPEND_ATTEMPTS = 50


class AuditSink(Protocol):
    """A durable, append-only store of audit chains.

    ``append`` chains the record against the head stored *in this sink*, writes it
    durably and returns the stored (chained) record; appending a record whose id is
    already stored returns the stored one unchanged. When the sink cannot durably
    write it raises ``errors.AuditUnavailable`` and has written nothing.
    """

    name: str

    def append(self, rec: record.AuditRecord) -> record.AuditRecord: ...

    def get(self, record_id: str) -> record.AuditRecord | None: ...

    def head(self, stream: str) -> chain.ChainHead | None: ...

    def records(
        self,
        stream: str | None = None,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
    ) -> list[record.AuditRecord]: ...

    def entries(self, stream: str) -> list[chain.Entry]: ...

    def streams(self) -> list[str]: ...


def in_window(rec: record.AuditRecord, since: datetime.datetime | None, until: datetime.datetime | None) -> bool:
    """Whether ``rec.at`` lies in ``[since, until)``."""
    return (since is None or rec.at >= since) and (until is None or rec.at < until)


def parse_entries(entries: list[chain.Entry]) -> list[record.AuditRecord]:
    """Parse stored entries; a record that no longer parses is skipped (``verify`` reports it)."""
    out: list[record.AuditRecord] = []
    for entry in entries:
        try:
            out.append(record.parse(entry.text))
        except ValueError:
            continue
    return out


class RecordsFromEntries:
    """``records`` for every sink, from its ``streams`` and ``entries`` (one implementation, not three)."""

    def streams(self) -> list[str]:
        raise NotImplementedError

    def entries(self, stream: str) -> list[chain.Entry]:
        raise NotImplementedError

    def records(
        self,
        stream: str | None = None,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
    ) -> list[record.AuditRecord]:
        """Parsed records (of one stream or all), in stream then seq order, within ``[since, until)``."""
        out: list[record.AuditRecord] = []
        for name in [stream] if stream else self.streams():
            out.extend(r for r in parse_entries(self.entries(name)) if in_window(r, since, until))
        return out
