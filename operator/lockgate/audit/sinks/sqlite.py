"""The embedded sink: one sqlite file (WAL, synchronous=FULL) on the operator's volume.

One table, ``audit_records``, with ``UNIQUE(id)`` and ``UNIQUE(stream, seq)``. An
append runs in ``BEGIN IMMEDIATE`` (one writer at a time, across processes), reads
the head, inserts the chained record and commits; so two writers never fork a stream
and a retried append returns the stored record.
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from collections.abc import Iterator

from lockgate.audit import chain, errors, record
from lockgate.audit.sinks import base

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_records (
    stream        TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    id            TEXT    NOT NULL UNIQUE,
    at            TEXT    NOT NULL,
    event         TEXT    NOT NULL,
    promotion_uid TEXT    NOT NULL,
    prev_hash     TEXT    NOT NULL,
    hash          TEXT    NOT NULL,
    document      TEXT    NOT NULL,
    UNIQUE (stream, seq)
);
CREATE TABLE IF NOT EXISTS chain_heads (
    stream TEXT    PRIMARY KEY,
    seq    INTEGER NOT NULL,
    hash   TEXT    NOT NULL,
    id     TEXT    NOT NULL
)
"""


class SqliteSink(base.RecordsFromEntries):
    """Audit chain in a local sqlite file."""

    def __init__(self, path: pathlib.Path | str, *, timeout: float = 30.0) -> None:
        self.path = pathlib.Path(path)
        self.name = f"sqlite({self.path})"
        self.timeout = timeout
        self._ready = False

    def _fail(self, action: str, exc: BaseException) -> errors.AuditUnavailable:
        return errors.AuditUnavailable(
            f"audit sink sqlite at {self.path} could not {action}: {exc}; "
            "check that the volume is mounted, writable and not full",
            sink=self.name,
        )

    @contextlib.contextmanager
    def _connect(self, action: str) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._fail(action, exc) from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            if not self._ready:
                conn.executescript(_SCHEMA)
                self._ready = True
            yield conn
        except sqlite3.Error as exc:
            raise self._fail(action, exc) from exc
        finally:
            conn.close()

    @staticmethod
    def _stored(conn: sqlite3.Connection, record_id: str) -> record.AuditRecord | None:
        row = conn.execute("SELECT document FROM audit_records WHERE id = ?", (record_id,)).fetchone()
        return record.parse(row[0]) if row else None

    @staticmethod
    def _head(conn: sqlite3.Connection, stream: str) -> chain.ChainHead | None:
        """The recorded head (kept apart from the rows, so deleting the newest rows shows), else the last row."""
        row = conn.execute("SELECT seq, hash, id FROM chain_heads WHERE stream = ?", (stream,)).fetchone()
        if row is None:  # a file written before heads were recorded
            row = conn.execute(
                "SELECT seq, hash, id FROM audit_records WHERE stream = ? ORDER BY seq DESC LIMIT 1", (stream,)
            ).fetchone()
        return chain.ChainHead(stream=stream, seq=int(row[0]), hash=str(row[1]), id=str(row[2])) if row else None

    def append(self, rec: record.AuditRecord) -> record.AuditRecord:
        """Chain ``rec`` after this file's head and commit it durably (idempotent by id)."""
        with self._connect("append a record") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                existing = self._stored(conn, rec.id)
                if existing is not None:
                    conn.execute("ROLLBACK")
                    return existing
                linked = chain.link(rec, self._head(conn, rec.stream))
                conn.execute(
                    "INSERT INTO audit_records"
                    " (stream, seq, id, at, event, promotion_uid, prev_hash, hash, document)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        linked.stream,
                        linked.seq,
                        linked.id,
                        record.format_time(linked.at),
                        linked.event,
                        linked.promotion.uid,
                        linked.prev_hash,
                        linked.hash,
                        linked.canonical().decode("utf-8"),
                    ),
                )
                conn.execute(
                    "INSERT INTO chain_heads (stream, seq, hash, id) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT(stream) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, id = excluded.id",
                    (linked.stream, linked.seq, linked.hash, linked.id),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return linked

    def get(self, record_id: str) -> record.AuditRecord | None:
        """The stored record with this id, if any."""
        with self._connect("read a record") as conn:
            return self._stored(conn, record_id)

    def head(self, stream: str) -> chain.ChainHead | None:
        """The last record of ``stream`` in this file."""
        with self._connect("read the chain head") as conn:
            return self._head(conn, stream)

    def streams(self) -> list[str]:
        """Every stream in this file."""
        with self._connect("list streams") as conn:
            return [  # a stream whose rows were all deleted still has its head
                str(r[0])
                for r in conn.execute(
                    "SELECT stream FROM audit_records UNION SELECT stream FROM chain_heads ORDER BY stream"
                )
            ]

    def entries(self, stream: str) -> list[chain.Entry]:
        """The stored rows of ``stream`` in seq order, documents as raw text."""
        with self._connect("read the chain") as conn:
            rows = conn.execute(
                "SELECT seq, id, CAST(document AS BLOB) FROM audit_records WHERE stream = ? ORDER BY seq",
                (stream,),
            ).fetchall()
        return [
            chain.Entry(stream=stream, seq=int(seq), id=str(rid), text=bytes(doc).decode("utf-8", "replace"))
            for seq, rid, doc in rows
        ]
