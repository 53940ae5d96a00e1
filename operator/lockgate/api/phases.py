"""The phases a Promotion moves through, and which of them end a cycle."""

from __future__ import annotations

import enum


class Phase(enum.StrEnum):
    """Where a Promotion stands. The gate engine decides the first four; the operator the rest."""

    PENDING = "Pending"
    """A policy blocks the change before approvals matter (a failed rule, no policy, unknown requester)."""
    AWAITING_APPROVAL = "AwaitingApproval"
    """Ready for approvers: every blocking check passed; approvals or time-based gates are outstanding."""
    APPROVED = "Approved"
    """Every gate passed; the operator may deploy."""
    DEPLOYING = "Deploying"
    VERIFYING = "Verifying"
    ROLLING_BACK = "RollingBack"
    """Verification failed and rollbackOnFailure is set: the previous image is being restored."""
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"
    REJECTED = "Rejected"
    """An eligible approver rejected this spec; a spec change starts a new cycle."""
    SUPERSEDED = "Superseded"
    """A newer Promotion for the same target replaced this one before it deployed."""


#: Phases in which nothing more happens for the current spec hash.
TERMINAL: frozenset[Phase] = frozenset(
    {Phase.SUCCEEDED, Phase.FAILED, Phase.ROLLED_BACK, Phase.REJECTED, Phase.SUPERSEDED}
)

#: Phases the gate engine can return; the operator owns the others.
GATE_PHASES: frozenset[Phase] = frozenset(
    {Phase.PENDING, Phase.AWAITING_APPROVAL, Phase.APPROVED, Phase.REJECTED}
)
