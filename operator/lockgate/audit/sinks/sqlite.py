"""The embedded sink: one sqlite file (WAL, synchronous=FULL) on the operator's volume.

One table, ``audit_records``, with ``UNIQUE(id)`` and ``UNIQUE(stream, seq)``. An
append runs in ``BEGIN IMMEDIATE`` (one writer at a time, across processes), reads
the head, inserts the chained record and commits; so two writers never fork a stream
and a retried append returns the stored record.

Appends share one connection (opening one costs ~1.3 ms of the ~1.5 ms an append took, on the
path to every rollout). It is dropped after any error, and reopened when the file at ``path`` is
no longer the one it holds open (replaced: checked again inside each transaction), so a record is
never written to an unlinked file; a file that disappeared is not started anew (fail closed).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence

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
        self._lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._writer_file: tuple[int, int] | None = None  # (st_dev, st_ino) of the file it holds open
        self._had_file = False  # once written, a vanished file is not silently started anew

    def _fail(self, action: str, exc: BaseException) -> errors.AuditUnavailable:
        return errors.AuditUnavailable(
            f"audit sink sqlite at {self.path} could not {action}: {exc}; "
            "check that the volume is mounted, writable and not full",
            sink=self.name,
        )

    def _open(self, *, writer: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=not writer)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            if writer or not self._ready:  # a (re)opened writer may face a new, empty file
                conn.executescript(_SCHEMA)
                self._ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _connect(self, action: str) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._open()
        except sqlite3.Error as exc:
            raise self._fail(action, exc) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise self._fail(action, exc) from exc
        finally:
            conn.close()

    @staticmethod
    def _file_id(path: pathlib.Path) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    @contextlib.contextmanager
    def _writing(self, action: str) -> Iterator[sqlite3.Connection]:
        """The shared append connection, one writer thread at a time; dropped after any error."""
        with self._lock:
            if self._writer is not None and self._file_id(self.path) != self._writer_file:
                self._drop_writer()  # the file was deleted or replaced under us
            if self._writer is None and self._had_file and self._file_id(self.path) is None:
                raise errors.AuditUnavailable(
                    f"audit sink sqlite: the audit file {self.path} this operator was writing has disappeared "
                    "(check that the volume is mounted); nothing is recorded (and nothing deploys) until it is "
                    "restored (a restarted operator stays stopped too while Promotions say they were recorded; "
                    "LOCKGATE_AUDIT_NEW_TRAIL starts a new trail on purpose, keep the evidence)",
                    sink=self.name,
                )
            try:
                if self._writer is None:
                    self._writer = self._open(writer=True)
                    self._writer_file = self._file_id(self.path)
                    self._had_file = True
                yield self._writer
            except sqlite3.Error as exc:
                self._drop_writer()
                raise self._fail(action, exc) from exc
            except BaseException:
                self._drop_writer()
                raise

    def _drop_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):
                self._writer.close()
        self._writer, self._writer_file = None, None

    def prepare(self) -> None:
        """Open the append connection now (creating the file and its tables if there is none yet)."""
        with self._writing("open the audit file for writing"):
            pass

    def close(self) -> None:
        """Close the append connection (a later append opens it again)."""
        with self._lock:
            self._drop_writer()

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
        return self.append_all([rec])[0]

    def append_all(self, recs: Sequence[record.AuditRecord]) -> list[record.AuditRecord]:
        """Chain ``recs`` in order and commit them in one transaction (one fsync); idempotent by id."""
        with self._writing("append a record") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if self._file_id(self.path) != self._writer_file:  # replaced between the check and the lock
                    raise sqlite3.OperationalError("the audit file was replaced while it was open")
                stored = self._insert_all(conn, recs)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return stored

    def _insert_all(self, conn: sqlite3.Connection, recs: Sequence[record.AuditRecord]) -> list[record.AuditRecord]:
        """Insert the records not stored yet, each chained after the one before in its stream.

        A record whose id is stored already (a retried write) is returned as stored, unchanged; the
        statements are one lookup of the ids, one head read per stream, and one insert per table.
        """
        marks = ",".join("?" * len(recs))
        stored = {  # an id also holds for a repeat within ``recs``: the first one is the record
            str(rid): record.parse(doc)
            for rid, doc in conn.execute(
                f"SELECT id, document FROM audit_records WHERE id IN ({marks})", [r.id for r in recs]
            )
        }
        heads: dict[str, chain.ChainHead | None] = {}
        rows: list[tuple[str | int, ...]] = []
        for rec in recs:
            if rec.id in stored:
                continue
            if rec.stream not in heads:
                heads[rec.stream] = self._head(conn, rec.stream)
            linked, text = chain.link_text(rec, heads[rec.stream])
            heads[rec.stream] = chain.head_of(linked)
            stored[rec.id] = linked
            rows.append(
                (
                    linked.stream,
                    linked.seq,
                    linked.id,
                    record.format_time(linked.at),
                    linked.event,
                    linked.promotion.uid,
                    linked.prev_hash,
                    linked.hash,
                    text,
                )
            )
        if rows:
            conn.executemany(
                "INSERT INTO audit_records"
                " (stream, seq, id, at, event, promotion_uid, prev_hash, hash, document)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.executemany(
                "INSERT INTO chain_heads (stream, seq, hash, id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(stream) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, id = excluded.id",
                [(h.stream, h.seq, h.hash, h.id) for h in heads.values() if h is not None],
            )
        return [stored[rec.id] for rec in recs]

    def get(self, record_id: str) -> record.AuditRecord | None:
        """The stored record with this id, if any."""
        with self._connect("read a record") as conn:
            return self._stored(conn, record_id)

    def head(self, stream: str) -> chain.ChainHead | None:
        """The last record of ``stream`` in this file."""
        with self._connect("read the chain head") as conn:
            return self._head(conn, stream)

    def holds_records(self) -> bool:
        """Whether anything was ever recorded here (one indexed row read)."""
        with self._connect("read the chain head") as conn:
            found = conn.execute(
                "SELECT 1 FROM chain_heads UNION ALL SELECT 1 FROM audit_records LIMIT 1"
            ).fetchone()
            return found is not None

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
