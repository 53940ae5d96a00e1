"""Audit settings, read from ``LOCKGATE_AUDIT_*`` environment variables."""

from __future__ import annotations

import pathlib
from typing import Annotated, Any, Literal, Self

import pydantic
import pydantic_settings

from lockgate.audit import retention as retention_

SinkName = Literal["sqlite", "dynamodb", "s3"]


class AuditSettings(pydantic_settings.BaseSettings):
    """Where the audit trail is written and how long it is kept.

    ``LOCKGATE_AUDIT_SINKS=sqlite,dynamodb`` writes every record to both (a decision
    proceeds only when every sink has it). ``retention`` is the default; a GatePolicy's
    ``spec.audit.retention`` overrides it per record.
    """

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="LOCKGATE_AUDIT_", extra="ignore")

    sinks: Annotated[list[SinkName], pydantic_settings.NoDecode] = ["sqlite"]
    sqlite_path: pathlib.Path = pathlib.Path("lockgate-audit.sqlite3")
    dynamodb_table: str | None = None
    dynamodb_region: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str = "lockgate/audit/"
    s3_region: str | None = None
    endpoint_url: str | None = None
    retention: str = "7y"
    environment: str | None = None
    new_trail: str | None = None
    """Why an empty trail is accepted although Promotions say their decisions were recorded (a lost
    trail, a new sink): the reason goes into the new trail's first record. Remove it afterwards."""

    @pydantic.field_validator("sinks", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return pydantic.TypeAdapter(list[str]).validate_json(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @pydantic.field_validator("retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        retention_.parse(value)
        return value

    @pydantic.model_validator(mode="after")
    def _complete(self) -> Self:
        if not self.sinks:
            raise ValueError("LOCKGATE_AUDIT_SINKS is empty: name at least one of sqlite, dynamodb, s3")
        if "dynamodb" in self.sinks and not self.dynamodb_table:
            raise ValueError("the dynamodb audit sink needs LOCKGATE_AUDIT_DYNAMODB_TABLE")
        if "s3" in self.sinks and not self.s3_bucket:
            raise ValueError("the s3 audit sink needs LOCKGATE_AUDIT_S3_BUCKET")
        return self
