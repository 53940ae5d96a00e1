"""``lockgate audit``: verify the chain, export records, and show one change's evidence."""

from __future__ import annotations

import csv
import dataclasses
import datetime
import enum
import io
import json
import pathlib
from collections.abc import Callable, Iterator
from typing import Annotated, Any, NoReturn

import pydantic
import rich.console
import rich.table
import typer

from lockgate.audit import chain, errors, evidence, record, settings, trail

audit_app = typer.Typer(
    name="audit",
    help="Verify, export and explain the audit trail (for auditors).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Output(enum.StrEnum):
    """Output formats for people and scripts."""

    table = "table"
    json = "json"


class ExportFormat(enum.StrEnum):
    """Export file formats."""

    json = "json"
    csv = "csv"


SqliteOption = Annotated[
    pathlib.Path | None,
    typer.Option("--sqlite", help="Read this sqlite audit file instead of the LOCKGATE_AUDIT_* sinks."),
]
StreamOption = Annotated[
    str | None, typer.Option("--stream", help="Only this stream, e.g. DEPLOY#production.")
]
OutputOption = Annotated[Output, typer.Option("--output", "-o", help="table for people, json for scripts.")]


def _die(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"invalid audit settings{f' ({where})' if where else ''}: {first.get('msg')}"
    if isinstance(exc, errors.AuditUnavailable):
        return exc.message
    return " ".join(str(exc).split())


def _trail(sqlite: pathlib.Path | None) -> trail.AuditTrail:
    try:
        config = (
            settings.AuditSettings(sinks=["sqlite"], sqlite_path=sqlite)
            if sqlite
            else settings.AuditSettings()
        )
    except (pydantic.ValidationError, ValueError) as exc:
        _die(_one_line(exc))
    if "sqlite" in config.sinks and not config.sqlite_path.exists():
        _die(
            f"no audit database at {config.sqlite_path}: pass --sqlite PATH or set LOCKGATE_AUDIT_SQLITE_PATH"
        )
    return trail.AuditTrail.from_settings(config)


def _guarded(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except (errors.AuditUnavailable, evidence.NoRecords, ValueError) as exc:
        _die(_one_line(exc))


def _time(value: str | None, option: str) -> datetime.datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        _die(f"{option} {value!r} is not an ISO date or time (e.g. 2025-01-31 or 2025-01-31T12:00:00Z)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _console() -> rich.console.Console:
    return rich.console.Console(highlight=False, soft_wrap=True)


@audit_app.command("verify")
def verify(
    stream: StreamOption = None, sqlite: SqliteOption = None, output: OutputOption = Output.table
) -> None:
    """Walk every chain and report "chain intact" or the first broken record (exit 1 when broken)."""
    audit = _trail(sqlite)
    reports: list[chain.VerifyReport] = _guarded(lambda: audit.verify(stream))
    broken = [r for r in reports if not r.ok]
    if output is Output.json:
        typer.echo(
            json.dumps({"ok": not broken, "streams": [dataclasses.asdict(r) for r in reports]}, indent=2)
        )
    else:
        console = _console()
        if not reports:
            console.print("no audit records yet")
        for report in reports:
            console.print(report.summary(), style=None if report.ok else "bold red")
    if broken:
        raise typer.Exit(1)


CSV_COLUMNS = (
    "stream",
    "seq",
    "at",
    "event",
    "namespace",
    "promotion",
    "promotionUid",
    "specHash",
    "image",
    "previousImage",
    "requester",
    "author",
    "approvers",
    "ticket",
    "description",
    "operator",
    "retentionUntil",
    "id",
    "prevHash",
    "hash",
)


def _row(r: record.AuditRecord) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "seq": r.seq,
        "at": record.format_time(r.at),
        "event": r.event,
        "namespace": r.promotion.namespace,
        "promotion": r.promotion.name,
        "promotionUid": r.promotion.uid,
        "specHash": r.promotion.spec_hash,
        "image": r.image,
        "previousImage": r.previous_image or "",
        "requester": r.requester.username if r.requester else "",
        "author": r.author or "",
        "approvers": ";".join(
            f"{a.username}@{record.format_time(a.at) if a.at else ''}" for a in r.approvers
        ),
        "ticket": r.change.ticket or "",
        "description": r.change.description or "",
        "operator": r.operator,
        "retentionUntil": record.format_time(r.retention_until),
        "id": r.id,
        "prevHash": r.prev_hash,
        "hash": r.hash,
    }


@audit_app.command("export")
def export(
    since: Annotated[str | None, typer.Option(help="Only records at or after this ISO time.")] = None,
    until: Annotated[str | None, typer.Option(help="Only records before this ISO time.")] = None,
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="json (full records) or csv.")] = (
        ExportFormat.json
    ),
    stream: StreamOption = None,
    sqlite: SqliteOption = None,
) -> None:
    """Print the records (full canonical documents as JSON, or one CSV row each)."""
    start, end = _time(since, "--since"), _time(until, "--until")
    audit = _trail(sqlite)
    rows: list[record.AuditRecord] = _guarded(lambda: audit.records(stream, start, end))
    if format is ExportFormat.json:
        typer.echo(json.dumps([r.document() for r in rows], indent=2, sort_keys=True, ensure_ascii=False))
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(_row(r))
    typer.echo(buffer.getvalue(), nl=False)


def _lines(change: evidence.ChangeEvidence) -> Iterator[rich.table.Table]:
    facts = rich.table.Table(title=f"Change {change.promotion}", show_header=False)
    facts.add_row("image", change.image)
    facts.add_row("promotion uid", change.uid)
    facts.add_row("spec hash", change.spec_hash)
    facts.add_row("stream", change.stream)
    facts.add_row("chain", change.chain.summary() if change.chain else "not verified")
    yield facts
    questions = rich.table.Table(title="The four auditor questions")
    questions.add_column("question")
    questions.add_column("answer")
    questions.add_column("evidence from the records")
    for a in change.answers:
        questions.add_row(a.question, "yes" if a.satisfied else "NO", a.evidence)
    yield questions
    controls = rich.table.Table(title="Controls")
    for column in ("control", "framework", "title", "satisfied", "how"):
        controls.add_column(column)
    for c in change.controls:
        controls.add_row(c.control, c.framework, c.title, "yes" if c.satisfied else "NO", c.how)
    yield controls
    records = rich.table.Table(title="Records")
    for column in ("seq", "at", "event", "approvers", "hash"):
        records.add_column(column)
    for r in change.records:
        records.add_row(
            str(r.seq),
            record.format_time(r.at),
            r.event,
            ", ".join(a.username for a in r.approvers),
            r.hash[:19],
        )
    yield records


@audit_app.command("evidence")
def evidence_cmd(
    promotion: Annotated[str, typer.Argument(help="The change, as <namespace>/<promotion>.")],
    sqlite: SqliteOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Show one change's records mapped to CM-3, CM-5, AU-9, AU-11, 800-171 3.4.3, CMMC CM.L2-3.4.3."""
    namespace, sep, name = promotion.partition("/")
    if not sep or not namespace or not name:
        _die(f"expected <namespace>/<promotion>, got {promotion!r}")
    audit = _trail(sqlite)

    def gather() -> evidence.ChangeEvidence:
        cycle = evidence.select_cycle(audit.records(), namespace, name)
        reports = audit.verify(cycle[0].stream)
        broken = next((r for r in reports if not r.ok), None)
        return evidence.assess(cycle, broken or reports[0])

    change: evidence.ChangeEvidence = _guarded(gather)
    if output is Output.json:
        typer.echo(json.dumps(change.document(), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        console = _console()
        for table in _lines(change):
            console.print(table)
    if not change.satisfied:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command group to ``app``."""
    app.add_typer(audit_app, name="audit")
