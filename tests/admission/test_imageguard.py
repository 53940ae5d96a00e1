"""The image guard's verdict on the operator's own image changes (pure): only for a live cycle's image."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.admission import imageguard, stamping

OPERATOR = "system:serviceaccount:lockgate-system:lockgate-operator"
CYCLE = "sha256:" + "1" * 64


def workload(image: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "production", "annotations": annotations or {}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
    }


def promotion(phase: str, image: str = "web:2") -> dict[str, Any]:
    return {
        "metadata": {"name": "web-2", "namespace": "production"},
        "spec": {"target": {"kind": "Deployment", "name": "web", "container": "web"}, "image": image},
        "status": {"phase": phase, "specHash": CYCLE},
    }


def judge(promo: dict[str, Any], *, image: str = "web:2", spec_hash: str = CYCLE) -> imageguard.Verdict:
    annotations = {
        imageguard.ANNOTATION_PROMOTION: "production/web-2",
        imageguard.ANNOTATION_OPERATION: "deploy",
        imageguard.ANNOTATION_SPEC_HASH: spec_hash,
    }
    return imageguard.judge(
        kind="Deployment",
        namespace="production",
        name="web",
        old=workload("web:1"),
        new=workload(image, annotations),
        user=stamping.User(OPERATOR, ()),
        namespace_gated=True,
        operator_identity=OPERATOR,
        break_glass_groups=(),
        promotion=promo,
    )


@pytest.mark.parametrize("phase", ["Pending", "AwaitingApproval", "Approved", "Deploying"])
def test_the_operator_may_deploy_the_current_cycle_while_its_deploying_status_is_on_the_way(phase: str) -> None:
    assert judge(promotion(phase)).allowed


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Rejected", "Superseded", "RolledBack"])
def test_the_operator_may_not_deploy_for_a_promotion_that_is_not_approved_or_deploying(phase: str) -> None:
    verdict = judge(promotion(phase))
    assert not verdict.allowed and verdict.reason == "NoActivePromotion"


def test_the_operator_may_deploy_the_current_spec_of_a_promotion_with_no_status_yet() -> None:
    """Approved before the operator's first status write landed (a restart): the spec's own cycle."""
    promo = promotion("")
    del promo["status"]
    current = stamping.current_spec_hash(promo)
    assert judge(promo, spec_hash=current).allowed
    assert not judge(promo, spec_hash=CYCLE).allowed
    assert not judge(promo, spec_hash=current, image="web:3").allowed


def test_a_first_status_that_only_says_the_audit_sink_was_down_still_lets_the_decided_deploy_through() -> None:
    promo = promotion("")
    promo["status"] = {"auditRecorded": False, "message": "audit sink sqlite is unavailable"}
    current = stamping.current_spec_hash(promo)
    assert judge(promo, spec_hash=current).allowed
    assert not judge(promo, spec_hash=CYCLE).allowed


def test_the_operator_may_not_deploy_another_cycle_or_another_image() -> None:
    assert not judge(promotion("Approved"), spec_hash="sha256:" + "2" * 64).allowed
    assert not judge(promotion("Approved"), image="web:3").allowed
    assert not judge(None).allowed  # type: ignore[arg-type]
