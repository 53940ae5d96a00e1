"""The image patch touches one container's image and the workload's annotations, nothing else."""

from __future__ import annotations

from lockgate.rollout import plan

CHANGE = plan.ImageChange(
    namespace="production",
    kind="Deployment",
    name="web",
    container="web",
    image="registry.example/web:2",
    promotion="web-2",
    spec_hash="sha256:" + "a" * 64,
    approvers=("bob", "carol"),
)


def workload(image: str, annotations: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "metadata": {"annotations": annotations or {}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "sidecar", "image": "proxy:1"}, {"name": "web", "image": image}]
                }
            }
        },
    }


def test_patch_names_only_the_target_container() -> None:
    patch = plan.image_patch(CHANGE)
    assert patch["spec"] == {
        "template": {"spec": {"containers": [{"name": "web", "image": "registry.example/web:2"}]}}
    }
    assert patch["metadata"]["annotations"]["lockgate.dev/promotion"] == "production/web-2"
    assert patch["metadata"]["annotations"]["lockgate.dev/approved-by"] == "bob,carol"


def test_field_manager_and_agent_name_the_promotion() -> None:
    assert CHANGE.field_manager == "lockgate/web-2"
    assert "promotion=production/web-2" in CHANGE.agent and "approvers=bob,carol" in CHANGE.agent


def test_is_applied_needs_image_and_this_cycle() -> None:
    applied = plan.image_patch(CHANGE)["metadata"]["annotations"]
    assert plan.is_applied(workload("registry.example/web:2", applied), CHANGE)
    assert not plan.is_applied(workload("registry.example/web:2"), CHANGE)  # same image, set by someone else
    assert not plan.is_applied(workload("registry.example/web:1", applied), CHANGE)
    assert plan.current_image(workload("x:1"), "web") == "x:1"
    assert plan.current_image(workload("x:1"), "nope") is None
