"""The image-change guard: in a gated namespace, only the operator, for a Promotion that is rolling
out (or rolling back), may change a workload's container image. Everything else passes.

The operator's deploy patch precedes its ``Deploying`` status write, so the Promotion may still read
``Pending``, ``AwaitingApproval``, ``Approved`` or no phase at all (approved before its first status
write landed): then the patch must name that Promotion's current cycle (the status's spec hash, or
without one the hash of the spec as it is now) and set its spec image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from lockgate.admission import stamping
from lockgate.rollout import plan

# The provenance annotations the operator's patch carries (``rollout.plan`` writes them).
ANNOTATION_PROMOTION = plan.ANNOTATION_PROMOTION
ANNOTATION_OPERATION = plan.ANNOTATION_OPERATION
ANNOTATION_SPEC_HASH = plan.ANNOTATION_SPEC_HASH


@dataclasses.dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    message: str
    emergency: bool = False


def judge(
    *,
    kind: str,
    namespace: str,
    name: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    user: stamping.User,
    namespace_gated: bool,
    operator_identity: str,
    break_glass_groups: Sequence[str],
    promotion: Mapping[str, Any] | None,
) -> Verdict:
    """May this update of ``kind``/``name`` go through? ``promotion`` is the one its annotation names."""
    changes = stamping.changed_images(old, new)
    if not namespace_gated:
        return Verdict(True, "NotGated", f"namespace {namespace} is not selected by any GatePolicy")
    forged = provenance_changes(old, new)
    if forged and user.username != operator_identity:
        return Verdict(
            False,
            "ProvenanceProtected",
            f"annotations {', '.join(forged)} on {kind} {name} record which approved Promotion deployed its image; "
            "only the Lockgate operator sets them",
        )
    if not changes:
        return Verdict(True, "NoImageChange", "no container image changes")
    described = ", ".join(f"{c}: {a} -> {b}" if a else f"{c}: new container with {b}" for c, a, b in changes)
    if user.username == operator_identity:
        if _promotion_allows(promotion, new, changes):
            return Verdict(True, "PromotionRollout", f"rollout for Promotion {namespace}/{_name(promotion)}")
        return Verdict(
            False,
            "NoActivePromotion",
            f"the operator may change images in {namespace} only for a Promotion that is deploying or rolling back "
            f"({described})",
        )
    if set(user.groups) & set(break_glass_groups):
        return Verdict(
            True,
            "BreakGlass",
            f"break-glass change by {user.username} ({described}): recorded as an emergency change "
            "needing retro review",
            emergency=True,
        )
    if not old.get("metadata"):
        return Verdict(
            False,
            "NewWorkloadInGatedNamespace",
            f"namespace {namespace} is gated by Lockgate: a new {kind} {name} would run images nobody approved "
            f"({described}). Create it in an ungated namespace and promote it, or have a break-glass group member "
            "create it (recorded as an emergency change needing retro review)",
        )
    return Verdict(
        False,
        "PromotionRequired",
        f"namespace {namespace} is gated by Lockgate: container image changes to {kind} {name} ({described}) "
        f"need an approved Promotion. Create one: kubectl apply -f promotion.yaml "
        f"(spec.target.name: {name}, spec.image: <new image>), then ask approvers to approve it",
    )


def provenance_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The ``lockgate.dev/*`` annotations an update adds, changes or removes."""
    before = {
        k: v for k, v in (old.get("metadata", {}).get("annotations") or {}).items() if k.startswith("lockgate.dev/")
    }
    after = {
        k: v for k, v in (new.get("metadata", {}).get("annotations") or {}).items() if k.startswith("lockgate.dev/")
    }
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def _name(promotion: Mapping[str, Any] | None) -> str:
    return str((promotion or {}).get("metadata", {}).get("name"))


def _promotion_allows(
    promotion: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    changes: list[tuple[str, str | None, str | None]],
) -> bool:
    if promotion is None:
        return False
    status = promotion.get("status") or {}
    phase = status.get("phase")
    annotations = new.get("metadata", {}).get("annotations") or {}
    operation = annotations.get(ANNOTATION_OPERATION)
    target = promotion.get("spec", {}).get("target") or {}
    container = target.get("container") or target.get("name")
    if phase == "Deploying" and operation == "deploy":
        wanted = (status.get("rollout") or {}).get("image") or promotion.get("spec", {}).get("image")
    elif phase in (None, "", "Pending", "AwaitingApproval", "Approved") and operation == "deploy":
        # The operator patches before the rollout's first status (its audit records are already
        # durable): the change must be this Promotion's current cycle and image. A Promotion with no
        # phase yet (approved before the operator's first status write, e.g. across a restart, or whose
        # first status said only that the audit sink was down) is in the cycle of its spec as it is now.
        cycle = status.get("specHash") or stamping.current_spec_hash(promotion)
        if annotations.get(ANNOTATION_SPEC_HASH) != cycle:
            return False
        wanted = promotion.get("spec", {}).get("image")
    elif phase == "RollingBack" and operation == "rollback":
        wanted = status.get("previousImage")
    else:
        return False
    return all(c == container and image == wanted for c, _, image in changes)
