"""Facts about approvers: may this identity approve promotions here? (SubjectAccessReview, cached).

Answers are cached for ``ttl`` seconds and forgotten at once when any RBAC object changes (the
operator watches Roles, RoleBindings, ClusterRoles and ClusterRoleBindings: ``kube.rbacwatch``). A
decision to deploy (``fresh=True``) trusts a cached answer only while all four watches are open
(``watch_opened`` .. ``watch_lost``); otherwise it asks again. Authorizers other than RBAC (webhook
authorizers) are covered by the ttl, as the API server's own caches of them are.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from lockgate.kube import client as kclient

APPROVE = {"verb": "approve", "group": "lockgate.dev", "resource": "promotions"}
RBAC_KINDS = frozenset({"roles", "rolebindings", "clusterroles", "clusterrolebindings"})
ASKS_WHILE_RBAC_CHANGES = 3  # an answer overtaken by an RBAC change is asked again, this many times at most


class ApproverAccess:
    """Asks the API server's authorizer, so RBAC stays the one place where approvers are defined."""

    def __init__(self, api: kclient.Client, *, ttl: float = 10.0) -> None:
        self.api = api
        self.ttl = ttl
        self._cache: dict[tuple[str, tuple[str, ...], str], tuple[float, bool, str]] = {}
        self._rbac_open: set[str] = set()
        self._generation = 0  # bumped by every invalidation

    def invalidate(self) -> None:
        """Forget every answer (RBAC changed)."""
        self._cache.clear()
        self._generation += 1

    def rbac_changed(self, kind: str) -> None:
        """An RBAC object of ``kind`` (plural) was added, changed or deleted."""
        self.invalidate()

    def watch_opened(self, kind: str) -> None:
        """The watch of ``kind`` is open from a fresh list (changes before it may have been missed)."""
        self._rbac_open.add(kind)
        self.invalidate()

    def watch_lost(self, kind: str) -> None:
        """The watch of ``kind`` ended or failed: until it is open again, changes may go unseen."""
        self._rbac_open.discard(kind)
        self.invalidate()

    @property
    def generation(self) -> int:
        """Bumped whenever cached answers are forgotten (an RBAC change, a watch opened or lost)."""
        return self._generation

    @property
    def watching_rbac(self) -> bool:
        """Every RBAC kind's watch is open: any change reaches ``rbac_changed``."""
        return self._rbac_open >= RBAC_KINDS

    def known(
        self, username: str, groups: Sequence[str], namespace: str, *, fresh: bool = False
    ) -> tuple[bool, str] | None:
        """The cached answer that ``can_approve`` would return without asking, if there is one."""
        cached = self._cache.get((username, tuple(sorted(groups)), namespace))
        if cached is not None and cached[0] > time.monotonic() and (not fresh or self.watching_rbac):
            return cached[1], cached[2]
        return None

    async def can_approve(
        self, username: str, groups: Sequence[str], namespace: str, *, fresh: bool = False
    ) -> tuple[bool, str]:
        """The authorizer's answer; ``fresh`` asks again unless RBAC changes are known to reach the cache."""
        known = self.known(username, groups, namespace, fresh=fresh)
        if known is not None:
            return known
        key = (username, tuple(sorted(groups)), namespace)
        now = time.monotonic()
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": username,
                "groups": list(groups),
                "resourceAttributes": {**APPROVE, "namespace": namespace},
            },
        }
        for _ in range(ASKS_WHILE_RBAC_CHANGES):
            generation = self._generation
            answer = await self.api.create(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                review,
                agent=f"approver-check user={username}",
            )
            status = answer.get("status", {})
            allowed = bool(status.get("allowed"))
            reason = str(status.get("reason") or status.get("evaluationError") or "")
            if generation == self._generation:  # else RBAC changed meanwhile: the answer may predate it
                self._cache[key] = (now + self.ttl, allowed, reason)
                return allowed, reason
        return False, "RBAC kept changing while the authorizer was asked; judged again once it settles"
