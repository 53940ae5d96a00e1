"""Kopf handlers on RBAC objects: a change forgets the cached approver answers and re-judges waiting Promotions.

They only translate watch events into ``ApproverAccess.rbac_changed`` and one (debounced) look at
every waiting Promotion, since a granted or revoked ``approve`` may change who counts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from lockgate.kube import access
from lockgate.lifecycle import reconciler as lifecycle_reconciler

RBAC_GROUP = "rbac.authorization.k8s.io"
SETTLE_SECONDS = 1.0  # a burst of RBAC changes (or the initial listing) leads to one look


def register(
    registry: kopf.OperatorRegistry,
    approvers: access.ApproverAccess,
    reconciler: lifecycle_reconciler.Reconciler,
) -> None:
    pending: dict[str, asyncio.TimerHandle] = {}

    def look_again() -> None:
        pending.pop("look", None)
        reconciler.touch_waiting()

    for plural in sorted(access.RBAC_KINDS):
        _register_kind(registry, plural, approvers, pending, look_again)


def _register_kind(
    registry: kopf.OperatorRegistry,
    plural: str,
    approvers: access.ApproverAccess,
    pending: dict[str, asyncio.TimerHandle],
    look_again: Any,
) -> None:
    @kopf.on.event(RBAC_GROUP, "v1", plural, registry=registry, id=f"rbac-{plural}")
    async def rbac_changed(**_: Any) -> None:
        approvers.rbac_changed(plural)
        if "look" in pending:
            pending["look"].cancel()
        pending["look"] = asyncio.get_running_loop().call_later(SETTLE_SECONDS, look_again)
