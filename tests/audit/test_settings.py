"""Audit settings come from LOCKGATE_AUDIT_* and refuse incomplete sink configurations."""

from __future__ import annotations

import pathlib
from typing import Any

import pydantic
import pytest

from lockgate.audit import settings, trail
from lockgate.audit.sinks import dynamodb, s3, sqlite


def test_defaults_are_an_embedded_sqlite_file_kept_seven_years(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("SINKS", "SQLITE_PATH", "RETENTION"):
        monkeypatch.delenv(f"LOCKGATE_AUDIT_{key}", raising=False)
    config = settings.AuditSettings()
    assert config.sinks == ["sqlite"]
    assert config.sqlite_path == pathlib.Path("lockgate-audit.sqlite3")
    assert config.retention == "7y"


def test_comma_separated_sinks_build_every_sink(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, aws_endpoint: str
) -> None:
    monkeypatch.setenv("LOCKGATE_AUDIT_SINKS", "sqlite, dynamodb,s3")
    monkeypatch.setenv("LOCKGATE_AUDIT_SQLITE_PATH", str(tmp_path / "a.sqlite3"))
    monkeypatch.setenv("LOCKGATE_AUDIT_DYNAMODB_TABLE", "audit")
    monkeypatch.setenv("LOCKGATE_AUDIT_DYNAMODB_REGION", "us-east-1")
    monkeypatch.setenv("LOCKGATE_AUDIT_S3_BUCKET", "audit-bucket")
    monkeypatch.setenv("LOCKGATE_AUDIT_ENDPOINT_URL", aws_endpoint)
    audit = trail.AuditTrail.from_settings(settings.AuditSettings())
    kinds: list[Any] = [type(s) for s in audit.sinks]
    assert kinds == [sqlite.SqliteSink, dynamodb.DynamoDBSink, s3.S3Sink]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOCKGATE_AUDIT_SINKS": "dynamodb"}, "LOCKGATE_AUDIT_DYNAMODB_TABLE"),
        ({"LOCKGATE_AUDIT_SINKS": "s3"}, "LOCKGATE_AUDIT_S3_BUCKET"),
        ({"LOCKGATE_AUDIT_SINKS": "mongodb"}, "sqlite"),
        ({"LOCKGATE_AUDIT_RETENTION": "forever"}, "invalid retention"),
    ],
)
def test_incomplete_configuration_is_refused_clearly(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(pydantic.ValidationError, match=message):
        settings.AuditSettings()
