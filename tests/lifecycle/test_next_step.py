"""The lifecycle state machine: only approved cycles deploy; a deployed cycle is never patched twice."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lockgate.lifecycle import steps
from lockgate.rollout import plan

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)
HASH = "sha256:" + "1" * 64
A = steps.Action
CHANGE = plan.ImageChange(
    namespace="production",
    kind="Deployment",
    name="web",
    container="web",
    image="web:2",
    promotion="p",
    spec_hash=HASH,
    approvers=("bob",),
)


def workload(
    image: str = "web:1",
    *,
    generation: int = 1,
    observed: int = 1,
    updated: int = 2,
    annotations: dict[str, str] | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation, "annotations": annotations or {}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "availableReplicas": updated,
            "replicas": 2,
            "conditions": conditions or [],
        },
    }


def applied(image: str = "web:2", operation: str = "deploy", **kw: Any) -> dict[str, Any]:
    change = dataclasses.replace(CHANGE, image=image, operation=operation)
    return workload(image, annotations=plan.image_patch(change)["metadata"]["annotations"], **kw)


def situation(**kw: Any) -> steps.Situation:
    base: dict[str, Any] = dict(
        phase="AwaitingApproval",
        spec_hash=HASH,
        cycle_hash=HASH,
        change=CHANGE,
        previous_image="web:1",
        deployed_generation=0,
        deployed_at=None,
        rollback_generation=0,
        rollback_reason="",
        timeout=datetime.timedelta(minutes=10),
        rollback_on_failure=True,
        has_http_checks=False,
        http_result=None,
        superseded_by=None,
        target_busy_with=None,
        workload=workload(),
    )
    base.update(kw)
    return steps.Situation(**base)


OPEN = steps.GateView(may_deploy=True, rejected=False, summary="approved")
SHUT = steps.GateView(may_deploy=False, rejected=False, summary="waiting for 1 approval from security-leads")


def test_waits_while_the_gate_is_shut_and_says_why() -> None:
    step = steps.next_step(situation(), SHUT, NOW)
    assert step.action is A.WAIT and "security-leads" in step.message


def test_an_open_gate_starts_the_deploy() -> None:
    assert steps.next_step(situation(), OPEN, NOW).action is A.START_DEPLOY


def test_rejection_and_supersession_end_the_cycle_before_any_deploy() -> None:
    rejected = steps.GateView(may_deploy=False, rejected=True, summary="carol rejected")
    assert steps.next_step(situation(), rejected, NOW).action is A.REJECT
    assert steps.next_step(situation(superseded_by="newer"), OPEN, NOW).action is A.SUPERSEDE


def test_a_busy_target_holds_an_approved_promotion() -> None:
    assert steps.next_step(situation(target_busy_with="other"), OPEN, NOW).action is A.WAIT_FOR_TARGET


def test_checks_whose_host_is_no_longer_allowed_hold_the_deploy_before_any_approval_is_spent() -> None:
    refused = "spec.verification.http[0].url: HTTP checks may probe only *.production.svc"
    for gate in (OPEN, SHUT):
        step = steps.next_step(situation(has_http_checks=True, checks_refused=refused), gate, NOW)
        assert step.action is A.HOLD and step.reason == "VerificationTargetNotAllowed"
        assert step.message.startswith(refused) and "Not deployed" in step.message
        assert (SHUT.summary in step.message) == (gate is SHUT)  # what else it waits for is still said
    assert steps.next_step(situation(has_http_checks=True), OPEN, NOW).action is A.START_DEPLOY


def test_a_paused_target_holds_the_deploy_until_it_is_resumed() -> None:
    paused = workload()
    paused["spec"]["paused"] = True
    step = steps.next_step(situation(workload=paused), OPEN, NOW)
    assert step.action is A.WAIT_FOR_TARGET and step.reason == "TargetPaused"
    assert "kubectl rollout resume deployment/web -n production" in step.message
    assert steps.next_step(situation(workload=paused), SHUT, NOW).action is A.WAIT  # approvals go on meanwhile
    assert steps.next_step(situation(workload=workload()), OPEN, NOW).action is A.START_DEPLOY


def test_deploying_patches_once_then_marks_deployed() -> None:
    assert steps.next_step(situation(phase="Deploying"), None, NOW).action is A.PATCH
    assert steps.next_step(situation(phase="Deploying", workload=applied()), None, NOW).action is A.MARK_DEPLOYED


def test_verifying_succeeds_fails_or_times_out() -> None:
    base = dict(phase="Verifying", deployed_generation=2, deployed_at=NOW)
    assert steps.next_step(situation(**base, workload=applied(generation=2, observed=2)), None, NOW).action is A.SUCCEED
    waiting = situation(**base, workload=applied(generation=2, observed=1))
    assert steps.next_step(waiting, None, NOW).action is A.AWAIT_ROLLOUT
    late = NOW + datetime.timedelta(minutes=11)
    step = steps.next_step(waiting, None, late)
    assert step.action is A.START_ROLLBACK and step.reason == "VerificationTimeout"
    failed = applied(
        generation=2,
        observed=2,
        updated=1,
        conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}],
    )
    assert steps.next_step(situation(**base, workload=failed), None, NOW).action is A.START_ROLLBACK
    assert steps.next_step(situation(**base, workload=failed, rollback_on_failure=False), None, NOW).action is A.FAIL


def test_http_checks_run_after_the_rollout_and_decide() -> None:
    base = dict(
        phase="Verifying",
        deployed_generation=2,
        deployed_at=NOW,
        has_http_checks=True,
        workload=applied(generation=2, observed=2),
    )
    assert steps.next_step(situation(**base), None, NOW).action is A.VERIFY_HTTP
    assert steps.next_step(situation(**base, http_result=(True, "ok")), None, NOW).action is A.SUCCEED
    step = steps.next_step(situation(**base, http_result=(False, "503")), None, NOW)
    assert step.action is A.START_ROLLBACK and step.reason == "HttpCheckFailed"


def test_rollback_patches_the_previous_image_then_ends_rolled_back() -> None:
    base = dict(phase="RollingBack", rollback_reason="rollout failed")
    assert steps.next_step(situation(**base, workload=applied()), None, NOW).action is A.PATCH_ROLLBACK
    back = applied(image="web:1", operation="rollback", generation=3, observed=3)
    assert steps.next_step(situation(**base, workload=back, rollback_generation=3), None, NOW).action is A.ROLLED_BACK


def test_a_spec_change_starts_a_new_cycle_but_never_interrupts_a_rollout() -> None:
    other = "sha256:" + "2" * 64
    assert steps.next_step(situation(spec_hash=other), OPEN, NOW).action is A.NEW_CYCLE
    assert steps.next_step(situation(phase="Succeeded", spec_hash=other), None, NOW).action is A.NEW_CYCLE
    assert steps.next_step(situation(phase="Deploying", spec_hash=other), None, NOW).action is A.PATCH


def test_a_waiting_cycle_whose_deploy_is_already_applied_resumes_whatever_the_gate_or_spec_says() -> None:
    # A restart after the patch, before the Deploying status landed: the records say it was decided.
    other = "sha256:" + "2" * 64
    for gate in (OPEN, SHUT, steps.GateView(False, True, "rejected"), None):
        for spec_hash in (HASH, other):
            s = situation(phase="Approved", spec_hash=spec_hash, deploy_applied=True, workload=applied())
            assert steps.next_step(s, gate, NOW).action is A.RESUME_DEPLOY


PHASES = st.sampled_from(sorted(steps.TERMINAL | steps.WAITING | steps.ACTIVE))
GATES = st.sampled_from([None, OPEN, SHUT, steps.GateView(False, True, "rejected")])


@given(
    phase=PHASES,
    gate=GATES,
    is_applied=st.booleans(),
    superseded=st.booleans(),
    busy=st.booleans(),
    checks_refused=st.booleans(),
    paused=st.booleans(),
)
def test_only_an_open_gate_or_an_active_cycle_touches_the_workload(
    phase: str,
    gate: steps.GateView | None,
    is_applied: bool,
    superseded: bool,
    busy: bool,
    checks_refused: bool,
    paused: bool,
) -> None:
    target = applied() if is_applied else workload()
    target["spec"]["paused"] = paused
    s = situation(
        phase=phase,
        workload=target,
        superseded_by="n" if superseded else None,
        target_busy_with="o" if busy else None,
        deploy_applied=is_applied and phase in steps.WAITING,
        has_http_checks=checks_refused,
        checks_refused="spec.verification.http[0].url: not allowed" if checks_refused else "",
    )
    step = steps.next_step(s, gate, NOW)
    if is_applied and phase in steps.WAITING:
        assert step.action is A.RESUME_DEPLOY  # recorded and applied: resumed, never started again
    if step.action in (A.START_DEPLOY, A.PATCH):
        held = checks_refused or paused
        assert phase in ("Deploying",) or (gate is OPEN and not superseded and not busy and not held)
    if step.action is A.PATCH:
        assert not is_applied  # never patch a workload that already runs this cycle
