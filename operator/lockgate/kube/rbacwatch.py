"""Watching RBAC objects so cached approver answers are forgotten the moment RBAC changes.

One loop per kind (Roles, RoleBindings, ClusterRoles, ClusterRoleBindings): list, then watch from the
list's resourceVersion, again after every server timeout. Every change, and every (re)list, forgets
the cached answers (``ApproverAccess.rbac_changed``); a kind counts as watched only while its stream
is open (``watch_opened`` / ``watch_lost``), so an expired, refused or dead watch makes the decision
to deploy ask the authorizer again instead of trusting the cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from lockgate.kube import access
from lockgate.kube import client as kclient

logger = logging.getLogger("lockgate.rbac")

GROUP, VERSION = "rbac.authorization.k8s.io", "v1"
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)


class RbacWatch:
    def __init__(
        self,
        api: kclient.Client,
        approvers: access.ApproverAccess,
        on_change: Callable[[], None],
        *,
        server_seconds: int = 60,
    ) -> None:
        self.api = api
        self.approvers = approvers
        self.on_change = on_change
        self.server_seconds = server_seconds

    async def run(self) -> None:
        """Watch every RBAC kind until cancelled."""
        await asyncio.gather(*(self._watch(plural) for plural in sorted(access.RBAC_KINDS)))

    async def _watch(self, plural: str) -> None:
        path = kclient.resource_path(GROUP, VERSION, plural)
        failures = 0
        while True:
            try:
                listing = await self.api.get(path, agent=f"rbac-watch {plural}")
                version = str(listing.get("metadata", {}).get("resourceVersion") or "")
                self.approvers.watch_opened(plural)  # forgets answers: changes may have been missed meanwhile
                self.on_change()
                failures = 0
                while True:  # each stream ends after server_seconds; continue from the last version seen
                    async for event in self.api.watch(
                        path, version, server_seconds=self.server_seconds, agent=f"rbac-watch {plural}"
                    ):
                        version = str(event.get("object", {}).get("metadata", {}).get("resourceVersion") or version)
                        if event.get("type") != "BOOKMARK":
                            self.approvers.rbac_changed(plural)
                            self.on_change()
            except asyncio.CancelledError:
                self.approvers.watch_lost(plural)
                raise
            except (kclient.ApiError, kclient.ApiUnavailable, ValueError) as exc:
                self.approvers.watch_lost(plural)
                wait = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                logger.warning(
                    "watch of %s lost (%s): deploy decisions ask every approver's SubjectAccessReview again "
                    "until it is back; retrying in %.1fs",
                    plural,
                    exc,
                    wait,
                )
                await asyncio.sleep(wait)
