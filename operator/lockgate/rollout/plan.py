"""Planning the workload change: which object, which container, and a patch that touches nothing else."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

WORKLOAD_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
WORKLOAD_GROUP = "apps"
WORKLOAD_VERSION = "v1"

ANNOTATION_PROMOTION = "lockgate.dev/promotion"
ANNOTATION_SPEC_HASH = "lockgate.dev/spec-hash"
ANNOTATION_APPROVERS = "lockgate.dev/approved-by"
ANNOTATION_OPERATION = "lockgate.dev/operation"


@dataclasses.dataclass(frozen=True)
class ImageChange:
    """One change of one container's image, and who it is for."""

    namespace: str
    kind: str
    name: str
    container: str
    image: str
    promotion: str
    spec_hash: str
    approvers: tuple[str, ...]
    operation: str = "deploy"  # or "rollback"

    @property
    def plural(self) -> str:
        return WORKLOAD_PLURALS[self.kind]

    @property
    def field_manager(self) -> str:
        """Names the promotion in managedFields (at most 128 characters, as Kubernetes allows)."""
        return f"lockgate/{self.promotion}"[:128]

    @property
    def agent(self) -> str:
        """The User-Agent comment that ties the API call to the promotion and its approvers."""
        who = ",".join(self.approvers) or "-"
        spec = self.spec_hash[:19]
        return f"{self.operation} promotion={self.namespace}/{self.promotion} spec={spec} approvers={who}"


def containers(workload: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    spec = workload.get("spec", {}).get("template", {}).get("spec", {})
    return list(spec.get("containers") or [])


def current_image(workload: Mapping[str, Any], container: str) -> str | None:
    """The image the named container runs now, or None when the workload has no such container."""
    for item in containers(workload):
        if item.get("name") == container:
            image = item.get("image")
            return str(image) if image is not None else None
    return None


def container_names(workload: Mapping[str, Any]) -> list[str]:
    return [str(c.get("name")) for c in containers(workload)]


def image_patch(change: ImageChange) -> dict[str, Any]:
    """A strategic merge patch that sets one container's image and annotates the workload, nothing else."""
    return {
        "metadata": {
            "annotations": {
                ANNOTATION_PROMOTION: f"{change.namespace}/{change.promotion}",
                ANNOTATION_SPEC_HASH: change.spec_hash,
                ANNOTATION_APPROVERS: ",".join(change.approvers),
                ANNOTATION_OPERATION: change.operation,
            }
        },
        "spec": {"template": {"spec": {"containers": [{"name": change.container, "image": change.image}]}}},
    }


def carries_deploy(workload: Mapping[str, Any], namespace: str, promotion: str, spec_hash: str) -> bool:
    """True when the workload's last image change was this promotion cycle's deploy (whatever image it set)."""
    annotations = workload.get("metadata", {}).get("annotations") or {}
    return (
        bool(spec_hash)
        and annotations.get(ANNOTATION_PROMOTION) == f"{namespace}/{promotion}"
        and annotations.get(ANNOTATION_SPEC_HASH) == spec_hash
        and annotations.get(ANNOTATION_OPERATION) == "deploy"
    )


def is_applied(workload: Mapping[str, Any], change: ImageChange) -> bool:
    """True when the workload already runs the change for this promotion cycle (restart safety)."""
    annotations = workload.get("metadata", {}).get("annotations") or {}
    return (
        current_image(workload, change.container) == change.image
        and annotations.get(ANNOTATION_PROMOTION) == f"{change.namespace}/{change.promotion}"
        and annotations.get(ANNOTATION_SPEC_HASH) == change.spec_hash
        and annotations.get(ANNOTATION_OPERATION) == change.operation
    )
