"""Condition types and ``set_condition``: lastTransitionTime moves only when the status flips."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from lockgate.api import meta

READY = "Ready"
POLICY_PASSED = "PolicyPassed"
APPROVED = "Approved"
DEPLOYED = "Deployed"
VERIFIED = "Verified"
AUDIT_RECORDED = "AuditRecorded"
COUNTED = "Counted"

#: The Promotion's condition types, in the order they appear in status.
PROMOTION_TYPES: tuple[str, ...] = (READY, POLICY_PASSED, APPROVED, DEPLOYED, VERIFIED, AUDIT_RECORDED)


def set_condition(
    conditions: Sequence[meta.Condition],
    type: str,
    status: meta.ConditionStatus,
    reason: str,
    message: str,
    now: datetime.datetime,
    observed_generation: int | None,
) -> list[meta.Condition]:
    """Return a new list with condition ``type`` set; other conditions are kept in order.

    ``lastTransitionTime`` is ``now`` when the condition is new or its status differs from the
    existing one, and is carried over otherwise (reason, message and observedGeneration still update).
    """
    result: list[meta.Condition] = []
    found = False
    for existing in conditions:
        if existing.type != type:
            result.append(existing)
            continue
        found = True
        when = existing.last_transition_time if existing.status == status else now
        result.append(
            meta.Condition(
                type=type,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=when,
                observed_generation=observed_generation,
            )
        )
    if not found:
        result.append(
            meta.Condition(
                type=type,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now,
                observed_generation=observed_generation,
            )
        )
    return result


def get_condition(conditions: Sequence[meta.Condition], type: str) -> meta.Condition | None:
    """The condition of the given type, or None."""
    for condition in conditions:
        if condition.type == type:
            return condition
    return None
