"""The audit record: one canonical, deterministic document per decision that matters.

A record is built from plain data (the Promotion object as Kubernetes returns it plus
explicit arguments), so it does not depend on how the API models evolve. Its JSON form
is *canonical*: keys sorted, no insignificant whitespace, UTF-8, timestamps as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``. The hash of that form (without the ``hash`` field) is
what the chain links, so any change to any byte of the meaning is detectable.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import pydantic
from pydantic import alias_generators

from lockgate.audit import retention as retention_

FORMAT = "lockgate.dev/audit/v1"

Event = Literal[
    "approved",
    "deploying",
    "deployed",
    "verified",
    "failed",
    "rolled-back",
    "rejected",
    "superseded",
    "emergency-bypass",
    "retro-review",
    "approval-withdrawn",
]
EVENTS: tuple[str, ...] = typing.get_args(Event)


def _to_utc(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps in audit records must be timezone-aware")
    return value.astimezone(datetime.UTC)


def format_time(value: datetime.datetime) -> str:
    """The canonical timestamp text: UTC, microseconds, ``Z`` (sorts as text)."""
    return _to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


UtcDatetime = Annotated[
    datetime.datetime,
    pydantic.AfterValidator(_to_utc),
    pydantic.PlainSerializer(format_time, return_type=str),
]


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
    )


class Identity(_Model):
    """An authenticated Kubernetes identity."""

    username: str
    groups: tuple[str, ...] = ()


class Approver(_Model):
    """One counted approval: who, in which groups, when, which Approval object, which rule."""

    username: str
    groups: tuple[str, ...] = ()
    at: UtcDatetime | None = None
    approval: str | None = None
    decision: str = "Approve"
    rule: str | None = None
    rbac: str | None = None
    comment: str | None = None


class PolicyResult(_Model):
    """A GatePolicy and the verdicts of its rules."""

    name: str
    passed: bool
    verdicts: tuple[dict[str, Any], ...] = ()


class PromotionRef(_Model):
    """Which Promotion, and which cycle of it (the spec hash the approvals bind to)."""

    uid: str
    name: str
    namespace: str
    spec_hash: str


class TargetRef(_Model):
    """The workload container whose image changes."""

    kind: str
    name: str
    container: str | None = None
    namespace: str


class Change(_Model):
    """The human description of the change."""

    description: str | None = None
    ticket: str | None = None
    url: str | None = None


class AuditRecord(_Model):
    """One audit record. ``seq``, ``prev_hash`` and ``hash`` are empty until chained."""

    format: Literal["lockgate.dev/audit/v1"] = "lockgate.dev/audit/v1"
    id: str
    stream: str
    seq: int = 0
    event: Event
    at: UtcDatetime
    promotion: PromotionRef
    target: TargetRef
    image: str
    digest: str | None = None
    previous_image: str | None = None
    requester: Identity | None = None
    author: str | None = None
    approvers: tuple[Approver, ...] = ()
    policies: tuple[PolicyResult, ...] = ()
    evidence: dict[str, Any] = pydantic.Field(default_factory=dict)
    change: Change = Change()
    emergency: dict[str, Any] | None = None
    verification: dict[str, Any] | None = None
    operator: str
    retention: str
    retention_until: UtcDatetime
    extra: dict[str, Any] = pydantic.Field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""

    def document(self) -> dict[str, Any]:
        """The record as a JSON-ready mapping with its camelCase field names."""
        return self.model_dump(mode="json", by_alias=True)

    def canonical(self) -> bytes:
        """The canonical JSON bytes of the whole record (what sinks store)."""
        return canonical_json(self.document())


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` canonically: sorted keys, separators ``,``/``:``, UTF-8, no NaN.

    Two equal documents always give the same bytes, so their hashes are comparable.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def content_hash(document: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``document`` without its ``hash`` field."""
    body = {k: v for k, v in document.items() if k != "hash"}
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def sealed(document: Mapping[str, Any]) -> tuple[str, bytes]:
    """``content_hash(document)`` and the canonical JSON of ``document`` carrying that hash, serialised once.

    Canonical JSON lists the keys in order, so the fields before ``hash`` and those after it are two
    runs of the same bytes in both documents: the hashed one joins them, the stored one puts the hash
    between them (what ``canonical_json({**document, "hash": digest})`` gives, on the record's path
    to every deploy at half the cost).
    """
    head = canonical_json({k: v for k, v in document.items() if k < "hash"})[:-1]  # b'{...' or b'{'
    tail = canonical_json({k: v for k, v in document.items() if k > "hash"})[1:]  # b'...}' or b'}'
    digest = "sha256:" + hashlib.sha256(head + (b"," if len(head) > 1 < len(tail) else b"") + tail).hexdigest()
    field = b'"hash":' + canonical_json(digest)
    return digest, head + (b"," if len(head) > 1 else b"") + field + (b"," if len(tail) > 1 else b"") + tail


def record_id(promotion_uid: str, spec_hash: str, event: str, key: str | None = None) -> str:
    """The deterministic id of a decision: the same decision always gets the same id.

    ``key`` distinguishes repeated events of one kind in one cycle (e.g. the Approval
    uid for ``approval-withdrawn``).
    """
    material = "\x1f".join((promotion_uid, spec_hash, event, key or ""))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def stream_for(environment: str) -> str:
    """The chain a record belongs to: ``DEPLOY#<environment>`` (the seed's partition key)."""
    return f"DEPLOY#{environment}"


def parse(document: Mapping[str, Any] | str | bytes) -> AuditRecord:
    """Read a stored record (mapping or JSON text) back into an ``AuditRecord``."""
    if isinstance(document, str | bytes):
        return AuditRecord.model_validate_json(document)
    return AuditRecord.model_validate(dict(document))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _approver(item: Mapping[str, Any]) -> Approver:
    username = item.get("username") or item.get("approver")
    if not username:
        raise ValueError(f"approver without a username: {dict(item)!r}")
    return Approver(
        username=str(username),
        groups=tuple(str(g) for g in item.get("groups") or ()),
        at=_time(item.get("at")),
        approval=item.get("approval"),
        decision=str(item.get("decision") or "Approve"),
        rule=item.get("rule"),
        rbac=item.get("rbac"),
        comment=item.get("comment"),
    )


def _time(value: Any) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _policy(item: Mapping[str, Any]) -> PolicyResult:
    return PolicyResult(
        name=str(item["name"]),
        passed=bool(item.get("passed")),
        verdicts=tuple(dict(v) for v in item.get("verdicts") or ()),
    )


def _digest(image: str) -> str | None:
    _, sep, digest = image.partition("@")
    return digest if sep else None


def build(
    event: str,
    promotion: Mapping[str, Any],
    *,
    at: datetime.datetime,
    operator: str,
    approvers: Sequence[Mapping[str, Any]] = (),
    policies: Sequence[Mapping[str, Any]] = (),
    previous_image: str | None = None,
    verification: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    environment: str | None = None,
    retention: str = "7y",
    key: str | None = None,
) -> AuditRecord:
    """Build the (unchained) record of ``event`` for ``promotion`` (the raw object dict).

    ``approvers`` are the counted approvals (``username`` or ``approver``, ``groups``,
    ``at``, ``approval``, ``rule``); ``policies`` are ``{name, passed, verdicts}``.
    The stream is ``DEPLOY#<environment or namespace>``. Raises ``ValueError`` when the
    Promotion lacks what makes a record attributable (uid, name, namespace, specHash).
    """
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}: expected one of {', '.join(EVENTS)}")
    metadata = _mapping(promotion.get("metadata"))
    spec = _mapping(promotion.get("spec"))
    status = _mapping(promotion.get("status"))
    uid, name, namespace = metadata.get("uid"), metadata.get("name"), metadata.get("namespace")
    spec_hash = status.get("specHash")
    if not (uid and name and namespace and spec_hash):
        raise ValueError(
            "cannot audit a Promotion without metadata.uid, metadata.name, metadata.namespace "
            "and status.specHash"
        )
    target = _mapping(spec.get("target"))
    change = _mapping(spec.get("change"))
    requested = _mapping(status.get("requestedBy"))
    image = str(spec.get("image") or "")
    at_utc = _to_utc(at)
    return AuditRecord(
        id=record_id(str(uid), str(spec_hash), event, key),
        stream=stream_for(environment or str(namespace)),
        event=typing.cast(Event, event),  # checked against EVENTS above
        at=at_utc,
        promotion=PromotionRef(
            uid=str(uid), name=str(name), namespace=str(namespace), spec_hash=str(spec_hash)
        ),
        target=TargetRef(
            kind=str(target.get("kind") or "Deployment"),
            name=str(target.get("name") or ""),
            container=target.get("container"),
            namespace=str(namespace),
        ),
        image=image,
        digest=_digest(image),
        previous_image=previous_image if previous_image is not None else status.get("previousImage"),
        requester=(
            Identity(username=str(requested["username"]), groups=tuple(requested.get("groups") or ()))
            if requested.get("username")
            else None
        ),
        author=change.get("author"),
        approvers=tuple(_approver(a) for a in approvers),
        policies=tuple(_policy(p) for p in policies),
        evidence=dict(_mapping(spec.get("evidence"))),
        change=Change(
            description=change.get("description"), ticket=change.get("ticket"), url=change.get("url")
        ),
        emergency=dict(spec["emergency"]) if isinstance(spec.get("emergency"), Mapping) else None,
        verification=dict(verification) if verification is not None else None,
        operator=operator,
        retention=retention,
        retention_until=retention_.until(at_utc, retention),
        extra=dict(extra or {}),
    )


def sibling(first: AuditRecord, event: str, *, previous_image: str | None = None) -> AuditRecord:
    """The record of another ``event`` of the same decision as ``first`` (built by ``build``).

    Every field is ``first``'s (already validated) but the event, its id and, when given, the
    previous image; what ``build`` would make of the same arguments, without validating it again.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}: expected one of {', '.join(EVENTS)}")
    if first.seq or first.hash:
        raise ValueError("a sibling is made from an unchained record")
    update: dict[str, Any] = {
        "id": record_id(first.promotion.uid, first.promotion.spec_hash, event),
        "event": event,
    }
    if previous_image is not None:
        update["previous_image"] = previous_image
    return first.model_copy(update=update)
