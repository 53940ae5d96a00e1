"""Reading and writing the objects the operator owns a part of: Promotion/Approval status, workloads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lockgate.kube import client as kclient
from lockgate.rollout import plan

GROUP, VERSION = "lockgate.dev", "v1alpha1"


def promotion_path(namespace: str, name: str, sub: str = "") -> str:
    return kclient.resource_path(GROUP, VERSION, "promotions", namespace, name, sub)


def approval_path(namespace: str, name: str, sub: str = "") -> str:
    return kclient.resource_path(GROUP, VERSION, "approvals", namespace, name, sub)


def workload_path(kind: str, namespace: str, name: str) -> str:
    return kclient.resource_path(
        plan.WORKLOAD_GROUP, plan.WORKLOAD_VERSION, plan.WORKLOAD_PLURALS[kind], namespace, name
    )


async def patch_promotion_status(
    api: kclient.Client, namespace: str, name: str, status: Mapping[str, Any], *, agent: str | None = None
) -> dict[str, Any]:
    """Merge-patch the status subresource (the only part of a Promotion the operator writes)."""
    return await api.patch(promotion_path(namespace, name, "status"), {"status": dict(status)}, agent=agent)


async def patch_approval_status(
    api: kclient.Client, namespace: str, name: str, status: Mapping[str, Any]
) -> dict[str, Any]:
    return await api.patch(approval_path(namespace, name, "status"), {"status": dict(status)})


async def patch_policy_status(api: kclient.Client, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
    return await api.patch(
        kclient.resource_path(GROUP, VERSION, "gatepolicies", None, name, "status"), {"status": dict(status)}
    )


async def get_workload(api: kclient.Client, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    return await api.get_or_none(workload_path(kind, namespace, name))


async def get_cronjob(api: kclient.Client, namespace: str, name: str) -> dict[str, Any] | None:
    return await api.get_or_none(kclient.resource_path("batch", "v1", "cronjobs", namespace, name))


async def set_image(
    api: kclient.Client, change: plan.ImageChange, *, resource_version: str | None = None
) -> dict[str, Any]:
    """Set one container's image with a strategic merge patch naming the promotion as field manager.

    With ``resource_version`` the patch applies only to that version of the workload (409 otherwise).
    """
    body = plan.image_patch(change)
    if resource_version:
        body["metadata"]["resourceVersion"] = resource_version
    return await api.patch(
        workload_path(change.kind, change.namespace, change.name),
        body,
        content_type=kclient.STRATEGIC_PATCH,
        params={"fieldManager": change.field_manager},
        agent=change.agent,
    )


async def get_secret(api: kclient.Client, namespace: str, name: str) -> dict[str, Any] | None:
    return await api.get_or_none(kclient.resource_path("", "v1", "secrets", namespace, name))


async def create_secret(api: kclient.Client, namespace: str, name: str, data: Mapping[str, str]) -> dict[str, Any]:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "lockgate"},
        },
        "type": "Opaque",
        "data": dict(data),
    }
    return await api.create(kclient.resource_path("", "v1", "secrets", namespace), body)
