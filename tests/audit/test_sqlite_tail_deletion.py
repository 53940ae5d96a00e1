"""Deleting the newest records, or a whole stream, from the sqlite file is caught by verify."""

from __future__ import annotations

import pathlib
import sqlite3
from typing import Any

from typer.testing import CliRunner

from lockgate.audit import trail
from lockgate.audit.sinks import sqlite as sqlite_sink
from lockgate.cli import main


def fill(path: pathlib.Path, samples: Any) -> None:
    sink = sqlite_sink.SqliteSink(path)
    for rec in samples.lifecycle():
        sink.append(rec)


def verify(path: pathlib.Path) -> tuple[int, str]:
    result = CliRunner().invoke(main.app, ["audit", "verify", "--sqlite", str(path)])
    return result.exit_code, result.output


def test_deleting_the_newest_records_is_named(tmp_path: pathlib.Path, samples: Any) -> None:
    path = tmp_path / "audit.sqlite3"
    fill(path, samples)
    assert verify(path)[0] == 0
    with sqlite3.connect(path) as db:
        last = db.execute("SELECT max(seq) FROM audit_records").fetchone()[0]
        db.execute("DELETE FROM audit_records WHERE seq >= ?", (last - 1,))
    code, output = verify(path)
    assert code == 1, output
    assert "deleted" in output


def test_deleting_a_whole_stream_is_named(tmp_path: pathlib.Path, samples: Any) -> None:
    path = tmp_path / "audit.sqlite3"
    fill(path, samples)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM audit_records")
    code, output = verify(path)
    assert code == 1, output
    [report] = trail.AuditTrail([sqlite_sink.SqliteSink(path)]).verify()
    assert not report.ok and report.problem == "deleted"


def test_appending_after_a_tail_deletion_does_not_hide_it(tmp_path: pathlib.Path, samples: Any) -> None:
    path = tmp_path / "audit.sqlite3"
    fill(path, samples)
    with sqlite3.connect(path) as db:
        last = db.execute("SELECT max(seq) FROM audit_records").fetchone()[0]
        db.execute("DELETE FROM audit_records WHERE seq = ?", (last,))
    fill(path, samples)  # a new cycle of records (new ids) chained after the recorded head
    assert verify(path)[0] == 1
