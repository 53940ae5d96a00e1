"""The lifecycle's door to the audit trail: records built from Promotions, written off the event loop.

A sink failure becomes ``AuditUnavailableError`` (the lifecycle then waits: fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from lockgate import metrics as lockgate_metrics
from lockgate.admission import imageguard
from lockgate.audit import errors, record, settings, trail
from lockgate.lifecycle import statuses

logger = logging.getLogger("lockgate.audit")

LOST_RECHECK_SECONDS = 2.0
CHECK_WAIT_SECONDS = 5.0  # a record at start-up waits this long for the trail check before it is refused


class AuditUnavailableError(Exception):
    """The audit trail could not durably record a decision; nothing may proceed (fail closed)."""


class AuditAdapter:
    def __init__(
        self,
        audit_trail: trail.AuditTrail,
        *,
        operator: str,
        retention: str = "7y",
        environment: str | None = None,
        metrics: lockgate_metrics.Metrics | None = None,
        new_trail: str | None = None,
    ) -> None:
        self.trail = audit_trail
        self.operator = operator
        self.retention = retention
        self.environment = environment
        self.metrics = metrics
        self.new_trail = new_trail
        self.empty_at_start: list[str] = []
        """Sinks that held no record when this operator checked its trail (``check_trail``)."""
        self.lost: str | None = None
        """Why nothing may be written: the trail lost what the cluster says it recorded."""
        self._missing: list[statuses.RecordedDecision] = []  # records the lost trail must hold again
        self._looked_at = 0.0
        self._acknowledged: str | None = None
        self._checked = asyncio.Event()  # cleared by ``prepare``: no record before ``check_trail`` has run
        self._checked.set()

    @classmethod
    def from_settings(
        cls, *, operator: str, trail: trail.AuditTrail | None = None, metrics: lockgate_metrics.Metrics | None = None
    ) -> AuditAdapter:
        config = settings.AuditSettings()
        return cls(
            trail or _trail_from(config),
            operator=operator,
            retention=config.retention,
            environment=config.environment,
            metrics=metrics,
            new_trail=config.new_trail,
        )

    def build(
        self,
        event: str,
        promotion: Mapping[str, Any],
        *,
        at: datetime.datetime,
        approvers: list[dict[str, Any]],
        policies: list[dict[str, Any]],
        previous_image: str | None = None,
        verification: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> record.AuditRecord:
        """The record of ``event`` for ``promotion``, attributed to this operator (not yet written)."""
        return record.build(
            event,
            promotion,
            at=at,
            operator=self.operator,
            approvers=approvers,
            policies=policies,
            previous_image=previous_image,
            verification=verification,
            extra=extra,
            environment=self.environment,
            retention=self.retention,
            key=key,
        )

    def build_all(
        self,
        events: list[tuple[str, str | None]],
        promotion: Mapping[str, Any],
        *,
        at: datetime.datetime,
        approvers: list[dict[str, Any]],
        policies: list[dict[str, Any]],
        verification: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> list[record.AuditRecord]:
        """The records of one decision, one per ``(event, previous image)``, sharing ``build``'s other fields.

        The first is built (and validated); the others are its siblings (``record.sibling``).
        """
        (event, previous_image), rest = events[0], events[1:]
        first = self.build(
            event,
            promotion,
            at=at,
            approvers=approvers,
            policies=policies,
            previous_image=previous_image,
            verification=verification,
            extra=extra,
        )
        return [first] + [record.sibling(first, e, previous_image=p) for e, p in rest]

    async def prepare(self) -> None:
        """Open every sink for writing before the first decision needs it (a problem is logged, not
        raised); nothing is written until ``check_trail`` has compared the trail with the cluster."""
        for problem in await asyncio.to_thread(self.trail.prepare):
            logger.error("%s; Promotions wait for the audit trail (fail closed) until it is fixed", problem)
        self._checked.clear()

    async def check_trail(self, recorded: Callable[[], Awaitable[list[statuses.RecordedDecision]]]) -> None:
        """Before the first record: a sink that holds nothing while Promotions say their decisions were
        recorded (``recorded`` lists a sample of them) lost its trail, or is not the one they were written
        to; every write then fails closed until it holds their records again, or ``new_trail`` accepts a
        new trail. Raises ``AuditUnavailableError`` when a sink cannot tell (the caller retries)."""
        try:
            self.empty_at_start = await asyncio.to_thread(self.trail.empty_sinks)
        except errors.AuditUnavailable as exc:
            raise AuditUnavailableError(str(exc)) from None
        claimed = await recorded() if self.empty_at_start else []
        self._checked.set()
        if not claimed:
            return
        sinks = ", ".join(self.empty_at_start)
        examples = ", ".join(d.promotion for d in claimed[:3]) + (" and others" if len(claimed) > 3 else "")
        if self.new_trail:
            self._acknowledged = (
                f"new trail in {sinks}, accepted by LOCKGATE_AUDIT_NEW_TRAIL ({self.new_trail}); the records of "
                f"earlier Promotions ({examples}) are not in it"
            )
            logger.warning("audit: %s", self._acknowledged)
            return
        self._missing = claimed[:3]
        self.lost = (
            f"the audit trail in {sinks} holds no record, but Promotions say their decisions were recorded "
            f"({examples}): the trail was lost, or this is not the one they were written to (check the volume, "
            "table or bucket). Nothing is recorded, and nothing deploys, until it holds their records again; to "
            "start a new trail deliberately, set LOCKGATE_AUDIT_NEW_TRAIL to the reason (written into its first "
            "record) and restart"
        )
        logger.error("audit: %s", self.lost)

    def trail_unchecked(self, problem: str) -> None:
        """``check_trail`` failed for good: stay closed, saying why."""
        self._checked.set()
        self.lost = (
            f"the audit trail could not be checked against the cluster at start-up ({problem}); restart the operator"
        )
        logger.error("audit: %s", self.lost)

    async def write(self, *records: record.AuditRecord) -> list[record.AuditRecord]:
        """Make ``records`` durable in every sink, in order, in one write (one transaction where a sink can).

        Returns them as stored: a record written before under the same id is returned as it was.
        """
        refused: str | None = None
        if not self._checked.is_set():  # the check usually ends within milliseconds of the start: wait a little
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._checked.wait(), CHECK_WAIT_SECONDS)
        if not self._checked.is_set():  # nothing goes into an empty sink before it is known not to have lost a trail
            refused = (
                "the audit trail is being checked against the cluster's Promotions before this operator's first "
                "record (start-up); retrying"
            )
        elif self.lost is not None and await self._still_lost():
            refused = self.lost
        if refused is not None:
            if self.metrics is not None:  # counted as failed writes: the audit alert fires
                for empty in self.empty_at_start:
                    self.metrics.audit_write(empty, False)
            raise AuditUnavailableError(refused)
        if self._acknowledged is not None and await self._still_new():  # its first record says why it is new
            first = records[0].model_copy(update={"extra": {**records[0].extra, "newTrail": self._acknowledged}})
            records = (first, *records[1:])
        try:
            stored = await asyncio.to_thread(self.trail.write_all, list(records))
        except errors.AuditUnavailable as exc:
            if self.metrics is not None:
                self.metrics.audit_write(getattr(exc, "sink", "unknown") or "unknown", False)
            raise AuditUnavailableError(str(exc)) from None
        if self.metrics is not None:
            for sink in self.trail.sinks:
                for _ in records:
                    self.metrics.audit_write(sink.name, True)
        self._acknowledged = None
        return stored

    async def _still_lost(self) -> bool:
        """Whether the lost trail still lacks the records the Promotions claim (asked at most every 2 s);
        records of anything else (another environment's stream, say) do not lift the stop."""
        if time.monotonic() - self._looked_at < LOST_RECHECK_SECONDS:
            return True
        self._looked_at = time.monotonic()
        for claimed in self._missing:
            try:
                found = await self.find(claimed.uid, claimed.event, claimed.spec_hash)
            except AuditUnavailableError:
                return True
            if found is not None:
                logger.warning("audit: the trail holds the records of %s again; writing resumes", claimed.promotion)
                self.lost = None
                return False
        return True

    async def _still_new(self) -> bool:
        """Whether a sink accepted as a new trail is still empty (only its first record says so)."""
        try:
            still = set(await asyncio.to_thread(self.trail.empty_sinks)) & set(self.empty_at_start)
        except errors.AuditUnavailable:
            still = set()
        if not still:
            self._acknowledged = None
        return bool(still)

    async def find(self, promotion_uid: str, event: str, spec_hash: str) -> record.AuditRecord | None:
        """The stored record of ``event`` for this Promotion cycle, if every sink holds it."""
        try:
            return await asyncio.to_thread(self.trail.find, promotion_uid, event, spec_hash=spec_hash)
        except errors.AuditUnavailable as exc:
            raise AuditUnavailableError(str(exc)) from None

    async def record(self, event: str, promotion: Mapping[str, Any], **fields: Any) -> None:
        """Build (``build``'s keyword fields) and write one record."""
        await self.write(self.build(event, promotion, **fields))

    async def approval_withdrawn(
        self,
        approval: Mapping[str, Any],
        promotion: Mapping[str, Any] | None,
        *,
        by: str | None = None,
        strict: bool = False,
    ) -> None:
        """Record that an Approval was deleted, and by whom when known (the admission webhook knows).

        ``strict`` raises when the trail is down (the webhook then refuses the deletion); the watch
        handler's late call only logs. The record id is the Approval's uid, so the two never duplicate.
        """
        if promotion is None or not (promotion.get("status") or {}).get("specHash"):
            return
        spec = approval.get("spec", {})
        meta = approval.get("metadata", {})
        try:
            await self.record(
                "approval-withdrawn",
                promotion,
                at=datetime.datetime.now(datetime.UTC),
                approvers=[],
                policies=[],
                key=str(meta.get("uid") or meta.get("name")),
                extra={
                    "approval": meta.get("name"),
                    "approver": spec.get("approver"),
                    "decision": spec.get("decision"),
                    "withdrawnBy": by,
                },
            )
        except AuditUnavailableError as exc:
            if strict:
                raise
            logger.error("could not record the withdrawal of approval %s: %s", meta.get("name"), exc)

    async def emergency_bypass(
        self,
        kind: str,
        workload: Mapping[str, Any],
        username: str,
        groups: list[str],
        message: str,
        image_annotations: Collection[str] = (),
        retro_review_within: datetime.timedelta = datetime.timedelta(hours=24),
    ) -> None:
        """Record a break-glass image change made outside any Promotion; it needs a retro review. Its images
        include the pod template annotations that choose one (``image_annotations``)."""
        meta = workload.get("metadata", {})
        now = datetime.datetime.now(datetime.UTC)
        running = imageguard.images(kind, workload, image_annotations)
        images = {key.split("/", 1)[1]: str(image) for key, image in running.items()}
        containers = [image for key, image in images.items() if not imageguard.chosen_by_annotation(key)]
        change_id = f"{meta.get('uid')}:{meta.get('resourceVersion') or now.isoformat()}"
        stand_in = {  # the record's subject: the workload change itself, there is no Promotion
            "metadata": {
                "uid": change_id,
                "name": f"break-glass-{kind.lower()}-{meta.get('name')}",
                "namespace": meta.get("namespace"),
            },
            "spec": {
                "target": {"kind": kind, "name": meta.get("name")},
                "image": ",".join(containers),  # the record's image and digest: containers' (extra.images: all)
                "change": {"description": message},
            },
            "status": {
                "specHash": "sha256:" + hashlib.sha256(change_id.encode()).hexdigest(),
                "requestedBy": {"username": username, "groups": groups},
            },
        }
        await self.record(
            "emergency-bypass",
            stand_in,
            at=now,
            approvers=[],
            policies=[],
            key=change_id,
            extra={
                "retroReviewDueAt": (now + retro_review_within).isoformat(),
                "images": images,
                "bypassedBy": username,
            },
        )

    def close(self) -> None:
        for sink in self.trail.sinks:
            closer = getattr(sink, "close", None)
            if callable(closer):
                closer()


def _trail_from(config: settings.AuditSettings) -> trail.AuditTrail:
    return trail.AuditTrail.from_settings(config)
