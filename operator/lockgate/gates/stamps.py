"""HMAC stamps: the canonical payloads the admission webhook signs and the operator verifies.

A stamp is ``hmac-sha256:<hex>`` over canonical JSON (sorted keys, no whitespace) of the fields that
must not be forged. Only the operator holds the key, so an Approval or Promotion written around the
webhook (or edited afterwards) does not verify and never counts.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

from lockgate.api import approval, promotion
from lockgate.gates import facts

PREFIX = "hmac-sha256:"


def _timestamp(at: datetime.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("stamp time must be timezone-aware")
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def approval_payload(namespace: str, name: str, spec: approval.ApprovalSpec) -> bytes:
    """What an Approval's signature covers. ``spec.stamp.at`` must be set (the webhook sets it first)."""
    if spec.stamp is None:
        raise ValueError("the Approval has no stamp to sign")
    return _canonical(
        {
            "kind": "Approval",
            "namespace": namespace,
            "name": name,
            "promotion": spec.promotion,
            "decision": spec.decision,
            "specHash": spec.spec_hash,
            "purpose": spec.purpose,
            "approver": spec.approver,
            "groups": sorted(spec.groups),
            "at": _timestamp(spec.stamp.at),
        }
    )


def requester_payload(
    namespace: str, name: str, username: str, groups: Iterable[str], at: datetime.datetime
) -> bytes:
    """What the requester stamp (annotation ``lockgate.dev/requested-by``) covers.

    The webhook re-stamps on every spec change: whoever last changed the spec requests the new cycle.
    """
    return _canonical(
        {
            "kind": "Promotion",
            "namespace": namespace,
            "name": name,
            "username": username,
            "groups": sorted(groups),
            "at": _timestamp(at),
        }
    )


def sign(key: bytes, payload: bytes) -> str:
    """``hmac-sha256:<hex>`` of the payload."""
    return PREFIX + hmac.new(key, payload, hashlib.sha256).hexdigest()


def verify(key: bytes, payload: bytes, signature: str) -> bool:
    """Constant-time check of a signature."""
    return hmac.compare_digest(sign(key, payload).encode(), signature.encode())


def verify_approval(key: bytes, obj: approval.Approval) -> bool:
    """Whether an Approval's stamp verifies (False when unstamped)."""
    spec = obj.spec
    if spec.stamp is None or not spec.approver or obj.metadata.namespace is None:
        return False
    payload = approval_payload(obj.metadata.namespace, obj.metadata.name, spec)
    return verify(key, payload, spec.stamp.signature)


class _RequesterStamp(pydantic.BaseModel):
    username: str
    groups: list[str] = []
    at: datetime.datetime
    signature: str


def requester_annotation(
    key: bytes, namespace: str, name: str, username: str, groups: Iterable[str], at: datetime.datetime
) -> str:
    """The JSON the webhook writes into the ``lockgate.dev/requested-by`` annotation."""
    groups = list(groups)
    signature = sign(key, requester_payload(namespace, name, username, groups, at))
    return json.dumps(
        {"username": username, "groups": groups, "at": _timestamp(at), "signature": signature},
        sort_keys=True,
        separators=(",", ":"),
    )


def verified_requester(key: bytes, obj: promotion.Promotion) -> facts.Identity | None:
    """The requester from the annotation when its stamp verifies; None when absent, malformed or forged."""
    raw = obj.metadata.annotations.get(promotion.REQUESTED_BY_ANNOTATION)
    if not raw or obj.metadata.namespace is None:
        return None
    try:
        stamp = _RequesterStamp.model_validate_json(raw)
    except pydantic.ValidationError:
        return None
    payload = requester_payload(
        obj.metadata.namespace, obj.metadata.name, stamp.username, stamp.groups, stamp.at
    )
    if not verify(key, payload, stamp.signature):
        return None
    return facts.Identity(username=stamp.username, groups=tuple(stamp.groups))
