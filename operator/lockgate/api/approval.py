"""The Approval kind: one person's decision on one Promotion spec, stamped and signed at admission."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import pydantic

from lockgate.api import meta, promotion

Decision = Literal["Approve", "Reject"]
Purpose = Literal["Change", "RetroReview"]

SIGNATURE_PATTERN = r"^hmac-sha256:[a-f0-9]{64}$"

_IMMUTABLE: dict[str, Any] = {
    "x-kubernetes-validations": [
        {"rule": "self == oldSelf", "message": "Approval spec is immutable; create a new Approval"}
    ]
}


class Stamp(meta.Model):
    """Set by the admission webhook: when the Approval was admitted and an HMAC over its content."""

    at: datetime.datetime
    """Admission time."""
    signature: str = pydantic.Field(pattern=SIGNATURE_PATTERN)
    """hmac-sha256:<hex> over the canonical payload (namespace, name, promotion, decision, specHash,
    purpose, approver, groups, at) with a key only the operator holds."""


class ApprovalSpec(meta.Model):
    """One decision. Immutable after creation: to change your mind, create a new Approval."""

    model_config = pydantic.ConfigDict(json_schema_extra=_IMMUTABLE)

    promotion: str = pydantic.Field(min_length=1, max_length=253, pattern=promotion.DNS_NAME_PATTERN)
    """Name of the Promotion, in the same namespace."""
    decision: Decision
    """Approve or Reject."""
    spec_hash: str | None = pydantic.Field(default=None, pattern=meta.SPEC_HASH_PATTERN)
    """The Promotion's status.specHash this decision is about. Filled in by the admission webhook
    when omitted; an Approval without it never counts."""
    comment: str | None = pydantic.Field(default=None, max_length=4096)
    """Why (recorded in the audit trail)."""
    purpose: Purpose = "Change"
    """Change (approve or reject the change) or RetroReview (close an emergency change's retro review)."""
    approver: str | None = pydantic.Field(default=None, max_length=256)
    """Stamped at admission from the request's userInfo; whatever the user typed is replaced."""
    groups: list[Annotated[str, pydantic.Field(max_length=256)]] = pydantic.Field(
        default_factory=list, max_length=256
    )
    """Stamped at admission from the request's userInfo."""
    stamp: Stamp | None = None
    """Set by the admission webhook; an Approval without a valid stamp never counts."""


class ApprovalStatus(meta.Model):
    """Written by the operator: whether this Approval counts for its Promotion."""

    model_config = pydantic.ConfigDict(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})

    counted: bool | None = None
    """Whether it counts toward the Promotion's gate."""
    rule: str | None = None
    """The policy rule(s) it filled, as policy/rule."""
    reason: str | None = None
    """CamelCase reason it counts or does not (e.g. Counted, SelfApproval, SpecChanged, Expired)."""
    message: str | None = None
    """Human-readable detail."""
    observed_generation: int | None = None
    """metadata.generation the status describes."""
    conditions: list[meta.Condition] = pydantic.Field(
        default_factory=list, json_schema_extra=meta.CONDITIONS_LIST
    )
    """Ready (True once judged)."""


class Approval(meta.Resource):
    """One person's decision on one Promotion spec."""

    kind: str = "Approval"
    spec: ApprovalSpec
    status: ApprovalStatus = pydantic.Field(default_factory=ApprovalStatus)
