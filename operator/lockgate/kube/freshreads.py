"""Facts read from the API itself, for when the view's watch of them may have missed a change: every
GatePolicy, one Namespace's labels, one Promotion and its Approvals.

The view (kept by the watches) answers these at every pass. Only while the stream of their kind is not
open (down, or between two streams) does a decision to deploy (and, for the policies, the image guard)
read them here instead: a policy tightened, a namespace labelled into a policy, a Promotion deleted or an
Approval withdrawn meanwhile must apply. Each read is bounded in time as a whole (``seconds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pydantic

from lockgate.api import gatepolicy
from lockgate.kube import client as kclient
from lockgate.kube import informer, objects

logger = logging.getLogger("lockgate.gate")

TIMEOUT_SECONDS = 5.0
GROUP, VERSION = objects.GROUP, objects.VERSION
NAMESPACES = kclient.resource_path("", "v1", "namespaces")

Policies = tuple[list[gatepolicy.GatePolicy], dict[str, str]]  # every GatePolicy, and one namespace's labels


class Unreadable(Exception):
    """What could not be read from the API, and why (the message says both)."""


class FreshReads:
    def __init__(self, api: kclient.Client) -> None:
        self.api = api

    async def policies(
        self,
        namespace: str,
        last_good: Mapping[str, gatepolicy.GatePolicy],
        *,
        seconds: float = TIMEOUT_SECONDS,
    ) -> Policies:
        """Every GatePolicy as the API has it now, and ``namespace``'s labels (none if it does not exist), within
        ``seconds`` in all.

        A malformed policy (admission refuses them) counts as its ``last_good`` model, as in the view."""
        async with _within(seconds, f"GatePolicies and Namespace {namespace}"):
            listed = await self._list(kclient.resource_path(GROUP, VERSION, "gatepolicies"), "GatePolicies")
            # Listed by name: the operator's RBAC lists and watches Namespaces; it need not get them.
            found = await self._list(NAMESPACES, f"Namespace {namespace}", f"metadata.name={namespace}")
        policies: list[gatepolicy.GatePolicy] = []
        for obj in listed:
            name = str(obj["metadata"]["name"])
            try:
                policies.append(gatepolicy.GatePolicy.from_k8s(obj))
            except pydantic.ValidationError as exc:
                logger.error("GatePolicy %s is malformed and is ignored: %s", name, exc)
                if name in last_good:
                    policies.append(last_good[name])
        labels = (found[0].get("metadata", {}).get("labels") or {}) if found else {}
        return policies, {str(k): str(v) for k, v in labels.items()}

    async def approvals(
        self, namespace: str, promotion: str, *, seconds: float = TIMEOUT_SECONDS
    ) -> list[dict[str, Any]]:
        """The Approvals of Promotion ``namespace``/``promotion`` as the API has them now, within ``seconds``."""
        async with _within(seconds, f"the Approvals in {namespace}"):
            path = kclient.resource_path(GROUP, VERSION, "approvals", namespace)
            listed = await self._list(path, f"the Approvals in {namespace}")
        return [a for a in listed if (a.get("spec") or {}).get("promotion") == promotion]

    async def promotion(self, namespace: str, name: str, *, seconds: float = TIMEOUT_SECONDS) -> dict[str, Any] | None:
        """Promotion ``namespace``/``name`` as the API has it now (None: deleted), within ``seconds``."""
        async with _within(seconds, f"Promotion {namespace}/{name}"):
            try:
                return await self.api.get_or_none(objects.promotion_path(namespace, name), agent="fresh promotions")
            except (kclient.ApiError, kclient.ApiUnavailable) as exc:
                raise Unreadable(f"reading Promotion {namespace}/{name} failed: {exc}") from None

    async def _list(self, path: str, what: str, field_selector: str = "") -> list[dict[str, Any]]:
        """Every item of a collection, in pages; ``Unreadable`` naming ``what`` if the API refuses or fails."""
        items: list[dict[str, Any]] = []
        params = {"limit": str(informer.PAGE)}
        if field_selector:
            params["fieldSelector"] = field_selector
        try:
            while True:
                page = await self.api.get(path, params=dict(params), agent=f"fresh {path.rsplit('/', 1)[-1]}")
                items.extend(page.get("items") or [])
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    return items
                params["continue"] = str(token)
        except (kclient.ApiError, kclient.ApiUnavailable) as exc:
            raise Unreadable(f"reading {what} failed: {exc}") from None


@contextlib.asynccontextmanager
async def _within(seconds: float, what: str) -> AsyncIterator[None]:
    """``Unreadable`` naming ``what`` if the reads inside take longer than ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise Unreadable(f"reading {what} failed: no answer within {seconds:g}s") from None
