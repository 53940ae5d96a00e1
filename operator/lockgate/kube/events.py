"""Kubernetes Events for Promotion transitions, with the same CamelCase reason as the condition."""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from lockgate.kube import client as kclient

logger = logging.getLogger(__name__)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def post(
    api: kclient.Client,
    involved: Mapping[str, Any],
    *,
    reason: str,
    message: str,
    type_: str = "Normal",
    component: str = "lockgate",
) -> None:
    """Create a core/v1 Event; a failure to post is logged, never fatal (events are best-effort)."""
    meta = involved.get("metadata", {})
    namespace = meta.get("namespace") or "default"
    now = _now()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name')}.{uuid.uuid4().hex[:12]}", "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": namespace,
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": type_,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await api.create(kclient.resource_path("", "v1", "events", namespace), body)
    except (kclient.ApiError, kclient.ApiUnavailable) as exc:
        logger.warning("could not post event %s for %s/%s: %s", reason, namespace, meta.get("name"), exc)
