"""``lockgate audit verify | export | evidence`` as an auditor uses them."""

from __future__ import annotations

import csv
import io
import json
import pathlib
from typing import Any

import pytest
import typer
import typer.testing

from lockgate.audit import record
from lockgate.audit.sinks import sqlite
from lockgate.cli import audit as audit_cli


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("version")(lambda: None)  # a second command keeps "audit" a sub-command
    audit_cli.register(app)
    return app


@pytest.fixture
def db(tmp_path: pathlib.Path, samples: Any) -> tuple[pathlib.Path, list[record.AuditRecord]]:
    path = tmp_path / "audit.sqlite3"
    sink = sqlite.SqliteSink(path)
    stored = [sink.append(r) for r in samples.lifecycle()]
    sink.close()  # the operator stopped: its write-ahead log is checkpointed into the file that is edited below
    return path, stored


def run(cli: typer.Typer, *args: str) -> Any:
    return typer.testing.CliRunner().invoke(cli, ["audit", *args], env={"COLUMNS": "400"})


def test_verify_reports_an_intact_chain(cli: typer.Typer, db: Any) -> None:
    path, _ = db
    result = run(cli, "verify", "--sqlite", str(path))
    assert result.exit_code == 0, result.output
    assert "chain intact: 4 records" in result.stdout


def test_verify_names_the_broken_record_after_a_one_byte_edit(cli: typer.Typer, db: Any) -> None:
    path, stored = db
    data = bytearray(path.read_bytes())
    at = data.find(b'"ticket":"CHG-1234"', data.find(b'"event":"deploying"') - 4000)
    assert at > 0
    data[at + len(b'"ticket":"CHG-')] = ord("9")
    path.write_bytes(bytes(data))
    result = run(cli, "verify", "--sqlite", str(path))
    assert result.exit_code == 1
    assert "chain BROKEN at record seq" in result.stdout
    broken = next(r for r in stored if f"seq {r.seq} (id {r.id})" in result.stdout)
    assert "edited" in result.stdout and broken.seq in (1, 2, 3, 4)
    as_json = json.loads(run(cli, "verify", "--sqlite", str(path), "-o", "json").stdout)
    assert as_json["ok"] is False and as_json["streams"][0]["first_broken_id"] == broken.id


def test_export_json_and_csv_within_a_window(cli: typer.Typer, db: Any) -> None:
    path, stored = db
    result = run(cli, "export", "--sqlite", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    docs = json.loads(result.stdout)
    assert docs == [r.document() for r in stored]

    window = run(
        cli,
        "export",
        "--sqlite",
        str(path),
        "--since",
        "2026-03-02T09:01:00Z",
        "--until",
        "2026-03-02T09:03:00Z",
    )
    assert [d["event"] for d in json.loads(window.stdout)] == ["deploying", "deployed"]

    table = run(cli, "export", "--sqlite", str(path), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [r["event"] for r in rows] == ["approved", "deploying", "deployed", "verified"]
    assert rows[1]["approvers"] == "alice@2026-03-02T08:50:00.000000Z;sam@2026-03-02T08:55:00.000000Z"
    assert rows[1]["hash"] == stored[1].hash and rows[1]["requester"] == "carol"


def test_evidence_answers_the_four_questions_and_maps_controls(cli: typer.Typer, db: Any) -> None:
    path, _ = db
    result = run(cli, "evidence", "production/web-2026-03", "--sqlite", str(path), "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["satisfied"] is True
    assert [q["satisfied"] for q in doc["questions"]] == [True, True, True, True]
    assert {c["control"] for c in doc["controls"]} == {
        "CM-3",
        "CM-5",
        "AU-9",
        "AU-11",
        "3.4.3",
        "CM.L2-3.4.3",
    }
    reviewed, approved, stamped, gated = (q["evidence"] for q in doc["questions"])
    assert "alice (groups: engineering-leads; rule technical" in reviewed
    assert "alice: Approve (Approval web-2026-03-alice)" in approved
    assert "sam at 2026-03-02T08:55:00.000000Z" in stamped
    assert "deploying record seq 2" in gated and "approved record seq 1 precedes it" in gated

    table = run(cli, "evidence", "production/web-2026-03", "--sqlite", str(path))
    assert table.exit_code == 0
    for text in ("CM-3", "AU-11", "CM.L2-3.4.3", "The change did not proceed without it"):
        assert text in table.stdout


def test_evidence_flags_a_self_approved_change(cli: typer.Typer, tmp_path: pathlib.Path, samples: Any) -> None:
    path = tmp_path / "audit.sqlite3"
    sink = sqlite.SqliteSink(path)
    promo = samples.promotion()
    selfie = [{"username": "carol", "groups": ["developers"], "at": "2026-03-02T08:59:00Z", "approval": "x"}]
    for i, event in enumerate(("approved", "deploying", "deployed")):
        sink.append(samples.make(event, promo, i, approvers=selfie))
    result = run(cli, "evidence", "production/web-2026-03", "--sqlite", str(path), "-o", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["questions"][0]["satisfied"] is False
    assert "approved by the requester or author: carol" in doc["questions"][0]["evidence"]
    assert {c["control"]: c["satisfied"] for c in doc["controls"]}["CM-3"] is False


def test_evidence_flags_a_deploy_without_a_deploying_record(
    cli: typer.Typer, tmp_path: pathlib.Path, samples: Any
) -> None:
    path = tmp_path / "audit.sqlite3"
    sink = sqlite.SqliteSink(path)
    promo = samples.promotion()
    sink.append(samples.make("approved", promo, 0))
    sink.append(samples.make("deployed", promo, 1))
    doc = json.loads(run(cli, "evidence", "production/web-2026-03", "--sqlite", str(path), "-o", "json").stdout)
    assert doc["questions"][3]["satisfied"] is False
    assert "with no deploying record" in doc["questions"][3]["evidence"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evidence", "production/nope"], "no audit records for Promotion production/nope"),
        (["evidence", "just-a-name"], "expected <namespace>/<promotion>"),
        (["export", "--since", "yesterday"], "--since 'yesterday' is not an ISO date"),
    ],
)
def test_errors_are_one_clear_line(cli: typer.Typer, db: Any, args: list[str], message: str) -> None:
    path, _ = db
    result = run(cli, *args, "--sqlite", str(path))
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_missing_database_is_a_clear_error(cli: typer.Typer, tmp_path: pathlib.Path) -> None:
    result = run(cli, "verify", "--sqlite", str(tmp_path / "absent.sqlite3"))
    assert result.exit_code == 2
    assert "no audit database at" in result.stderr
    assert not (tmp_path / "absent.sqlite3").exists()


def test_settings_errors_are_one_clear_line(cli: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKGATE_AUDIT_SINKS", "dynamodb")
    monkeypatch.delenv("LOCKGATE_AUDIT_DYNAMODB_TABLE", raising=False)
    result = run(cli, "verify")
    assert result.exit_code == 2
    assert "LOCKGATE_AUDIT_DYNAMODB_TABLE" in result.stderr and "Traceback" not in result.output
