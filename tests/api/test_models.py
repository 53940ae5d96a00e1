import re

import pydantic
import pytest

from lockgate.api import approval, gatepolicy, phases, promotion, samples


def test_from_k8s_tolerates_extra_metadata_and_fields() -> None:
    raw = samples.promotion_dict()
    raw["metadata"].update({"managedFields": [{"manager": "kubectl"}], "uid": "u1", "generation": 4})
    raw["spec"]["unknownFutureField"] = 1
    raw["status"] = {"phase": "AwaitingApproval", "specHash": samples.SPEC_HASH, "somethingNew": True}
    model = promotion.Promotion.from_k8s(raw)
    assert model.metadata.uid == "u1"
    assert model.metadata.generation == 4
    assert model.status.phase is phases.Phase.AWAITING_APPROVAL
    assert model.spec.change is not None and model.spec.change.author == "alice"


def test_status_dumps_camel_case_without_nones() -> None:
    status = promotion.PromotionStatus(
        phase=phases.Phase.APPROVED,
        spec_hash=samples.SPEC_HASH,
        requested_by=promotion.Identity(username="alice", groups=["dev"]),
        approvals_summary="2/2",
    )
    assert status.to_k8s() == {
        "phase": "Approved",
        "specHash": samples.SPEC_HASH,
        "requestedBy": {"username": "alice", "groups": ["dev"]},
        "conditions": [],
        "approvals": [],
        "gates": [],
        "approvalsSummary": "2/2",
        "auditRecords": [],
    }


@pytest.mark.parametrize(
    "image",
    [
        "registry.example/web:1.4.2",
        f"registry.example/web@{samples.DIGEST}",
        f"registry.example:5000/team/web:1.4.2@{samples.DIGEST}",
        "localhost:5000/web:latest",
        "web:v1",
        "ghcr.io/org/some_repo.name/web-app:2025.01.06-rc1",
    ],
)
def test_image_pattern_accepts_tag_or_digest(image: str) -> None:
    assert re.match(promotion.IMAGE_PATTERN, image)
    assert samples.promotion(image=image).spec.image == image


@pytest.mark.parametrize(
    "image",
    [
        "registry.example/web",  # no tag, no digest: implicit latest
        "registry.example/web@sha256:abc",  # short digest
        "Registry.example/Web:1",  # upper case repository path
        "registry.example/web:1.0 ",  # whitespace
        "registry.example/web:-bad",  # tag cannot start with '-'
        "",
    ],
)
def test_image_pattern_refuses_malformed_references(image: str) -> None:
    assert not re.match(promotion.IMAGE_PATTERN, image)
    with pytest.raises(pydantic.ValidationError, match="image"):
        samples.promotion(image=image)


def test_unknown_target_kind_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"target\.kind"):
        samples.promotion(target={"kind": "CronJob", "name": "web"})


def test_samples_round_trip_through_the_models() -> None:
    for model in (samples.promotion(), samples.approval(), samples.gate_policy()):
        again = type(model).from_k8s(model.to_k8s())
        assert again == model


def test_approval_defaults() -> None:
    raw = samples.approval_dict()
    del raw["spec"]["purpose"]
    model = approval.Approval.from_k8s(raw)
    assert model.spec.purpose == "Change"


def test_required_approvals_sums_rule_counts() -> None:
    assert gatepolicy.required_approvals(samples.gate_policy().spec) == 2


def test_terminal_phases_are_not_gate_phases_except_rejected() -> None:
    overlap = phases.TERMINAL & phases.GATE_PHASES
    assert overlap == {phases.Phase.REJECTED}
