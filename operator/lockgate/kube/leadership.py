"""Leader election with a coordination.k8s.io Lease: of several replicas, only the holder acts.

Every replica watches and keeps a warm view (and serves the webhooks); only the lease holder
reconciles. The holder renews every ``renew_every`` seconds; a replica takes over a lease not
renewed for ``lease_seconds``. Writes use the Lease's resourceVersion, so two replicas never both win.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from typing import Any

from lockgate.kube import client as kclient

logger = logging.getLogger("lockgate.leadership")


def _micro(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def expired(lease: dict[str, Any], now: datetime.datetime) -> bool:
    """Whether the current holder stopped renewing (pure)."""
    spec = lease.get("spec") or {}
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    duration = int(spec.get("leaseDurationSeconds") or 15)
    return renewed is None or now > renewed + datetime.timedelta(seconds=duration)


class Leadership:
    def __init__(
        self,
        api: kclient.Client,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: int = 15,
        renew_every: float = 5.0,
        on_change: Callable[[bool], None] | None = None,
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self.api = api
        self.path = kclient.resource_path("coordination.k8s.io", "v1", "leases", namespace)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_seconds, self.renew_every = lease_seconds, renew_every
        self.on_change = on_change
        self.clock = clock
        self.leading = asyncio.Event()

    def _spec(self, now: datetime.datetime, transitions: int, acquired: str | None) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "acquireTime": acquired or _micro(now),
            "renewTime": _micro(now),
            "leaseTransitions": transitions,
        }

    async def attempt(self) -> bool:
        """One acquire-or-renew round; returns whether this replica holds the lease now."""
        now = self.clock()
        lease = await self.api.get_or_none(f"{self.path}/{self.name}")
        try:
            if lease is None:
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._spec(now, 0, None),
                }
                await self.api.create(self.path, body)
                return True
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            if holder != self.identity and not expired(lease, now):
                return False
            transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
            acquired = spec.get("acquireTime") if holder == self.identity else None
            lease["spec"] = self._spec(now, transitions, acquired)
            await self.api.request("PUT", f"{self.path}/{self.name}", body=lease)
            return True
        except kclient.ApiError as exc:
            if exc.status == 409:  # another replica wrote first
                return False
            raise

    async def run(self) -> None:
        while True:
            try:
                held = await self.attempt()
            except (kclient.ApiError, kclient.ApiUnavailable) as exc:
                logger.warning("leader election round failed: %s", exc)
                held = False
            if held != self.leading.is_set():
                logger.info("%s leadership of lease %s/%s", "acquired" if held else "lost", self.namespace, self.name)
                if held:
                    self.leading.set()
                else:
                    self.leading.clear()
                if self.on_change is not None:
                    self.on_change(held)
            await asyncio.sleep(self.renew_every)
