"""Identity stamps: who requested a Promotion and who made an Approval, signed with the operator's key.

The identity always comes from the authenticated request, never from what the user typed: a
user-supplied identity that differs is refused with a message saying what to do.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

import pydantic

from lockgate.api import approval, promotion
from lockgate.gates import spechash, stamps

REQUESTED_BY = promotion.REQUESTED_BY_ANNOTATION


class Refused(Exception):
    """The request must be denied; the message names the rule and what to do."""


@dataclasses.dataclass(frozen=True)
class User:
    username: str
    groups: tuple[str, ...]

    @classmethod
    def from_userinfo(cls, userinfo: Mapping[str, Any] | None) -> User:
        info = userinfo or {}
        username = str(info.get("username") or "")
        if not username:
            raise Refused("the request carries no authenticated user; Lockgate cannot attribute it")
        groups = tuple(sorted(str(g) for g in info.get("groups") or [] if g != "system:authenticated"))
        return cls(username, groups)


def stamp_promotion(
    key: bytes,
    obj: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    user: User,
    now: datetime.datetime,
) -> str | None:
    """The requester annotation to set, or None to leave it as it is. Raises ``Refused``.

    On create, and on every spec change, the requester is whoever made the request: the person
    who last changed the spec requests the new cycle (and so cannot approve it).
    """
    meta = obj.get("metadata", {})
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    supplied = (meta.get("annotations") or {}).get(REQUESTED_BY)
    previous = None if old is None else (old.get("metadata", {}).get("annotations") or {}).get(REQUESTED_BY)
    if old is None and not name:
        raise Refused("Promotions need a metadata.name (generateName is not supported): the stamp signs it")
    if supplied is not None and supplied != previous:
        raise Refused(
            f"annotation {REQUESTED_BY} is set by Lockgate from your authenticated identity; "
            "remove it from the manifest"
        )
    if old is None or previous is None or dict(old.get("spec") or {}) != dict(obj.get("spec") or {}):
        # (no previous stamp: written while the webhook was down; whoever writes it now requests it)
        return stamps.requester_annotation(key, namespace, name, user.username, user.groups, now)
    return previous if supplied is None else None


def stamp_approval(
    key: bytes, namespace: str, name: str, spec: Mapping[str, Any], user: User, now: datetime.datetime
) -> dict[str, Any]:
    """The stamped Approval spec fields (approver, groups, stamp). Raises ``Refused``."""
    if not name:
        raise Refused("Approvals need a metadata.name (generateName is not supported): the stamp signs it")
    supplied_approver = spec.get("approver")
    if supplied_approver not in (None, "", user.username):
        raise Refused(
            f"spec.approver is stamped from your identity ({user.username}); an Approval cannot name "
            f"{supplied_approver}: remove spec.approver"
        )
    supplied_groups = spec.get("groups")
    if supplied_groups not in (None, []) and sorted(supplied_groups) != list(user.groups):
        raise Refused("spec.groups is stamped from your identity; remove spec.groups from the manifest")
    if spec.get("stamp"):
        raise Refused("spec.stamp is set by Lockgate's admission webhook; remove it from the manifest")
    stamped = {
        **spec,
        "approver": user.username,
        "groups": list(user.groups),
        "stamp": {"at": now.isoformat(), "signature": "hmac-sha256:" + "0" * 64},
    }
    try:
        model = approval.ApprovalSpec.model_validate(stamped)
    except pydantic.ValidationError as exc:
        raise Refused(f"Approval spec is invalid: {exc.errors()[0].get('msg')}") from None
    signature = stamps.sign(key, stamps.approval_payload(namespace, name, model))
    assert model.stamp is not None
    stamp = {
        "at": model.stamp.at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "signature": signature,
    }
    return {"approver": user.username, "groups": list(user.groups), "stamp": stamp}


def malformed_approval(spec: Mapping[str, Any]) -> bool:
    """Whether the fields a user writes break the Approval schema (then the API server says which)."""
    probe = {
        **spec,
        "approver": "probe",
        "groups": [],
        "stamp": {"at": "2000-01-01T00:00:00Z", "signature": "hmac-sha256:" + "0" * 64},
    }
    try:
        approval.ApprovalSpec.model_validate(probe)
    except pydantic.ValidationError:
        return True
    return False


def bind_spec_hash(namespace: str, spec: Mapping[str, Any], target: Mapping[str, Any] | None) -> str:
    """The hash of the named Promotion's current spec, which an Approval without one binds to."""
    if target is None:
        raise Refused(
            f"Promotion {spec.get('promotion')!r} does not exist in namespace {namespace}: an Approval must be "
            "created in the Promotion's namespace and name it in spec.promotion"
        )
    return current_spec_hash(target)


def current_spec_hash(target: Mapping[str, Any]) -> str:
    """The hash of a Promotion's spec as it is now (as the operator computes it)."""
    return spechash.of_object(target)
