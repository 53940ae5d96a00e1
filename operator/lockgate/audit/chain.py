"""The hash chain (pure): link a record to its stream's head, and verify a stream.

Each record carries ``seq`` (1, 2, 3 … within its stream), ``prevHash`` (the previous
record's ``hash``; empty for the first) and ``hash`` (sha256 of its canonical JSON
without ``hash``). Editing a record breaks its own hash; re-computing that hash breaks
the next record's ``prevHash``; deleting, inserting or reordering records breaks the
``seq``/``prevHash`` sequence. ``verify`` names the first broken record and, where the
evidence allows, what happened to it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from lockgate.audit import record as record_

Problem = Literal["edited", "deleted", "reordered", "inserted"]


@dataclasses.dataclass(frozen=True)
class ChainHead:
    """The last record of a stream: what the next record links to."""

    stream: str
    seq: int
    hash: str
    id: str = ""


@dataclasses.dataclass(frozen=True)
class Entry:
    """A record exactly as a sink stores it: its key columns and its raw document text.

    Verifying entries (rather than parsed records) hashes the stored bytes themselves,
    so even an edit that makes the document unreadable is reported, not crashed on.
    """

    stream: str
    seq: int
    id: str
    text: str


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """The outcome of walking one stream."""

    stream: str
    ok: bool
    count: int
    first_broken_seq: int | None = None
    first_broken_id: str | None = None
    problem: Problem | None = None
    detail: str = ""
    sink: str | None = None

    def summary(self) -> str:
        """One line for people: ``chain intact: N records`` or what broke where."""
        where = f"{self.sink}:{self.stream}" if self.sink else self.stream
        if self.ok:
            return f"{where}: chain intact: {self.count} records"
        return (
            f"{where}: chain BROKEN at record seq {self.first_broken_seq} (id {self.first_broken_id}): "
            f"{self.problem}: {self.detail}"
        )


def link(record: record_.AuditRecord, head: ChainHead | None) -> record_.AuditRecord:
    """Return ``record`` chained after ``head`` (``None`` starts the stream at seq 1)."""
    return link_text(record, head)[0]


def link_text(record: record_.AuditRecord, head: ChainHead | None) -> tuple[record_.AuditRecord, str]:
    """``link``, with the chained record's canonical JSON (what a sink stores), serialised once."""
    if head is not None and head.stream != record.stream:
        raise ValueError(f"cannot link a {record.stream} record to the head of {head.stream}")
    seq = head.seq + 1 if head else 1
    prev = head.hash if head else ""
    unhashed = record.model_copy(update={"seq": seq, "prev_hash": prev, "hash": ""})
    digest, text = record_.sealed(unhashed.document())
    return unhashed.model_copy(update={"hash": digest}), text.decode("utf-8")


def head_of(record: record_.AuditRecord) -> ChainHead:
    """The chain head a chained ``record`` makes."""
    return ChainHead(stream=record.stream, seq=record.seq, hash=record.hash, id=record.id)


@dataclasses.dataclass
class _Item:
    seq: int
    id: str
    doc: dict[str, Any] | None
    error: str = ""
    key_seq: int | None = None

    @property
    def hash(self) -> str:
        return str(self.doc.get("hash", "")) if self.doc else ""

    @property
    def prev(self) -> str:
        return str(self.doc.get("prevHash", "")) if self.doc else ""


def _item(entry: record_.AuditRecord | Entry) -> _Item:
    if isinstance(entry, record_.AuditRecord):
        return _Item(seq=entry.seq, id=entry.id, doc=entry.document())
    try:
        doc = json.loads(entry.text)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        return _Item(seq=entry.seq, id=entry.id, doc=None, error=f"stored document is unreadable ({exc})")
    return _Item(seq=entry.seq, id=entry.id, doc=doc, key_seq=entry.seq)


def _broken(stream: str, count: int, item: _Item, problem: Problem, detail: str) -> VerifyReport:
    return VerifyReport(
        stream=stream,
        ok=False,
        count=count,
        first_broken_seq=item.seq,
        first_broken_id=item.id,
        problem=problem,
        detail=detail,
    )


def verify(
    records: Sequence[record_.AuditRecord | Entry],
    *,
    stream: str | None = None,
    head: ChainHead | None = None,
) -> VerifyReport:
    """Walk one stream in the given order and report the first broken link.

    ``head`` (the sink's own notion of the last record) also catches records deleted
    from the end. Problems: ``edited`` (content no longer matches its hash, or a record
    was edited and re-hashed so its successor no longer links to it), ``deleted`` (a
    gap in ``seq``), ``reordered`` (records out of chain order), ``inserted`` (a record
    that does not belong: duplicated ``seq`` or a successor that skips over it).
    """
    items = [_item(r) for r in records]
    name = (
        stream
        or (head.stream if head else "")
        or (str(items[0].doc.get("stream")) if items and items[0].doc else "")
    )
    hashes = {it.hash: idx for idx, it in enumerate(items) if it.hash}
    seen_seqs: set[int] = set()
    for idx, it in enumerate(items):
        if it.doc is None:
            return _broken(name, len(items), it, "edited", it.error)
        doc_seq, doc_id = it.doc.get("seq"), it.doc.get("id")
        if it.key_seq is not None and doc_seq != it.key_seq:
            return _broken(
                name,
                len(items),
                it,
                "reordered",
                f"stored at seq {it.key_seq} but the record says seq {doc_seq}",
            )
        if doc_id != it.id:
            return _broken(
                name, len(items), it, "edited", f"stored under id {it.id} but the record says {doc_id}"
            )
        if doc_seq in seen_seqs:
            # Two records claim one seq: the intruder is the one the chain does not continue from.
            earlier = next(other for other in items[:idx] if other.seq == doc_seq)
            follows_this = idx + 1 < len(items) and items[idx + 1].prev == it.hash
            intruder = earlier if follows_this else it
            return _broken(name, len(items), intruder, "inserted", f"a second record claims seq {doc_seq}")
        expected_seq = items[idx - 1].seq + 1 if idx else 1
        expected_prev = items[idx - 1].hash if idx else ""
        if record_.content_hash(it.doc) != it.hash:
            return _broken(name, len(items), it, "edited", "its content no longer matches its hash")
        if it.seq == expected_seq and it.prev == expected_prev:
            seen_seqs.add(it.seq)
            continue
        if it.seq < expected_seq:
            return _broken(
                name,
                len(items),
                it,
                "reordered",
                f"seq {it.seq} comes after seq {expected_seq - 1}",
            )
        if it.seq > expected_seq:
            later = any(other.seq == expected_seq for other in items[idx + 1 :])
            if later:
                return _broken(
                    name, len(items), it, "reordered", f"seq {it.seq} comes before seq {expected_seq}"
                )
            missing = (
                f"seq {expected_seq}" if it.seq == expected_seq + 1 else f"seq {expected_seq}-{it.seq - 1}"
            )
            return _broken(name, len(items), it, "deleted", f"{missing} missing before this record")
        # Right seq, wrong prevHash: what does it point at instead?
        target = hashes.get(it.prev)
        if idx >= 2 and target == idx - 2:
            return _broken(
                name,
                len(items),
                items[idx - 1],
                "inserted",
                f"seq {it.seq} links to seq {items[idx - 2].seq}, skipping this record",
            )
        if target is not None:
            return _broken(
                name,
                len(items),
                it,
                "reordered",
                f"it links to seq {items[target].seq}, not to seq {expected_seq - 1}",
            )
        if idx == 0:
            return _broken(
                name, len(items), it, "deleted", "the first record links to a record that is missing"
            )
        return _broken(
            name,
            len(items),
            items[idx - 1],
            "edited",
            f"seq {it.seq} was chained to different content: this record was edited and re-hashed",
        )
    if head is not None and items and head.seq > items[-1].seq:
        last = items[-1]
        return VerifyReport(
            stream=name,
            ok=False,
            count=len(items),
            first_broken_seq=last.seq + 1,
            first_broken_id=head.id or None,
            problem="deleted",
            detail=f"the stream head says seq {head.seq} but the last record is seq {last.seq}",
        )
    if head is not None and not items and head.seq > 0:
        return VerifyReport(
            stream=name,
            ok=False,
            count=0,
            first_broken_seq=1,
            first_broken_id=None,
            problem="deleted",
            detail=f"the stream head says seq {head.seq} but no records remain",
        )
    return VerifyReport(stream=name, ok=True, count=len(items))


def verify_documents(documents: Sequence[Mapping[str, Any]], *, stream: str | None = None) -> VerifyReport:
    """Verify exported documents (e.g. a JSON export) in the order given."""
    entries = [
        Entry(
            stream=str(d.get("stream", "")),
            seq=int(d.get("seq", 0)),
            id=str(d.get("id", "")),
            text=record_.canonical_json(dict(d)).decode("utf-8"),
        )
        for d in documents
    ]
    return verify(entries, stream=stream)
