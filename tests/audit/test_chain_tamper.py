"""Any edit to a stored chain is detected and the first broken record is named."""

from __future__ import annotations

import datetime
import itertools
import json
from typing import Any

import hypothesis
from hypothesis import strategies

from lockgate.audit import chain, record


def _chain(samples: Any, n: int = 5) -> list[record.AuditRecord]:
    promo = samples.promotion()
    events = ["approved", "deploying", "deployed", "verified", "failed", "rolled-back", "superseded"]
    head: chain.ChainHead | None = None
    out = []
    for i in range(n):
        linked = chain.link(samples.make(events[i], promo, i), head)
        head = chain.head_of(linked)
        out.append(linked)
    return out


def _entry(rec: record.AuditRecord, text: str | None = None, seq: int | None = None) -> chain.Entry:
    return chain.Entry(
        stream=rec.stream,
        seq=rec.seq if seq is None else seq,
        id=rec.id,
        text=text if text is not None else rec.canonical().decode(),
    )


def _rehash(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    doc["hash"] = record.content_hash(doc)
    return doc


def test_intact_chain_verifies(samples: Any) -> None:
    recs = _chain(samples)
    report = chain.verify(recs, head=chain.head_of(recs[-1]))
    assert report.ok and report.count == 5
    assert report.summary() == "DEPLOY#production: chain intact: 5 records"
    assert [r.seq for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0].prev_hash == "" and all(b.prev_hash == a.hash for a, b in itertools.pairwise(recs))


def test_edited_field_is_named(samples: Any) -> None:
    recs = _chain(samples)
    doc = recs[2].document()
    doc["image"] = "registry.example/evil:latest"
    entries = [_entry(r) for r in recs]
    entries[2] = _entry(recs[2], record.canonical_json(doc).decode())
    report = chain.verify(entries)
    assert not report.ok
    assert (report.first_broken_seq, report.first_broken_id, report.problem) == (3, recs[2].id, "edited")


def test_edit_with_recomputed_hash_is_caught_by_the_next_link(samples: Any) -> None:
    recs = _chain(samples)
    doc = recs[1].document()
    doc["approvers"] = []
    entries = [_entry(r) for r in recs]
    entries[1] = _entry(recs[1], record.canonical_json(_rehash(doc)).decode())
    report = chain.verify(entries)
    assert (report.ok, report.first_broken_seq, report.problem) == (False, 2, "edited")
    assert "re-hashed" in report.detail


def test_deleted_record_in_the_middle(samples: Any) -> None:
    recs = _chain(samples)
    report = chain.verify(recs[:2] + recs[3:])
    assert (report.ok, report.problem, report.first_broken_seq) == (False, "deleted", 4)
    assert "seq 3 missing" in report.detail


def test_deleted_last_record_is_caught_by_the_head(samples: Any) -> None:
    recs = _chain(samples)
    assert chain.verify(recs[:-1]).ok  # without an anchor a truncated tail looks whole...
    report = chain.verify(recs[:-1], head=chain.head_of(recs[-1]))  # ...the sink's head catches it
    assert (report.ok, report.problem, report.first_broken_seq) == (False, "deleted", 5)


def test_deleted_first_record(samples: Any) -> None:
    recs = _chain(samples)
    report = chain.verify(recs[1:])
    assert (report.ok, report.problem) == (False, "deleted")


def test_reordered_records(samples: Any) -> None:
    recs = _chain(samples)
    swapped = [recs[0], recs[2], recs[1], recs[3], recs[4]]
    report = chain.verify(swapped)
    assert (report.ok, report.problem, report.first_broken_seq) == (False, "reordered", 3)


def test_rows_renumbered_in_storage_are_reordered(samples: Any) -> None:
    recs = _chain(samples)
    entries = [_entry(r) for r in recs]
    entries[1], entries[2] = _entry(recs[2], seq=2), _entry(recs[1], seq=3)
    report = chain.verify(entries)
    assert (report.ok, report.problem, report.first_broken_seq) == (False, "reordered", 2)


def test_inserted_record_with_forged_links_and_renumbering(samples: Any) -> None:
    recs = _chain(samples)
    forged = chain.link(samples.make("emergency-bypass", samples.promotion(), 99), chain.head_of(recs[1]))
    docs = [r.document() for r in recs[:2]] + [forged.document()]
    for r in recs[2:]:  # renumber what follows and fix each record's own hash
        doc = r.document()
        doc["seq"] += 1
        docs.append(_rehash(doc))
    report = chain.verify_documents(docs)
    assert (report.ok, report.problem, report.first_broken_seq, report.first_broken_id) == (
        False,
        "inserted",
        3,
        forged.id,
    )


def test_inserted_record_sharing_a_seq(samples: Any) -> None:
    recs = _chain(samples)
    forged = chain.link(samples.make("emergency-bypass", samples.promotion(), 99), chain.head_of(recs[1]))
    report = chain.verify([recs[0], recs[1], forged, recs[2], recs[3]])
    assert (report.ok, report.problem, report.first_broken_id) == (False, "inserted", forged.id)


def test_unreadable_document_is_reported_not_crashed_on(samples: Any) -> None:
    recs = _chain(samples, 2)
    text = recs[1].canonical().decode()
    report = chain.verify([_entry(recs[0]), _entry(recs[1], text[:-1])])
    assert (report.ok, report.problem, report.first_broken_seq) == (False, "edited", 2)
    assert json.dumps(report.detail)  # a printable reason


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(data=strategies.data())
def test_any_one_character_edit_anywhere_is_detected(data: strategies.DataObject) -> None:
    recs = _CHAIN
    which = data.draw(strategies.integers(0, len(recs) - 1))
    text = recs[which].canonical().decode()
    pos = data.draw(strategies.integers(0, len(text) - 1))
    char = data.draw(strategies.characters(codec="ascii", exclude_characters=text[pos]))
    entries = [_entry(r) for r in recs]
    entries[which] = _entry(recs[which], text[:pos] + char + text[pos + 1 :])
    report = chain.verify(entries)
    assert not report.ok
    assert report.first_broken_seq == which + 1


def _sample_chain() -> list[record.AuditRecord]:
    head: chain.ChainHead | None = None
    out = []
    promo = {
        "metadata": {"uid": "u-9", "name": "web", "namespace": "production"},
        "spec": {"image": "registry.example/web:1.2.3", "target": {"name": "web"}},
        "status": {"specHash": "sha256:9", "requestedBy": {"username": "carol", "groups": ["dev"]}},
    }
    at = datetime.datetime(2026, 3, 2, tzinfo=datetime.UTC)
    for event in ("approved", "deploying", "deployed"):
        linked = chain.link(
            record.build(event, promo, at=at, operator="op", approvers=[{"username": "alice"}]), head
        )
        head = chain.head_of(linked)
        out.append(linked)
    return out


_CHAIN = _sample_chain()
