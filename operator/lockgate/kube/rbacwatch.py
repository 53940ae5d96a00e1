"""Watching RBAC objects so cached approver answers are forgotten the moment RBAC changes.

One informer per kind (Roles, RoleBindings, ClusterRoles, ClusterRoleBindings; ``kube/informer.py``). A
kind counts as watched only while its stream is open and has lasted a second (``watch_opened`` /
``watch_lost``, from the informer's ``on_current``), so an expired, refused or dead watch, or the moment
between two streams, makes the decision to deploy ask the authorizer again instead of trusting the cache.
Every change on an open stream forgets the cached answers (``ApproverAccess.rbac_changed``) and re-judges
the waiting Promotions (``on_change``). What arrives while the kind is not open (a listing, a resumed
stream's backlog) is noted once: opening forgets the answers anyway, and re-judges only if something came.
So a listing of thousands of objects does not overtake every answer asked meanwhile, and a stream renewed
with nothing new (every few minutes) re-judges nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from lockgate.kube import access, informer
from lockgate.kube import client as kclient

logger = logging.getLogger("lockgate.rbac")

GROUP, VERSION = "rbac.authorization.k8s.io", "v1"

# Told, per kind, whether its watch is up (False while a failure makes it wait): the lockgate_watch_up gauge.
WatchState = Callable[[str], Callable[[bool], None] | None]


class RbacWatch:
    def __init__(
        self,
        api: kclient.Client,
        approvers: access.ApproverAccess,
        on_change: Callable[[], None],
        *,
        server_seconds: int = 300,
        state: WatchState = lambda plural: None,
    ) -> None:
        """``on_change()``: RBAC changed, or a watch (re)opened after changes may have been missed."""
        self.approvers = approvers
        self.on_change = on_change
        self._open: set[str] = set()  # kinds whose stream is open and lasted a second
        self._unseen: set[str] = set()  # kinds with changes delivered while not open
        self.informers = [
            informer.Informer(
                api,
                kclient.resource_path(GROUP, VERSION, plural),
                self._changed(plural),
                known=tuple,  # a deleted object is delivered as such by the stream; a vanished one needs no tombstone
                on_state=self._state(plural, state(plural)),
                on_current=self._current(plural),
                server_seconds=server_seconds,
            )
            for plural in sorted(access.RBAC_KINDS)
        ]

    async def run(self) -> None:
        """Watch every RBAC kind until cancelled."""
        try:
            await asyncio.gather(*(i.run() for i in self.informers))
        finally:
            for plural in access.RBAC_KINDS:
                self.approvers.watch_lost(plural)

    def _changed(self, plural: str) -> Callable[[str, dict[str, Any]], None]:
        def changed(type_: str, obj: dict[str, Any]) -> None:
            if plural not in self._open:  # listed, or a backlog: opening the kind forgets the answers
                self._unseen.add(plural)
                return
            self.approvers.rbac_changed(plural)
            self.on_change()

        return changed

    def _current(self, plural: str) -> Callable[[bool], None]:
        def current(streaming: bool) -> None:
            if streaming:
                self._open.add(plural)
                self.approvers.watch_opened(plural)  # forgets answers: changes may have been missed meanwhile
                if plural in self._unseen:
                    self._unseen.discard(plural)
                    self.on_change()
            else:
                self._open.discard(plural)
                self.approvers.watch_lost(plural)

        return current

    @staticmethod
    def _state(plural: str, gauge: Callable[[bool], None] | None) -> Callable[[bool], None]:
        was_up = True

        def state(up: bool) -> None:
            nonlocal was_up
            if was_up and not up:
                logger.warning(
                    "watch of %s down: deploy decisions ask every approver's SubjectAccessReview again until it is "
                    "back",
                    plural,
                )
            was_up = up
            if gauge is not None:
                gauge(up)

        return state
