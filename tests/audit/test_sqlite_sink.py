"""The embedded sqlite sink: durable, idempotent, never forked, and tamper-evident on disk."""

from __future__ import annotations

import concurrent.futures
import pathlib
import sqlite3
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from lockgate.audit import chain, errors, trail
from lockgate.audit.sinks import sqlite


def test_append_chains_and_reads_back(tmp_path: pathlib.Path, samples: Any) -> None:
    sink = sqlite.SqliteSink(tmp_path / "audit.sqlite3")
    stored = [sink.append(r) for r in samples.lifecycle()]
    assert [r.seq for r in stored] == [1, 2, 3, 4]
    assert sink.head("DEPLOY#production") == chain.head_of(stored[-1])
    assert sink.records() == stored
    assert sink.streams() == ["DEPLOY#production"]
    conn = sqlite3.connect(tmp_path / "audit.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_re_append_returns_the_stored_record_without_duplicating(tmp_path: pathlib.Path, samples: Any) -> None:
    sink = sqlite.SqliteSink(tmp_path / "audit.sqlite3")
    recs = samples.lifecycle()
    first = sink.append(recs[0])
    sink.append(recs[1])
    again = sink.append(recs[0])
    assert again == first
    # A restarted operator rebuilds the same decision later: same id, still one record.
    rebuilt = samples.make("approved", samples.promotion(uid=recs[0].promotion.uid), minutes=30)
    assert sink.append(rebuilt) == first
    assert len(sink.records()) == 2


def test_one_byte_edit_in_the_file_names_the_broken_record(tmp_path: pathlib.Path, samples: Any) -> None:
    path = tmp_path / "audit.sqlite3"
    sink = sqlite.SqliteSink(path)
    stored = [sink.append(r) for r in samples.lifecycle()]
    audit = trail.AuditTrail([sink])
    assert [r.ok for r in audit.verify()] == [True]

    sink.close()  # the last connection closes: the WAL is checkpointed into the file edited below
    data = bytearray(path.read_bytes())
    marker = b'"event":"deployed"'
    at = data.find(marker)
    assert at > 0 and data.count(marker) == 1
    data[at + len(b'"event":"')] = ord("D")  # deployed -> Deployed, one byte
    path.write_bytes(bytes(data))

    [report] = audit.verify()
    assert not report.ok
    assert (report.first_broken_seq, report.first_broken_id, report.problem) == (3, stored[2].id, "edited")
    assert f"seq 3 (id {stored[2].id})" in report.summary()


def test_two_threads_never_fork_the_chain(tmp_path: pathlib.Path, samples: Any) -> None:
    path = tmp_path / "audit.sqlite3"
    records = [r for _ in range(10) for r in samples.lifecycle()]

    def write(rec: Any) -> None:
        sqlite.SqliteSink(path).append(rec)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, records))
    sink = sqlite.SqliteSink(path)
    [report] = trail.AuditTrail([sink]).verify()
    assert report.ok and report.count == 40


def test_two_processes_never_fork_the_chain(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.sqlite3"
    script = textwrap.dedent(
        """
        import datetime, sys, uuid
        from lockgate.audit import record
        from lockgate.audit.sinks import sqlite
        sink = sqlite.SqliteSink(sys.argv[1])
        at = datetime.datetime(2026, 3, 2, tzinfo=datetime.UTC)
        for i in range(25):
            promo = {"metadata": {"uid": str(uuid.uuid4()), "name": f"p{i}", "namespace": "production"},
                     "spec": {"image": "registry.example/web:1", "target": {"name": "web"}},
                     "status": {"specHash": "sha256:x"}}
            sink.append(record.build("deploying", promo, at=at, operator=sys.argv[2]))
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), f"writer-{n}"]) for n in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    sink = sqlite.SqliteSink(path)
    [report] = trail.AuditTrail([sink]).verify()
    assert report.ok and report.count == 75
    assert {r.operator for r in sink.records()} == {"writer-0", "writer-1", "writer-2"}


def writing(path: pathlib.Path, samples: Any) -> tuple[sqlite.SqliteSink, Any, Any]:
    """A sink that has written the first record of a lifecycle (its connection open), and the next record."""
    sink = sqlite.SqliteSink(path)
    first, second, *_ = samples.lifecycle()
    sink.append(first)
    return sink, first, second


def test_an_audit_file_deleted_while_the_operator_writes_is_not_silently_started_anew(
    tmp_path: pathlib.Path, samples: Any
) -> None:
    path = tmp_path / "audit.sqlite3"
    sink, _, second = writing(path, samples)
    for leftover in tmp_path.glob("audit.sqlite3*"):
        leftover.unlink()
    with pytest.raises(errors.AuditUnavailable, match="has disappeared"):
        sink.append(second)
    assert not path.exists()  # neither written to the unlinked file nor to a new, innocent-looking one


def test_an_audit_file_replaced_while_the_operator_writes_is_not_written_through_the_old_one(
    tmp_path: pathlib.Path, samples: Any
) -> None:
    path = tmp_path / "audit.sqlite3"
    sink, first, second = writing(path, samples)
    other = sqlite.SqliteSink(tmp_path / "other.sqlite3")
    other.append(first)
    other.close()
    (tmp_path / "other.sqlite3").replace(path)
    sink.append(second)  # reopened on the file now at the path
    assert [r.id for r in sqlite.SqliteSink(path).records()] == [first.id, second.id]


def test_an_append_recovers_after_the_volume_came_back(tmp_path: pathlib.Path, samples: Any) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    sink = sqlite.SqliteSink(volume / "audit.sqlite3")
    first, second, *_ = samples.lifecycle()
    sink.append(first)
    volume.rename(tmp_path / "gone")
    with pytest.raises(errors.AuditUnavailable, match="check that the volume is mounted"):
        sink.append(second)
    (tmp_path / "gone").rename(volume)
    assert sink.append(second).id == second.id
    assert [r.id for r in sink.records()] == [first.id, second.id]


def test_a_batch_is_chained_in_order_and_a_retried_batch_changes_nothing(
    tmp_path: pathlib.Path, samples: Any
) -> None:
    sink = sqlite.SqliteSink(tmp_path / "audit.sqlite3")
    first, second, third, fourth = samples.lifecycle()
    assert sink.append(first).seq == 1
    stored = sink.append_all([first, second, third])  # a retry that holds one stored record
    assert [r.seq for r in stored] == [1, 2, 3]
    assert stored[0] == sink.get(first.id)
    assert sink.append_all([second, third, fourth]) == [*stored[1:], sink.get(fourth.id)]
    assert [r.id for r in sink.records()] == [first.id, second.id, third.id, fourth.id]
    assert sink.head("DEPLOY#production") == chain.head_of(sink.records()[-1])
    assert all(report.ok for report in trail.AuditTrail([sink]).verify())


def test_prepared_at_start_up_the_file_is_open_before_the_first_record(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.sqlite3"
    assert trail.AuditTrail([sqlite.SqliteSink(path)]).prepare() == []
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"audit_records", "chain_heads"} <= tables


def test_a_sink_that_cannot_be_prepared_is_reported_not_raised(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "no-such-volume" / "audit.sqlite3"
    problems = trail.AuditTrail([sqlite.SqliteSink(missing)]).prepare()
    assert len(problems) == 1
    assert "no-such-volume" in str(problems[0]) and "volume is mounted" in str(problems[0])
