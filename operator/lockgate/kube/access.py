"""Facts about approvers: may this identity approve promotions here? (SubjectAccessReview, cached)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from lockgate.kube import client as kclient

APPROVE = {"verb": "approve", "group": "lockgate.dev", "resource": "promotions"}


class ApproverAccess:
    """Asks the API server's authorizer, so RBAC stays the one place where approvers are defined."""

    def __init__(self, api: kclient.Client, *, ttl: float = 10.0) -> None:
        self.api = api
        self.ttl = ttl
        self._cache: dict[tuple[str, tuple[str, ...], str], tuple[float, bool, str]] = {}

    def invalidate(self) -> None:
        """Forget every answer (RBAC changed)."""
        self._cache.clear()

    async def can_approve(
        self, username: str, groups: Sequence[str], namespace: str, *, fresh: bool = False
    ) -> tuple[bool, str]:
        """The authorizer's answer; ``fresh`` asks again even when a cached answer is still valid."""
        key = (username, tuple(sorted(groups)), namespace)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now and not fresh:
            return cached[1], cached[2]
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": username,
                "groups": list(groups),
                "resourceAttributes": {**APPROVE, "namespace": namespace},
            },
        }
        answer = await self.api.create(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            review,
            agent=f"approver-check user={username}",
        )
        status = answer.get("status", {})
        allowed = bool(status.get("allowed"))
        reason = str(status.get("reason") or status.get("evaluationError") or "")
        self._cache[key] = (now + self.ttl, allowed, reason)
        return allowed, reason
