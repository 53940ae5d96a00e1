"""Publishing GatePolicy statuses: required approvals, problems, and whether the image guard is called in
every namespace the policy gates (``ImageGuardCalled``), written only when they differ.

A policy's own events publish it at once; a change of the namespaces' labels or of the guard's webhook
configuration republishes every policy, at most once a second (a restart's listing of many namespaces is
one pass, not one per namespace).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from lockgate.admission import coverage
from lockgate.gates import policies
from lockgate.kube import client as kclient
from lockgate.kube import objects
from lockgate.lifecycle import statuses, view

logger = logging.getLogger(__name__)
#: The shortest time between two republications of every policy.
REPUBLISH_EVERY = 1.0


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class PolicyStatuses:
    def __init__(
        self,
        api: kclient.Client,
        cluster: view.ClusterView,
        *,
        clock: Callable[[], datetime.datetime] = _utcnow,
        every: float = REPUBLISH_EVERY,
        primed: asyncio.Event | None = None,
    ) -> None:
        """``primed``: set once the view holds every GatePolicy and Namespace; until then the guard's coverage
        is not judged (a namespace not listed yet would look guarded)."""
        self.api = api
        self.view = cluster
        self.clock = clock
        self.every = every
        self.primed = primed or asyncio.Event()
        if primed is None:
            self.primed.set()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._said: frozenset[str] = frozenset()  # the unguarded namespaces last logged
        self._unverified_said: tuple[str, ...] = ()  # the unverifiable conditions last logged

    def start(self, *, read_configuration: bool = False) -> None:
        """Start republishing; ``read_configuration``: read the guard's webhook configuration once first, so a
        missing one is reported (a watch says nothing of an object that does not exist). Not where Kopf
        manages it: Kopf creates it moments after the start."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._republish())]
        if read_configuration:
            self._tasks.append(loop.create_task(self._read_configuration()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # each stops, whatever ended the others
                await task

    def changed(self) -> None:
        """Namespaces' labels or the guard's configuration changed: republish every policy soon."""
        self._changed.set()

    def wanted(self, obj: Mapping[str, Any], judged: coverage.Coverage | None = None) -> dict[str, Any]:
        """The status ``obj`` should have; with the guard's coverage (``judged``, else the last one) once its
        configuration is known."""
        wanted = statuses.policy_status(obj)
        if not self.view.guard_configuration_seen or not self.primed.is_set():
            return wanted
        judged = judged or self.view.guard_coverage(advance=False)
        model = self.view.policy_models.get(str(obj["metadata"]["name"]))
        unguarded = judged.not_called
        mine = {
            ns: gaps
            for ns, gaps in unguarded.items()
            if model is not None and policies.selects(model.spec.namespace_selector, self.view.namespaces.get(ns, {}))
        }
        unverified = judged.unverifiable
        if mine:
            condition = ("ImageGuardCalled", "False", "GuardNotCalled", coverage.message(mine))
        elif unverified and model is not None and self._gates_any(model):
            condition = (
                "ImageGuardCalled",
                "Unknown",
                "GuardConditionsUnverified",
                coverage.unverified_message(unverified),
            )
        else:
            condition = ("ImageGuardCalled", "True", "Called", coverage.message(mine, setup=self.view.guard_setup))
        wanted["unguardedNamespaces"] = sorted(mine)
        wanted["conditions"] = statuses.policy_conditions(obj, self.clock(), [condition])
        return wanted

    def _gates_any(self, model: Any) -> bool:
        return any(policies.selects(model.spec.namespace_selector, labels) for labels in self.view.namespaces.values())

    async def publish(self, obj: Mapping[str, Any], judged: coverage.Coverage | None = None) -> None:
        """Write ``obj``'s status when it differs from what it should be."""
        wanted = self.wanted(obj, judged)
        have = obj.get("status") or {}
        same = all(have.get(k) == v for k, v in wanted.items() if k != "conditions")
        if same and ("conditions" not in wanted or _same_conditions(have.get("conditions"), wanted["conditions"])):
            return
        try:
            await objects.patch_policy_status(self.api, str(obj["metadata"]["name"]), wanted)
        except kclient.ApiError as exc:
            if exc.status != 404:
                raise

    async def _read_configuration(self) -> None:
        path = kclient.resource_path(
            "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", name=coverage.CONFIGURATION
        )
        delay = 1.0
        while not self.view.guard_configuration_seen:
            try:
                found = await self.api.get_or_none(path)
            except Exception as exc:  # the API's answer: logged, and asked again
                logger.warning("reading ValidatingWebhookConfiguration %s: %s; retrying", coverage.CONFIGURATION, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if not self.view.guard_configuration_seen:  # a watch event that came first is newer
                self.view.put_guard_configuration(found)
                self.changed()

    async def _republish(self) -> None:
        await self.primed.wait()
        delay = self.every
        while True:
            await self._changed.wait()
            self._changed.clear()
            failed, judged = False, None
            try:
                judged = self.view.guard_coverage()  # one pass per round: all policies say the same
                self._log_coverage(judged)
                for obj in list(self.view.policies.values()):
                    try:
                        await self.publish(obj, judged)
                    except Exception as exc:  # the API's answer, say: logged, and tried again, less often
                        logger.warning("GatePolicy %s status not written: %s; retrying", obj["metadata"]["name"], exc)
                        failed = True
            except Exception:  # never a silent stop: logged, and tried again
                logger.exception("publishing GatePolicy statuses failed; retrying")
                failed = True
            if failed or (judged is not None and judged.pending):  # or the coverage is judged in parts: go on
                self._changed.set()
            delay = min(delay * 2, 60.0) if failed else self.every
            await asyncio.sleep(delay)

    def _log_coverage(self, judged: coverage.Coverage) -> None:
        unverified = tuple(judged.unverifiable)
        if unverified != self._unverified_said:
            if unverified:
                logger.warning("%s", coverage.unverified_message(list(unverified)))
            self._unverified_said = unverified
        unguarded = judged.not_called
        if frozenset(unguarded) != self._said:
            if unguarded:
                logger.error("%s", coverage.message(unguarded))
            elif self._said:
                logger.info("the image guard is called in every gated namespace again")
            self._said = frozenset(unguarded)


def _same_conditions(have: Any, wanted: Any) -> bool:
    """Equal but for lastTransitionTime (kept when the status does not change)."""

    def strip(conditions: Any) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conditions or []]

    return strip(have) == strip(wanted)
