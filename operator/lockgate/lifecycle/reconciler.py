"""Doing the lifecycle: evaluate the gate, take the one next step, write status, audit and events.

One Promotion is handled by one worker at a time (``queue.KeyedQueue``). Each step's effects are
ordered for exactly-once rollouts: the ``approved`` and ``deploying`` audit records (one write)
are durable before the workload patch; once it is applied the ``deployed`` record, then the ``Verifying``
status (a restart in between resumes from the records: ``steps.Action.RESUME_DEPLOY``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from lockgate import metrics as lockgate_metrics
from lockgate.api import conditions, durations
from lockgate.audit import record
from lockgate.gates import decision
from lockgate.kube import client as kclient
from lockgate.kube import events, freshreads, objects
from lockgate.lifecycle import auditing, gating, queue, statuses, steps, view
from lockgate.rollout import plan, verification

logger = logging.getLogger("lockgate.lifecycle")

T = TypeVar("T")

MAX_STEPS_PER_PASS = 8
LIST_PAGE = 500
PRIME_WAIT = datetime.timedelta(seconds=10)
SETTLE = datetime.timedelta(seconds=1)
AUDIT_RETRY = datetime.timedelta(seconds=3)
POLL = datetime.timedelta(seconds=5)
PASS_WAIT = datetime.timedelta(seconds=1.5)  # a deleted Promotion's record waits for its pass under way (less
PASS_WAIT_LOOK = datetime.timedelta(milliseconds=50)  # than a stop's drain of such records, ``watching``)


@dataclasses.dataclass(frozen=True)
class _TargetChanged:
    """The workload no longer runs the recorded previous image: nothing was patched."""

    image: str | None


@dataclasses.dataclass(frozen=True)
class _Refused:
    """The API server (RBAC, or the image guard) refused the patch: nothing was patched."""

    message: str


@dataclasses.dataclass
class _AsRecorded:
    """The decision of a resumed deploy is the recorded one: no gate verdict of the spec as it is now."""

    phase: str = "Deploying"
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    ready_for_approval: bool = True
    emergency: bool = False

    @classmethod
    def of(cls, deploying: record.AuditRecord) -> _AsRecorded:
        """The ``deploying`` record's decision: its counted approvers and policy verdicts, as the status
        had them (the approval that tipped it was never in a status: the patch followed it at once), and
        for an emergency change its retro review's due time."""
        approvals = [
            decision.ApprovalVerdict(
                approval=str(a.approval or ""),
                approver=a.username,
                groups=a.groups,
                decision=a.decision,
                at=a.at,
                counted=True,
                rule=a.rule,
                reason=conditions.COUNTED,
                message="counted for this deploy (as the audit trail's deploying record has it)",
            ).to_status()
            for a in deploying.approvers
        ]
        gates = [dict(v) for p in deploying.policies for v in p.verdicts]
        status: dict[str, Any] = {k: v for k, v in (("approvals", approvals), ("gates", gates)) if v}
        emergency = any(g.get("reason") == decision.EMERGENCY_PATH for g in gates)
        status["approvedAt"] = record.format_time(deploying.at)  # the decision's time, not the resume's
        if emergency:  # records written before the due time was recorded: due at once (never silently dropped)
            status["retroReviewDueAt"] = deploying.extra.get("retroReviewDueAt") or record.format_time(deploying.at)
        return cls(status=status, emergency=emergency)


@dataclasses.dataclass
class _HttpRun:
    task: asyncio.Task[verification.VerificationResult]


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _log_step(key: view.Key, step: steps.Step) -> None:
    logger.log(
        logging.DEBUG if step.action is steps.Action.DONE else logging.INFO,
        "promotion %s/%s: %s (%s) %s",
        key[0],
        key[1],
        step.action,
        step.reason,
        step.message,
    )


def _generation(obj: Mapping[str, Any]) -> int:
    return int(obj.get("metadata", {}).get("generation") or 0)


def _held(step: steps.Step) -> bool:
    return step.action in (steps.Action.HOLD, steps.Action.TARGET_MISSING)


def _event_reason(step: steps.Step, phase: str) -> str:
    """A Pending Event says Pending, unless held or missing its target: then why (as its Ready condition)."""
    return "Pending" if phase == "Pending" and not _held(step) else step.reason


def _ready_reason(status: Mapping[str, Any]) -> str | None:
    return next((c.get("reason") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)


def _event_due(old: Mapping[str, Any], new: Mapping[str, Any], step: steps.Step) -> bool:
    """An Event when the phase changes, and when a hold starts or changes its reason without one (a Promotion
    waiting Pending, then held Pending): ``kubectl describe`` shows why it is not deployed, not only its status."""
    if old.get("phase") != new.get("phase"):
        return True
    return _held(step) and _ready_reason(old) != _ready_reason(new)


class Reconciler:
    """Owns the keyed queue and performs lifecycle steps for Promotions in the view."""

    def __init__(
        self,
        api: kclient.Client,
        cluster: view.ClusterView,
        gate: gating.Gate,
        audit: auditing.AuditAdapter,
        metrics: lockgate_metrics.Metrics | None = None,
        *,
        clock: Callable[[], datetime.datetime] = utcnow,
        workers: int = 8,
        verification_hosts: Sequence[str] = verification.DEFAULT_HOSTS,
    ) -> None:
        self.api = api
        self.verification_hosts = tuple(verification_hosts)
        self.view = cluster
        self.gate = gate
        self.audit = audit
        self.metrics = metrics
        self.clock = clock
        self.queue: queue.KeyedQueue[view.Key] = queue.KeyedQueue(self.reconcile, workers=workers)
        self._http: dict[tuple[str, str], _HttpRun] = {}
        self._deferred_approvals: dict[view.Key, gating.GateResult] = {}
        self._events: set[asyncio.Task[None]] = set()
        self.primed = asyncio.Event()
        self._waiting_look: asyncio.TimerHandle | None = None
        self._priming: asyncio.Task[None] | None = None
        self.priming_problem: str | None = None  # why the view cannot load yet (the API's last answer)
        self._trail_check: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.queue.start()
        self._priming = asyncio.get_running_loop().create_task(self._prime())
        self._priming.add_done_callback(self._primed)
        self._trail_check = asyncio.get_running_loop().create_task(self._check_trail())

    async def _until_answered(
        self,
        what: str,
        call: Callable[[], Awaitable[T]],
        *transient: type[Exception],
        on_retry: Callable[[str], None] | None = None,
    ) -> T:
        """``call()``, retried with a warning each time (0.5 s doubling to 10 s) while the API, or what
        ``transient`` names, does not answer; ``on_retry`` is told why each time."""
        retried: tuple[type[Exception], ...] = (kclient.ApiError, kclient.ApiUnavailable, *transient)
        delay = 0.5
        while True:
            try:
                return await call()
            except retried as exc:
                logger.warning("%s: %s; retrying", what, exc)
                if on_retry is not None:
                    on_retry(str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _check_trail(self) -> None:
        """Compare the audit trail with the cluster before its first record (``AuditAdapter.check_trail``):
        retried until the sinks and the API answer; records wait meanwhile (fail closed)."""
        try:
            await self._until_answered(
                "checking the audit trail against the cluster's Promotions",
                lambda: self.audit.check_trail(self._recorded_sample),
                auditing.AuditUnavailableError,
            )
        except Exception as exc:  # never a silent stall: say why nothing is recorded
            logger.exception("checking the audit trail against the cluster's Promotions failed")
            self.audit.trail_unchecked(repr(exc))

    async def _recorded_sample(self, enough: int = 20) -> list[statuses.RecordedDecision]:
        """Some Promotions whose status says a decision of theirs was recorded (listed in pages; stops at
        ``enough``): what an empty audit sink is checked against."""
        found: list[statuses.RecordedDecision] = []
        params = {"limit": str(LIST_PAGE)}
        while len(found) < enough:
            page = await self.api.get(kclient.resource_path("lockgate.dev", "v1alpha1", "promotions"), params=params)
            found.extend(d for d in map(statuses.recorded_decision, page.get("items") or []) if d is not None)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
            params["continue"] = str(token)
        return found[:enough]

    def priming(self) -> str:
        """What the view waits for before ``primed``, and why it is taking long (for readiness)."""
        why = f"cannot list them: {self.priming_problem}" if self.priming_problem else "loading"
        return f"the view of GatePolicies and Namespaces ({why})"

    def _primed(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:  # never a silent stall: judge anyway
            logger.error("waiting for GatePolicies and Namespaces failed; judging anyway", exc_info=task.exception())
            self.primed.set()

    async def _prime(self) -> None:
        """Judge no Promotion before the watches delivered every GatePolicy and Namespace.

        A policy the view has not received yet would make its Promotions look ungoverned ("no
        GatePolicy selects namespace ..."): after a restart every waiting Promotion would flap to
        Pending. So list both once (retried, with a warning each time, until the API answers: nothing
        can be judged without it) and wait, at most ``PRIME_WAIT``, until the view holds them.
        """

        async def listed() -> tuple[dict[str, Any], dict[str, Any]]:
            policies = await self.api.get(kclient.resource_path("lockgate.dev", "v1alpha1", "gatepolicies"))
            return policies, await self.api.get(kclient.resource_path("", "v1", "namespaces"))

        def unanswered(problem: str) -> None:
            self.priming_problem = problem

        policies, namespaces = await self._until_answered(
            "listing GatePolicies and Namespaces before judging Promotions", listed, on_retry=unanswered
        )
        self.priming_problem = None
        wanted_policies = {str(p["metadata"]["name"]) for p in policies.get("items") or []}
        wanted_namespaces = {str(n["metadata"]["name"]) for n in namespaces.get("items") or []}
        deadline = time.monotonic() + PRIME_WAIT.total_seconds()
        while time.monotonic() < deadline:
            if wanted_policies <= set(self.view.policies) and wanted_namespaces <= set(self.view.namespaces):
                break
            await asyncio.sleep(0.05)
        else:
            logger.warning("GatePolicies/Namespaces not all delivered by the watches in %s; judging anyway", PRIME_WAIT)
        self.primed.set()

    async def stop(self) -> None:
        for task in (self._priming, self._trail_check):
            if task is not None:
                task.cancel()
        if self._waiting_look is not None:
            self._waiting_look.cancel()
        for run in self._http.values():
            run.task.cancel()
        await self.queue.stop()
        if self._events:  # best-effort Events still in flight
            await asyncio.wait(self._events, timeout=2)
            for task in self._events:
                task.cancel()

    # -- triggers ------------------------------------------------------------------------------
    def touch(self, key: view.Key) -> None:
        self.queue.touch(key)

    def touch_all(self, namespaces: list[str] | None = None) -> None:
        for key in self.view.promotions_in(namespaces):
            self.queue.touch(key)

    def touch_waiting(self) -> None:
        """Every Promotion still waiting for its gate (who may approve changed)."""
        self._waiting_look = None
        for key, obj in list(self.view.unsettled_promotions()):
            if str((obj.get("status") or {}).get("phase") or "") in steps.WAITING:
                self.queue.touch(key)

    def touch_waiting_soon(self) -> None:
        """``touch_waiting`` once a burst of changes (e.g. RBAC) has been quiet for ``SETTLE``."""
        if self._waiting_look is not None:
            self._waiting_look.cancel()
        self._waiting_look = asyncio.get_running_loop().call_later(SETTLE.total_seconds(), self.touch_waiting)

    def busy(self, key: view.Key) -> bool:
        """Whether a pass over ``key`` is under way now (a deploy's patch and records, say)."""
        return self.queue.busy(key)

    async def promotion_deleted(self, obj: Mapping[str, Any], *, under_way: bool = False) -> None:
        """A Promotion deleted mid-rollout: its change stays in place, unverified; the trail must say so.

        So too when it was deleted while its deploy was under way (``under_way``: a pass over it was, at the
        deletion's event), before any status said so: its ``deploying`` record is written before the patch,
        and the trail must not end there. The record waits for that pass (``PASS_WAIT``), and none is written
        for a cycle the trail has closed meanwhile (``verified``, ``rolled-back``, ``superseded``).
        """
        status = obj.get("status") or {}
        phase = str(status.get("phase") or "")
        if phase not in steps.ACTIVE and phase not in steps.WAITING:
            return
        key = view.key_of(obj)
        # Waiting: only a deploy that was under way, or whose patch landed, can have left a deploying record.
        if phase in steps.WAITING and not (under_way or self.queue.busy(key) or self._carries_deploy(key, obj)):
            return
        waited = 0.0
        while self.queue.busy(key) and waited < PASS_WAIT.total_seconds():  # its pass's own records come first
            await asyncio.sleep(PASS_WAIT_LOOK.total_seconds())
            waited += PASS_WAIT_LOOK.total_seconds()
        found = await self._recorded(obj, ("deploying", "verified", "rolled-back", "superseded"))
        if found is None or any(found[e] is not None for e in ("verified", "rolled-back", "superseded")):
            return  # unreadable (said), or the cycle ended in the trail: nothing is left open
        deploying = found["deploying"]
        if phase in steps.WAITING and deploying is None:
            return
        uid = str(obj.get("metadata", {}).get("uid"))
        for run_key in [k for k in self._http if k[0] == uid]:
            self._http.pop(run_key).task.cancel()
        approvers, policies = statuses.audit_context(status)
        if phase in steps.ACTIVE:
            previous = (await self._situation(key, obj, phase)).previous_image
            message = (
                f"the Promotion was deleted while {phase}: the image change stays in place and its verification "
                "did not finish; review the workload"
            )
        else:
            assert deploying is not None
            previous = deploying.previous_image  # what the decision recorded (the waiting status has none)
            approvers = [a.model_dump() for a in deploying.approvers]
            policies = [p.model_dump() for p in deploying.policies]
            landed = {True: "the image change is in place", False: None, None: "the image change may be in place"}[
                await self._deploy_landed(key, obj)
            ]
            message = (
                f"the Promotion was deleted while its deploy was under way: {landed} and its verification did "
                "not run; review the workload"
                if landed
                else "the Promotion was deleted while its deploy was under way: the decision was recorded "
                "(deploying) but the image change was not made"
            )
        step = steps.Step(steps.Action.FAIL, "PromotionDeleted", message)
        for _ in range(3):  # the object is gone: no status to hold; retry the record a few times
            try:
                await self.audit.record(
                    "failed",
                    {
                        **obj,
                        "spec": {
                            **obj.get("spec", {}),
                            "image": (status.get("rollout") or {}).get("image") or obj.get("spec", {}).get("image"),
                        },
                    },
                    at=self.clock(),
                    approvers=approvers,
                    policies=policies,
                    previous_image=previous,
                    verification={"passed": False, "message": message},
                    extra={"reason": step.reason, "message": message},
                )
                return
            except auditing.AuditUnavailableError as exc:
                logger.error("promotion %s deleted mid-rollout; audit unavailable: %s", view.key_of(obj), exc)
                await asyncio.sleep(2)

    def _carries_deploy(self, key: view.Key, obj: Mapping[str, Any]) -> bool:
        """Whether the watched target carries this cycle's deploy (its patch landed)."""
        target = self.view.target_of(obj)
        workload = self.view.workloads.get(target) if target else None
        return workload is not None and plan.carries_deploy(workload, key[0], key[1], statuses.cycle_hash(obj))

    async def _deploy_landed(self, key: view.Key, obj: Mapping[str, Any]) -> bool | None:
        """Whether a deleted Promotion's deploy patch landed: its target, read now, carries it (None: unreadable)."""
        target = self.view.target_of(obj)
        try:
            workload = await objects.get_workload(self.api, *target) if target else None
        except (kclient.ApiError, kclient.ApiUnavailable) as exc:
            logger.warning("promotion %s/%s deleted: its target could not be read: %s", *key, exc)
            return None
        return workload is not None and plan.carries_deploy(workload, key[0], key[1], statuses.cycle_hash(obj))

    async def _recorded(
        self, obj: Mapping[str, Any], events: tuple[str, ...]
    ) -> dict[str, record.AuditRecord | None] | None:
        """This cycle's stored record of each of ``events`` (asked a few times; None if the trail cannot say)."""
        uid, cycle = str(obj.get("metadata", {}).get("uid")), statuses.cycle_hash(obj)
        for _ in range(3):
            try:
                return {event: await self.audit.find(uid, event, spec_hash=cycle) for event in events}
            except auditing.AuditUnavailableError as exc:
                logger.error(
                    "promotion %s/%s deleted; the audit trail cannot say what its cycle recorded: %s",
                    *view.key_of(obj),
                    exc,
                )
                await asyncio.sleep(2)
        return None

    # -- one pass ------------------------------------------------------------------------------
    async def reconcile(self, key: view.Key) -> None:
        await self.primed.wait()
        try:
            await self._pass(key)
        finally:  # verdicts held back so the rollout was not waiting for them
            deferred = self._deferred_approvals.pop(key, None)
            if deferred is not None:
                await self._write_approvals(key[0], deferred)

    async def _pass(self, key: view.Key) -> None:
        if self.view.promotions.is_settled(key):  # its next step is Done (``view.settled``): nothing to decode
            logger.debug(
                "promotion %s/%s: %s (%s) its cycle ended for its current spec", *key, steps.Action.DONE, "Settled"
            )
            await self._settle_late_approvals(key)
            return
        for _ in range(MAX_STEPS_PER_PASS):
            obj = self.view.promotions.get(key)
            if obj is None or obj.get("metadata", {}).get("deletionTimestamp"):
                return
            started = time.perf_counter()
            again = await self._one_step(key, obj)
            logger.debug("promotion %s/%s step took %.1f ms", key[0], key[1], (time.perf_counter() - started) * 1e3)
            if not again:
                return

    async def _one_step(self, key: view.Key, obj: dict[str, Any]) -> bool:
        now = self.clock()
        status = obj.get("status") or {}
        phase = str(status.get("phase") or "")
        situation = await self._situation(key, obj, phase)
        result: gating.GateResult | None = None
        if phase in steps.TERMINAL and statuses.retro_review_open(status, situation.spec_hash):
            await self._retro_review(key, obj, situation, now)
            return False
        if phase in steps.WAITING:
            result = await self.gate.evaluate(obj, now)
            situation = dataclasses.replace(situation, cycle_hash=situation.cycle_hash or situation.spec_hash)
        step = steps.next_step(situation, result.view if result else None, now)
        if step.action is steps.Action.START_DEPLOY:  # the decisive moment: no stale fact may open it
            assert result is not None
            try:
                current = await self._as_it_is_now(key, obj)
                if current is not obj:
                    return current is not None  # changed: the next step judges it; deleted: nothing to do
                if not result.fresh:
                    result = await self.gate.evaluate(obj, now, fresh=True)
                    step = steps.next_step(situation, result.view, now)
            except freshreads.Unreadable as exc:
                step = steps.facts_unreadable(str(exc), now)
        if step.action is not steps.Action.START_DEPLOY:  # a deploy's line follows its patch (``_perform``)
            _log_step(key, step)
        return await self._perform(key, obj, situation, step, result, now)

    async def _as_it_is_now(self, key: view.Key, obj: dict[str, Any]) -> dict[str, Any] | None:
        """``obj`` while the Promotions' watch streams; else the Promotion as the API has it now (one deleted or
        changed meanwhile must not deploy as the view last saw it): None if deleted (its watch's tombstone will
        tell the view), the newer one, put into the view, if changed."""
        reads = self.gate.fresh_reads
        if reads is None or "promotions" in self.view.current_kinds:
            return obj
        found = await reads.promotion(*key)
        if found is None:
            logger.info("promotion %s/%s: deleted meanwhile (its watch is not streaming): not deployed", *key)
            return None
        if (found.get("metadata") or {}).get("resourceVersion") == (obj.get("metadata") or {}).get("resourceVersion"):
            return obj
        if self.view.put_promotion(found):  # its watch event will be taken as seen: touch what it would have
            for changed in {self.view.target_of(obj), self.view.target_of(found)} - {None}:
                assert changed is not None
                for other in self.view.promotions_targeting(changed):
                    self.queue.touch(other)
            self.queue.touch(key)
        return found

    async def _situation(self, key: view.Key, obj: Mapping[str, Any], phase: str) -> steps.Situation:
        spec = obj.get("spec", {})
        status = obj.get("status") or {}
        target = spec.get("target") or {}
        kind = str(target.get("kind", "Deployment"))
        rollout = status.get("rollout") or {}
        # The watch keeps the view current; a GET only when it has never seen the workload (the
        # decision to deploy reads it fresh: ``_fresh_workload``).
        workload: Mapping[str, Any] | None = self.view.workloads.get((kind, key[0], str(target.get("name"))))
        if workload is None and not view.cycle_ended(obj):  # an ended cycle never reads its workload
            workload = await objects.get_workload(self.api, kind, key[0], str(target.get("name")))
            if workload is not None:
                self.view.put_workload(kind, dict(workload))
        change = None
        container = str(target.get("container") or target.get("name") or "")
        if workload is not None and container in plan.container_names(workload):
            change = plan.ImageChange(
                namespace=key[0],
                kind=kind,
                name=str(target.get("name")),
                container=container,
                image=str(rollout.get("image") or spec.get("image")),
                promotion=key[1],
                spec_hash=statuses.cycle_hash(obj),
                approvers=tuple(a.get("approver", "") for a in status.get("approvals") or [] if a.get("counted")),
            )
        target_name = f"{kind} {key[0]}/{target.get('name')}"
        if workload is None:
            problem = f"{target_name} does not exist"
        else:
            names = ", ".join(plan.container_names(workload)) or "none"
            problem = f"{target_name} has no container {container} (it has: {names})"
        verification_spec = spec.get("verification") or {}
        http_result = None
        run = self._http.get((str(obj["metadata"].get("uid")), str(status.get("specHash"))))
        if run is not None and run.task.done() and not run.task.cancelled():
            outcome = run.task.result()
            http_result = (outcome.passed, outcome.message)
        return steps.Situation(
            phase=phase,
            spec_hash=statuses.spec_hash(obj),
            cycle_hash=str(status.get("specHash") or ""),
            change=change,
            previous_image=status.get("previousImage"),
            deployed_generation=int(rollout.get("generation") or 0),
            deployed_at=statuses.parse_time(status.get("deployedAt")),
            rollback_generation=int((status.get("rollback") or {}).get("generation") or 0),
            rollback_reason=str((status.get("rollback") or {}).get("message") or ""),
            timeout=durations.parse(str(verification_spec.get("timeout") or "10m")),
            rollback_on_failure=bool(verification_spec.get("rollbackOnFailure", True)),
            has_http_checks=bool(verification_spec.get("http")),
            http_result=http_result,
            checks_refused="; ".join(verification.spec_problems(spec, key[0], self.verification_hosts))
            if phase in steps.WAITING and verification_spec.get("http")
            else "",
            superseded_by=self._superseded_by(key, obj) if phase in steps.WAITING else None,
            target_busy_with=self._target_busy_with(key, obj),
            workload=workload,
            target_problem=problem,
            deploy_applied=(
                phase in steps.WAITING
                and workload is not None
                and plan.carries_deploy(workload, key[0], key[1], statuses.cycle_hash(obj))
            ),
        )

    def _superseded_by(self, key: view.Key, obj: Mapping[str, Any]) -> str | None:
        """A newer Promotion for the same target that is still waiting or already rolling out."""
        target = self.view.target_of(obj)
        if target is None:
            return None
        mine = statuses.created_order(obj)
        for other_key in self.view.promotions_targeting(target):
            other = self.view.promotions.live.get(other_key)  # a settled one is neither waiting nor rolling out
            if other is None or other_key == key:
                continue
            other_phase = str((other.get("status") or {}).get("phase") or "")
            if other_phase in steps.TERMINAL or other.get("metadata", {}).get("deletionTimestamp"):
                continue
            if statuses.created_order(other) > mine:
                return other_key[1]
        return None

    def _target_busy_with(self, key: view.Key, obj: Mapping[str, Any]) -> str | None:
        """Another Promotion rolling the same workload: rolling out, or with its deploy applied while its
        status still waits (the rollout's first status follows the ``deployed`` record, or a restart)."""
        target = self.view.target_of(obj)
        if target is None:
            return None
        workload: Mapping[str, Any] | None = None
        for other_key in self.view.promotions_targeting(target):
            if other_key == key:
                continue
            other = self.view.promotions.live.get(other_key) or {}  # a settled one is not rolling out
            phase = str((other.get("status") or {}).get("phase") or "")
            if phase in steps.ACTIVE:
                return other_key[1]
            if phase not in steps.WAITING or other.get("metadata", {}).get("deletionTimestamp"):
                continue
            workload = workload if workload is not None else (self.view.workloads.get(target) or {})
            if plan.carries_deploy(workload, other_key[0], other_key[1], statuses.cycle_hash(other)):
                return other_key[1]
        return None

    # -- performing ----------------------------------------------------------------------------
    async def _perform(
        self,
        key: view.Key,
        obj: dict[str, Any],
        s: steps.Situation,
        step: steps.Step,
        result: gating.GateResult | None,
        now: datetime.datetime,
    ) -> bool:
        A = steps.Action
        if step.action is A.DONE:
            await self._settle_late_approvals(key)
            return False
        if step.action is A.NEW_CYCLE:
            await self._write(obj, statuses.new_cycle(obj, now), step)
            return True
        if result is not None:
            if step.action is A.START_DEPLOY:  # written at the end of the pass, after the patch
                self._deferred_approvals[key] = result
            else:
                await self._write_approvals(key[0], result)
        if step.action in (A.WAIT, A.WAIT_FOR_TARGET, A.TARGET_MISSING, A.HOLD):
            assert result is not None
            new = statuses.waiting(obj, result, step, now)
            await self._write(obj, new, step)
            if step.next_look_at is not None:
                self.queue.touch_at(key, step.next_look_at)
            return False
        if step.action in (A.SUPERSEDE, A.REJECT):
            assert result is not None
            event = "superseded" if step.action is A.SUPERSEDE else "rejected"
            if not await self._audit(event, obj, now, result, s, step):
                return False
            await self._write(obj, statuses.ended(obj, step, now, result=result), step, warning=True)
            return False
        if step.action is A.START_DEPLOY:
            assert result is not None and s.change is not None and s.workload is not None
            # The previous image comes from the watched view; the patch is conditional on that very
            # version of the workload (``_set_image``), so a stale view cannot mis-record it.
            previous = plan.current_image(s.workload, s.change.container)
            try:  # the decision's log line comes after its patch (or whatever ended the step before it)
                stored = await self._audit_all([("approved", None), ("deploying", previous)], obj, now, result, s, step)
                if stored is None:
                    return False
                # The decision as recorded (a retry keeps the stored record's previous image); the records
                # are durable, so the patch goes before any status: they, not a status, make it exactly-once.
                counted = tuple(a.get("approver", "") for a in result.status.get("approvals") or [] if a.get("counted"))
                change = dataclasses.replace(s.change, approvers=counted)  # this decision's approvers, on the workload
                s = dataclasses.replace(s, previous_image=stored[-1].previous_image, change=change)
                # The patch alone first: it is what the rollout waits for, and nothing of ours competes with
                # it at the API server (not even this log line).
                outcome = await self._set_image(key, s, now)
            finally:
                _log_step(key, step)
            deploying = statuses.deploying(obj, result, change, s.previous_image, now)
            if not isinstance(outcome, dict):  # not applied (refused, target changed, or to retry): say so
                await self._write(obj, deploying, step)
                return await self._patched(key, obj, s, outcome, now)
            # Applied: the rollout's first status is the deployed one (Verifying), once its record is
            # durable; Deploying is published only if that record cannot be written now.
            shown = {**obj, "status": deploying}
            s = dataclasses.replace(s, phase="Deploying")
            return await self._deployed(key, obj, s, step, now, outcome, unwritten=shown)
        if step.action is A.RESUME_DEPLOY:
            return await self._resume_deploy(key, obj, s, step, now)
        if step.action in (A.PATCH, A.MARK_DEPLOYED):
            assert s.change is not None and s.workload is not None
            workload = s.workload
            if step.action is A.PATCH:
                if not await self._patched(key, obj, s, await self._set_image(key, s, now), now):
                    return False
                workload = self.view.workloads.get((s.change.kind, key[0], s.change.name)) or workload
            return await self._deployed(key, obj, s, step, now, workload)
        if step.action is A.AWAIT_ROLLOUT or step.action is A.AWAIT_ROLLBACK:
            await self._write(obj, statuses.progress(obj, step, now), step)
            self.queue.touch_at(key, step.next_look_at or now + POLL)
            return False
        if step.action is A.VERIFY_HTTP:
            self._start_http(key, obj, s)
            await self._write(obj, statuses.progress(obj, step, now), step)
            return False
        if step.action is A.SUCCEED:
            if not await self._audit(
                "verified", obj, now, None, s, step, verification={"passed": True, "message": step.message}
            ):
                return False  # Succeeded only once the verified record is durable
            ended = statuses.ended(obj, step, now, phase="Succeeded")
            await self._write(obj, statuses.recorded(obj, ended, now, "verified"), step)
            return s.spec_hash != s.cycle_hash  # the spec changed during the rollout: start its cycle now
        if step.action is A.START_ROLLBACK:
            # Production comes first: the rollback (to an image approved before) starts even when the
            # audit trail is down; the failed record is written again, idempotently, before RolledBack.
            await self._audit(
                "failed", obj, now, None, s, step, verification={"passed": False, "message": step.message}
            )
            await self._write(obj, statuses.rolling_back(obj, step, now), step, warning=True)
            return True
        if step.action is A.PATCH_ROLLBACK:
            assert s.change is not None and s.previous_image
            back = dataclasses.replace(s.change, image=s.previous_image, operation="rollback")
            workload = await objects.set_image(self.api, back)
            self.view.put_workload(back.kind, workload)
            generation = int(workload.get("metadata", {}).get("generation") or 0)
            await self._write(obj, statuses.rollback_patched(obj, generation, now), step)
            return True
        if step.action is A.ROLLED_BACK:
            rollback = (obj.get("status") or {}).get("rollback") or {}
            reason = str(rollback.get("message") or step.message)
            verdict = {"passed": False, "message": reason}
            failed = steps.Step(step.action, str(rollback.get("reason") or step.reason), reason)
            if not await self._audit("failed", obj, now, None, s, failed, verification=verdict):
                return False
            if not await self._audit("rolled-back", obj, now, None, s, step, previous_image=s.previous_image):
                return False
            ended = statuses.ended(obj, step, now, phase="RolledBack")
            await self._write(obj, statuses.recorded(obj, ended, now, "rolled-back"), step, warning=True)
            return s.spec_hash != s.cycle_hash
        if step.action is A.FAIL:
            if not await self._fail(obj, s, step, now):
                return False
            return s.spec_hash != s.cycle_hash
        raise AssertionError(f"unhandled step {step.action}")  # pragma: no cover

    async def _deployed(
        self,
        key: view.Key,
        written: Mapping[str, Any],
        s: steps.Situation,
        step: steps.Step,
        now: datetime.datetime,
        workload: Mapping[str, Any],
        *,
        unwritten: Mapping[str, Any] | None = None,
    ) -> bool:
        """The image change is applied: record ``deployed``, then publish Verifying (with its progress).

        ``written`` is the Promotion as stored; ``unwritten`` is it with the Deploying status this step
        builds on when that status was never written (the patch came first).
        """
        shown = written if unwritten is None else unwritten
        generation = int(workload.get("metadata", {}).get("generation") or 0)
        assert s.change is not None
        recorded = steps.deployed(s.change)  # what the record says, whichever step got here
        showing = None if unwritten is None else unwritten.get("status")
        if not await self._audit(
            "deployed", shown, now, None, s, recorded, previous_image=s.previous_image, showing=showing
        ):
            return False  # stays Deploying; the next pass finds the image applied and records again
        new = statuses.recorded(shown, statuses.deployed(shown, generation, now), now, "deployed")
        # Coalesce: when the rollout is merely in progress, publish Verifying with its progress at once.
        after = {**shown, "status": new}
        upcoming = steps.next_step(await self._situation(key, after, "Verifying"), None, now)
        if upcoming.action is steps.Action.AWAIT_ROLLOUT:
            await self._write(written, statuses.progress(after, upcoming, now), step)
            self.queue.touch_at(key, upcoming.next_look_at or now + POLL)
            return False
        await self._write(written, new, step)
        return True

    async def _retro_review(
        self, key: view.Key, obj: Mapping[str, Any], s: steps.Situation, now: datetime.datetime
    ) -> None:
        """An emergency change is done but its retro review is open: publish who closed it, once."""
        result = await self.gate.evaluate(obj, now)
        await self._write_approvals(key[0], result)
        reviewed_by = result.status.get("retroReviewedBy")
        step = steps.Step(steps.Action.DONE, "RetroReviewed", f"retro review closed by {reviewed_by}")
        if reviewed_by and not await self._audit("retro-review", obj, now, result, s, step):
            return
        await self._write(obj, statuses.retro_review(obj, result, now), step)
        due = statuses.parse_time((obj.get("status") or {}).get("retroReviewDueAt"))
        if not reviewed_by and due is not None and due > now:
            self.queue.touch_at(key, due)  # the overdue gauge changes then

    async def _set_image(
        self, key: view.Key, s: steps.Situation, now: datetime.datetime
    ) -> dict[str, Any] | _TargetChanged | _Refused | None:
        """Patch the image over exactly the recorded previous image, conditional on the version seen.

        The workload must run the image the ``deploying`` record names as previous (else a change made
        outside Lockgate, e.g. break-glass, came in between: nothing is patched, ``_TargetChanged``).
        The patch applies only to the version that was checked; a conflict re-reads the workload and
        checks again: a scale or a controller's write repeats the patch, our own patch whose answer
        was lost is recognised as applied. None: try again shortly.
        """
        assert s.change is not None and s.workload is not None
        workload: Mapping[str, Any] = s.workload
        for _ in range(3):
            if plan.is_applied(workload, s.change):
                return dict(workload)
            image = plan.current_image(workload, s.change.container)
            if image != s.previous_image:
                return _TargetChanged(image)
            version = str(workload.get("metadata", {}).get("resourceVersion") or "") or None
            try:
                patched = await objects.set_image(self.api, s.change, resource_version=version)
            except kclient.ApiError as exc:
                if exc.status == 403:  # not transient: retrying would stall the Promotion silently
                    return _Refused(exc.message)
                if exc.status != 409:
                    raise
                current = await objects.get_workload(self.api, s.change.kind, s.change.namespace, s.change.name)
                if current is None:
                    raise
                self.view.put_workload(s.change.kind, dict(current))
                workload = current
                continue
            self.view.put_workload(s.change.kind, patched)
            return patched
        self.queue.touch_at(key, now + AUDIT_RETRY)  # the workload keeps changing: try again shortly
        return None

    async def _patched(
        self,
        key: view.Key,
        obj: Mapping[str, Any],
        s: steps.Situation,
        outcome: dict[str, Any] | _TargetChanged | _Refused | None,
        now: datetime.datetime,
    ) -> bool:
        """After the patch (and the status written after it): go on, or fail the change."""
        if isinstance(outcome, _Refused):
            assert s.change is not None  # ``_set_image`` patched it
            message = (
                f"the API server refused the image patch of {s.change.kind} {key[0]}/{s.change.name}: "
                f"{outcome.message}; nothing was deployed "
                "(a spec edit while deploying starts a new cycle; otherwise check the operator's RBAC and webhooks)"
            )
            await self._fail(
                self.view.promotions.get(key) or obj, s, steps.Step(steps.Action.FAIL, "DeployRefused", message), now
            )
            return False
        if isinstance(outcome, _TargetChanged):
            await self._target_changed(self.view.promotions.get(key) or obj, s, outcome.image, now)
            return False
        return outcome is not None

    async def _resume_deploy(
        self,
        key: view.Key,
        obj: Mapping[str, Any],
        s: steps.Situation,
        step: steps.Step,
        now: datetime.datetime,
    ) -> bool:
        """The workload carries this cycle's deploy but the status still waits (a restart after the
        patch): publish Deploying from the ``deploying`` record, which the patch could not precede.

        The cycle is the status's (the spec may have changed since: that cycle starts after this one).
        """
        assert s.change is not None
        try:
            recorded = await self.audit.find(str(obj["metadata"].get("uid")), "deploying", s.cycle_hash)
        except auditing.AuditUnavailableError as exc:
            logger.error("promotion %s/%s: audit unavailable: %s", key[0], key[1], exc)
            await self._write(obj, statuses.audit_down(obj, str(exc), now), step)
            self.queue.touch_at(key, now + AUDIT_RETRY)
            return False
        if recorded is None:
            message = (
                f"{s.change.kind} {key[0]}/{s.change.name} carries this Promotion's deploy of cycle "
                f"{s.cycle_hash[:19]}, but the audit trail has no deploying record for it; investigate"
            )
            await self._fail(obj, s, steps.Step(steps.Action.FAIL, "DeployNotRecorded", message), now)
            return False
        change = dataclasses.replace(s.change, image=recorded.image)
        decided = _AsRecorded.of(recorded)
        await self._write(obj, statuses.deploying(obj, decided, change, recorded.previous_image, now), step)
        return True

    async def _target_changed(
        self, obj: Mapping[str, Any], s: steps.Situation, image: str | None, now: datetime.datetime
    ) -> None:
        assert s.change is not None
        message = (
            f"the image of {s.change.kind} {s.change.namespace}/{s.change.name} changed from {s.previous_image} "
            f"to {image} after this Promotion's deploy was recorded (a change made outside Lockgate); nothing was "
            "deployed over it. Review the workload, then edit or re-apply the Promotion"
        )
        await self._fail(obj, s, steps.Step(steps.Action.FAIL, "TargetChangedWhileDeploying", message), now)

    async def _fail(self, obj: Mapping[str, Any], s: steps.Situation, step: steps.Step, now: datetime.datetime) -> bool:
        """Record ``failed`` (fail closed), then end Failed with the step's reason; False if not recorded."""
        verdict = {"passed": False, "message": step.message}
        if not await self._audit("failed", obj, now, None, s, step, verification=verdict):
            return False
        ended = statuses.ended(obj, step, now, phase="Failed")
        await self._write(obj, statuses.recorded(obj, ended, now, "failed"), step, warning=True)
        return True

    def _start_http(self, key: view.Key, obj: Mapping[str, Any], s: steps.Situation) -> None:
        run_key = (str(obj["metadata"].get("uid")), s.cycle_hash)
        if run_key in self._http:
            return
        checks = [
            verification.HttpCheck.from_spec(item, lambda d: durations.parse(str(d)).total_seconds())
            for item in (obj.get("spec", {}).get("verification") or {}).get("http") or []
        ]
        remaining = s.timeout.total_seconds()
        if s.deployed_at is not None:
            remaining = (s.deployed_at + s.timeout - self.clock()).total_seconds()
        deadline = time.monotonic() + max(remaining, 1.0)
        task = asyncio.create_task(
            verification.run_checks(checks, deadline, key[0], self.verification_hosts, lookup=self._service)
        )
        task.add_done_callback(lambda _: self.queue.touch(key))
        self._http[run_key] = _HttpRun(task)

    async def _service(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A Service an HTTP check names (verification connects to its cluster IP)."""
        return await self.api.get_or_none(kclient.resource_path("", "v1", "services", namespace, name))

    async def _audit(
        self,
        event: str,
        obj: Mapping[str, Any],
        now: datetime.datetime,
        result: gating.GateResult | None,
        s: steps.Situation,
        step: steps.Step,
        *,
        previous_image: str | None = None,
        verification: Mapping[str, Any] | None = None,
        showing: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record durably; on failure publish AuditRecorded=False and retry later (fail closed)."""
        stored = await self._audit_all(
            [(event, previous_image)], obj, now, result, s, step, verification=verification, showing=showing
        )
        return stored is not None

    async def _audit_all(
        self,
        events: list[tuple[str, str | None]],
        obj: Mapping[str, Any],
        now: datetime.datetime,
        result: gating.GateResult | None,
        s: steps.Situation,
        step: steps.Step,
        *,
        verification: Mapping[str, Any] | None = None,
        showing: Mapping[str, Any] | None = None,
    ) -> list[record.AuditRecord] | None:
        """Record ``(event, previous image)`` records in one durable write (fail closed, as ``_audit``).

        Returns the records as stored (an earlier write of the same id wins), or None when not durable.
        ``showing``: the status the Promotion should show though it is not written yet (the outage is
        published on it).
        """
        status = obj.get("status") or {}
        if result is not None:
            approvers, policies = result.approvers, result.policies
        else:
            approvers, policies = statuses.audit_context(status)
        rollout = status.get("rollout") or {}
        if s.phase in steps.ACTIVE and rollout.get("image"):  # the image this cycle deployed, even if edited since
            obj = {**obj, "spec": {**obj.get("spec", {}), "image": rollout["image"]}}
        if result is not None:  # the cycle's identity fields as this step will publish them
            obj = {
                **obj,
                "status": {**status, **result.status, "specHash": status.get("specHash") or s.spec_hash},
            }
        extra = {"reason": step.reason, "message": step.message}
        decision_records = {e for e, _ in events} <= {"approved", "deploying"}
        if decision_records and result is not None and result.emergency and result.status.get("retroReviewDueAt"):
            extra["retroReviewDueAt"] = result.status["retroReviewDueAt"]  # a resumed deploy takes it from here
        records = self.audit.build_all(
            [(event, previous_image or s.previous_image) for event, previous_image in events],
            obj,
            at=now,
            approvers=approvers,
            policies=policies,
            verification=verification,
            extra=extra,
        )
        try:
            return await self.audit.write(*records)
        except auditing.AuditUnavailableError as exc:
            logger.error("promotion %s: audit unavailable: %s", obj["metadata"].get("name"), exc)
            current = self.view.promotions.get(view.key_of(obj)) or obj
            shown = current if showing is None else {**current, "status": showing}
            await self._write(current, statuses.audit_down(shown, str(exc), now), step)
            self.queue.touch_at(view.key_of(obj), now + AUDIT_RETRY)
            return None

    async def _settle_late_approvals(self, key: view.Key) -> None:
        """Approvals with no verdict of their own once the cycle ended get one: what the Promotion's status
        says of them (a verdict whose write failed), else that they came too late to have an effect."""
        unjudged = self.view.unjudged_approvals_for(key)
        if not unjudged:
            return
        phase = str(((self.view.promotions.get(key) or {}).get("status") or {}).get("phase"))
        # The view keeps an ended Promotion without its approvals list: read it (rare: a lost verdict or a late one).
        promotion = await self.api.get_or_none(objects.promotion_path(*key)) or {}
        judged = {str(a.get("approval")): a for a in (promotion.get("status") or {}).get("approvals") or []}
        for item in unjudged:
            name = str(item["metadata"]["name"])
            entry = judged.get(name)  # the verdict the Promotion's status has for it (its write failed)
            late = decision.approval_status(entry) if entry else {
                "counted": False,
                "reason": "PromotionFinished",
                "message": f"Promotion {key[1]} is already {phase}; this approval has no effect",
            }
            try:
                updated = await objects.patch_approval_status(self.api, key[0], name, late)
                self.view.put_approval(updated)
            except kclient.ApiError as exc:
                if exc.status != 404:
                    raise

    async def _write_approvals(self, namespace: str, result: gating.GateResult) -> None:
        """Publish each Approval's verdict where it changed (concurrently: they are independent)."""

        async def write(name: str, wanted: Mapping[str, Any]) -> None:
            try:
                updated = await objects.patch_approval_status(self.api, namespace, name, wanted)
                self.view.put_approval(updated)
            except kclient.ApiError as exc:
                if exc.status != 404:
                    raise

        writes = []
        for name, wanted in result.approval_statuses.items():
            current = self.view.approvals.get((namespace, name))
            if current is None:
                continue
            have = current.get("status") or {}
            if all(have.get(k) == v for k, v in wanted.items()):
                continue
            writes.append(write(name, wanted))
        await asyncio.gather(*writes)

    async def _write(
        self,
        obj: Mapping[str, Any],
        new_status: Mapping[str, Any],
        step: steps.Step,
        *,
        warning: bool = False,
    ) -> None:
        """Write status only when it differs; post an Event when the phase changes or a hold starts."""
        old = obj.get("status") or {}
        patch = statuses.diff(old, new_status)
        if not patch:
            return
        meta = obj["metadata"]
        updated = await objects.patch_promotion_status(
            self.api,
            meta["namespace"],
            meta["name"],
            patch,
            agent=f"status promotion={meta['namespace']}/{meta['name']}",
        )
        self.view.put_promotion(updated)  # its watch event (same resourceVersion) is then ignored, so:
        if _generation(updated) != _generation(obj):
            # The spec changed after this step read it, and our write landed on top of that change: the
            # view now holds a newer version than the spec change's watch event, which it will ignore
            # (stale), and this status describes the older spec. Look again (after this pass).
            self.queue.touch(view.key_of(updated))
        old_phase, new_phase = old.get("phase"), new_status.get("phase")
        if old_phase != new_phase:
            target = self.view.target_of(updated)
            for other in self.view.promotions_targeting(target) if target else []:
                if other != view.key_of(updated):  # a phase change may supersede, block or free them
                    self.queue.touch(other)
            if self.metrics is not None:
                self.metrics.transition(updated, str(old_phase or ""), new_status)
        if _event_due(old, new_status, step):
            # Events are best-effort: posted in the background, never in the way of the next step.
            task = asyncio.create_task(
                events.post(
                    self.api,
                    updated,
                    reason=_event_reason(step, str(new_phase or "")),
                    message=(
                        f"{old_phase or 'New'} -> {new_phase}: {step.message}"
                        if old_phase != new_phase
                        else f"{new_phase}, held: {step.message}"
                    )[:1024],
                    type_="Warning" if warning else "Normal",
                )
            )
            self._events.add(task)
            task.add_done_callback(self._events.discard)
