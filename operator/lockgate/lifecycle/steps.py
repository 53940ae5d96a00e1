"""The lifecycle state machine: given what is known now, the one next step of a Promotion. Pure.

Exactly-once rests on the order the reconciler follows: the ``approved`` and ``deploying`` audit
records (with the previous image) are durable before the workload is patched, and a workload that
already carries this cycle's annotations is never patched again. The rollout's first status follows
the patch (``Verifying`` once the ``deployed`` record is durable; ``Deploying`` when it is not applied at
once); a restart that finds the patch applied but the status still waiting resumes from the
``deploying`` record (``RESUME_DEPLOY``).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Mapping
from typing import Any

from lockgate.rollout import health, plan

TERMINAL = frozenset({"Succeeded", "Failed", "RolledBack", "Rejected", "Superseded"})
WAITING = frozenset({"", "Pending", "AwaitingApproval", "Approved"})
ACTIVE = frozenset({"Deploying", "Verifying", "RollingBack"})


class Action(enum.StrEnum):
    NEW_CYCLE = "NewCycle"  # the spec changed after the last cycle ended: start over
    WAIT = "Wait"  # gates not passed yet: publish what it waits for
    SUPERSEDE = "Supersede"
    REJECT = "Reject"
    WAIT_FOR_TARGET = "WaitForTarget"  # approved, but another promotion is rolling the workload
    TARGET_MISSING = "TargetMissing"
    HOLD = "Hold"  # something outside the gate would make a deploy fail (its checks' hosts): not deployed
    START_DEPLOY = "StartDeploy"  # audit + Deploying status (previous image recorded)
    PATCH = "Patch"  # set the image (only if not yet applied)
    MARK_DEPLOYED = "MarkDeployed"  # applied already (restart after the patch): record it
    RESUME_DEPLOY = "ResumeDeploy"  # waiting, but the workload carries this cycle's deploy: Deploying again
    AWAIT_ROLLOUT = "AwaitRollout"
    VERIFY_HTTP = "VerifyHttp"
    SUCCEED = "Succeed"
    START_ROLLBACK = "StartRollback"
    PATCH_ROLLBACK = "PatchRollback"
    AWAIT_ROLLBACK = "AwaitRollback"
    ROLLED_BACK = "RolledBack"
    FAIL = "Fail"
    DONE = "Done"  # terminal, nothing to do


@dataclasses.dataclass(frozen=True)
class GateView:
    """What the gate engine decided, reduced to what the lifecycle needs."""

    may_deploy: bool
    rejected: bool
    summary: str
    next_look_at: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Situation:
    """Everything known about one Promotion at one moment."""

    phase: str
    spec_hash: str  # of the spec as it is now
    cycle_hash: str  # status.specHash: the cycle the status describes
    change: plan.ImageChange | None  # the planned image change of the current cycle
    previous_image: str | None
    deployed_generation: int
    deployed_at: datetime.datetime | None
    rollback_generation: int
    rollback_reason: str
    timeout: datetime.timedelta
    rollback_on_failure: bool
    has_http_checks: bool
    http_result: tuple[bool, str] | None  # result of this cycle's HTTP checks, when finished
    superseded_by: str | None  # a newer waiting promotion for the same target
    target_busy_with: str | None  # another promotion that is rolling the same target
    workload: Mapping[str, Any] | None
    target_problem: str = "the target workload or container does not exist"
    deploy_applied: bool = False  # the workload carries this promotion's deploy for the status's cycle
    checks_refused: str = ""  # why this spec's HTTP checks may not probe their URLs now (empty: they may)


@dataclasses.dataclass(frozen=True)
class Step:
    action: Action
    reason: str
    message: str
    next_look_at: datetime.datetime | None = None


def next_step(s: Situation, gate: GateView | None, now: datetime.datetime) -> Step:
    """The one next step; the reconciler performs it and asks again."""
    if s.phase in TERMINAL:
        if s.spec_hash != s.cycle_hash:
            return Step(Action.NEW_CYCLE, "SpecChanged", "the spec changed: a new approval cycle starts")
        return Step(Action.DONE, s.phase, "")
    if s.phase in ACTIVE:
        return _active(s, now)
    if s.deploy_applied:  # before any new cycle: the deploy happened and its record says so
        return Step(Action.RESUME_DEPLOY, "Deploying", "this cycle's image change is already applied: recording it")
    if s.cycle_hash and s.spec_hash != s.cycle_hash:
        return Step(Action.NEW_CYCLE, "SpecChanged", "the spec changed: earlier approvals no longer count")
    return _waiting(s, gate)


def _waiting(s: Situation, gate: GateView | None) -> Step:
    if gate is None:
        return Step(Action.WAIT, "Evaluating", "waiting for the gate to be evaluated")
    if s.superseded_by:
        return Step(Action.SUPERSEDE, "Superseded", f"superseded by Promotion {s.superseded_by} for the same target")
    if gate.rejected:
        return Step(Action.REJECT, "Rejected", gate.summary)
    if s.workload is None or s.change is None:  # said before anyone spends an approval on it
        return Step(Action.TARGET_MISSING, "TargetNotFound", f"{s.target_problem}; fix spec.target")
    if s.checks_refused:  # admitted before the allowed hosts were narrowed: the rollout could only fail
        return _hold(
            gate,
            "VerificationTargetNotAllowed",
            f"{s.checks_refused}. Not deployed: these HTTP checks could not run after the deploy, so the rollout "
            "would fail. Point them at a Service of this namespace (a spec change starts a new approval cycle), or "
            "have the platform team allow the host (chart operator.verificationHosts, LOCKGATE_VERIFICATION_HOSTS).",
        )
    if not gate.may_deploy:
        return Step(Action.WAIT, "Waiting", gate.summary, gate.next_look_at)
    if s.target_busy_with:
        return Step(
            Action.WAIT_FOR_TARGET,
            "TargetBusy",
            f"approved; waiting for Promotion {s.target_busy_with} to finish rolling out the same workload",
        )
    if health.paused(s.change.kind, s.workload):  # a rollout into it would not progress (nor a rollback)
        target = f"{s.change.kind.lower()}/{s.change.name}"
        return Step(
            Action.WAIT_FOR_TARGET,
            "TargetPaused",
            f"approved; waiting for {s.change.kind} {s.change.name} to be resumed (it is paused, so a rollout would "
            f"not progress): kubectl rollout resume {target} -n {s.change.namespace}",
        )
    return Step(Action.START_DEPLOY, "Deploying", "approved: recording the decision and deploying")


FACTS_RETRY = datetime.timedelta(seconds=5)


def facts_unreadable(problem: str, now: datetime.datetime) -> Step:
    """Approved on the view, but a watch it depends on is not streaming and reading afresh failed: not deployed."""
    return Step(
        Action.HOLD,
        "PoliciesUnverified",
        "approved by the operator's last view, but not deployed: its watch of GatePolicies, Namespaces, Approvals "
        "or Promotions is not streaming, so before deploying it reads them from the API (a policy tightened, an "
        f"Approval withdrawn or a Promotion deleted meanwhile must apply), and {problem}. It tries again every "
        f"{FACTS_RETRY.seconds}s; the operator must be able to list gatepolicies, namespaces and approvals and get "
        "promotions (metric lockgate_watch_up, alert LockgateWatchDown)",
        now + FACTS_RETRY,
    )


def _hold(gate: GateView, reason: str, message: str) -> Step:
    """Not deployed, approved or not, for ``reason``; still saying what else the gate waits for."""
    meanwhile = "" if gate.may_deploy else f" Meanwhile: {gate.summary}"
    return Step(Action.HOLD, reason, message + meanwhile, gate.next_look_at)


def deployed(change: plan.ImageChange) -> Step:
    """The step that records an applied image change (and what its ``deployed`` record says)."""
    return Step(Action.MARK_DEPLOYED, "Deployed", f"image {change.image} set")


def _active(s: Situation, now: datetime.datetime) -> Step:
    if s.workload is None or s.change is None:
        return Step(Action.FAIL, "TargetNotFound", f"during the rollout: {s.target_problem}")
    if s.phase == "Deploying":
        if plan.is_applied(s.workload, s.change):
            return deployed(s.change)
        return Step(Action.PATCH, "Deploying", f"setting image {s.change.image}")
    if s.phase == "Verifying":
        return _verifying(s, now)
    return _rolling_back(s, now)


def _deadline(s: Situation) -> datetime.datetime | None:
    return s.deployed_at + s.timeout if s.deployed_at else None


def _verifying(s: Situation, now: datetime.datetime) -> Step:
    assert s.workload is not None and s.change is not None
    judged = health.judge(s.change.kind, s.workload, s.deployed_generation)
    deadline = _deadline(s)
    failure: tuple[str, str] | None = None
    if judged.state is health.RolloutState.FAILED:
        failure = (judged.reason, judged.message)
    elif judged.state is health.RolloutState.PROGRESSING:
        if deadline is not None and now >= deadline:
            failure = ("VerificationTimeout", f"rollout not complete within {s.timeout}: {judged.message}")
        else:
            return Step(Action.AWAIT_ROLLOUT, judged.reason, judged.message, deadline)
    elif s.has_http_checks:
        if s.http_result is None:
            return Step(Action.VERIFY_HTTP, "HttpChecksRunning", "rollout complete; running HTTP checks", deadline)
        passed, message = s.http_result
        if not passed:
            failure = ("HttpCheckFailed", message)
    if failure is None:
        return Step(
            Action.SUCCEED,
            "Verified",
            judged.message if not s.has_http_checks else "rollout complete and HTTP checks passed",
        )
    reason, message = failure
    if s.rollback_on_failure and s.previous_image:
        return Step(Action.START_ROLLBACK, reason, f"{message}; rolling back to {s.previous_image}")
    return Step(Action.FAIL, reason, message)


def _rolling_back(s: Situation, now: datetime.datetime) -> Step:
    assert s.workload is not None and s.change is not None and s.previous_image
    back = dataclasses.replace(s.change, image=s.previous_image, operation="rollback")
    if not plan.is_applied(s.workload, back):
        return Step(Action.PATCH_ROLLBACK, "RollingBack", f"restoring image {s.previous_image}")
    judged = health.judge(s.change.kind, s.workload, s.rollback_generation)
    if judged.state is health.RolloutState.COMPLETE:
        return Step(
            Action.ROLLED_BACK,
            "RolledBack",
            f"{s.rollback_reason}; previous image {s.previous_image} restored",
        )
    if judged.state is health.RolloutState.FAILED:
        return Step(Action.FAIL, "RollbackFailed", f"{s.rollback_reason}; the rollback also failed: {judged.message}")
    return Step(
        Action.AWAIT_ROLLBACK,
        judged.reason,
        f"rolling back: {judged.message}",
        now + datetime.timedelta(seconds=5),
    )
