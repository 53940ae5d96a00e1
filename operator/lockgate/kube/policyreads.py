"""Facts about policies, read from the API itself: every GatePolicy and one Namespace's labels.

The view (kept by the watches) answers these at every pass. Only while the watch of GatePolicies or
Namespaces is down, when the view may miss a policy tightened or a namespace relabelled meanwhile, does
a decision to deploy (and the image guard) read them here instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import pydantic

from lockgate.api import gatepolicy
from lockgate.kube import client as kclient

logger = logging.getLogger("lockgate.gate")

PAGE = 250
RECENT_NAMESPACES = 1000  # reads kept for ``within`` (all forgotten at once past it)
POLICIES = kclient.resource_path("lockgate.dev", "v1alpha1", "gatepolicies")


class PoliciesUnreadable(Exception):
    """GatePolicies or the Namespace could not be read from the API (the message says which, and why)."""


Read = tuple[list[gatepolicy.GatePolicy], dict[str, str]]  # every GatePolicy, and one namespace's labels


class PolicyReads:
    def __init__(self, api: kclient.Client) -> None:
        self.api = api
        self._recent: dict[str, tuple[float, Read]] = {}  # by namespace: when it was read, and what

    async def current(
        self, namespace: str, last_good: Mapping[str, gatepolicy.GatePolicy], *, within: float = 0.0
    ) -> Read:
        """Every GatePolicy as the API has it now, and ``namespace``'s labels (none if it does not exist).

        A malformed policy (admission refuses them) counts as its ``last_good`` model, as in the view. With
        ``within``, a read of the same namespace made less than that many seconds ago is answered again (the
        image guard: every Pod of a busy namespace would read them otherwise)."""
        now = time.monotonic()
        recent = self._recent.get(namespace)
        if within > 0 and recent is not None and now - recent[0] < within:
            return recent[1]
        read = await self._read(namespace, last_good)
        if len(self._recent) >= RECENT_NAMESPACES:
            self._recent.clear()
        self._recent[namespace] = (now, read)
        return read

    async def _read(self, namespace: str, last_good: Mapping[str, gatepolicy.GatePolicy]) -> Read:
        policies: list[gatepolicy.GatePolicy] = []
        params = {"limit": str(PAGE)}
        try:
            while True:
                page = await self.api.get(POLICIES, params=dict(params), agent="fresh gatepolicies")
                for obj in page.get("items") or []:
                    name = str(obj["metadata"]["name"])
                    try:
                        policies.append(gatepolicy.GatePolicy.from_k8s(obj))
                    except pydantic.ValidationError as exc:
                        logger.error("GatePolicy %s is malformed and is ignored: %s", name, exc)
                        if name in last_good:
                            policies.append(last_good[name])
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    break
                params["continue"] = str(token)
        except (kclient.ApiError, kclient.ApiUnavailable) as exc:
            raise PoliciesUnreadable(f"listing GatePolicies failed: {exc}") from None
        try:
            found = await self.api.get_or_none(
                kclient.resource_path("", "v1", "namespaces", name=namespace), agent="fresh namespace"
            )
        except (kclient.ApiError, kclient.ApiUnavailable) as exc:
            raise PoliciesUnreadable(f"reading Namespace {namespace} failed: {exc}") from None
        labels = {str(k): str(v) for k, v in ((found or {}).get("metadata", {}).get("labels") or {}).items()}
        return policies, labels
