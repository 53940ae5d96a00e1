"""Rendering the chart with the real Helm SDK, and picking objects out of the result."""

from __future__ import annotations

import pathlib
from collections.abc import Iterable
from typing import Any

import helm_python
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "lockgate"
RELEASE = "lockgate"
NAMESPACE = "lockgate-system"
IDENTITY = f"system:serviceaccount:{NAMESPACE}:{RELEASE}"

# Values that switch on everything optional, for the non-default renders.
EVERYTHING: dict[str, Any] = {
    "replicaCount": 3,
    "image": {"digest": "sha256:" + "ab" * 32},
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/lockgate"}},
    "rbac": {
        "workloadNamespaces": ["staging", "production"],
        "userRoles": {
            "requesterGroups": ["engineers"],
            "approverGroups": ["engineering-leads", "security-leads"],
            "viewerGroups": ["auditors"],
        },
    },
    "operator": {"breakGlassGroups": ["oncall-leads"]},
    "webhook": {"certificate": {"source": "certManager", "certManagerIssuer": {"kind": "ClusterIssuer", "name": "ca"}}},
    "audit": {
        "sinks": ["dynamodb", "s3"],
        "dynamodb": {"table": "lockgate-audit", "region": "us-gov-west-1"},
        "s3": {"bucket": "lockgate-audit", "region": "us-gov-west-1"},
    },
    "networkPolicy": {"apiServerCIDRs": ["10.0.0.1/32"], "metricsFrom": [{"namespaceSelector": {}}]},
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True},
    },
    "podDisruptionBudget": {"minAvailable": 2},
}


def render(values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Every object the chart renders (templates only; CRDs are in :func:`crds`)."""
    with helm_python.Chart.load(CHART) as chart:
        manifests = chart.render(values or {}, name=RELEASE, namespace=namespace, is_install=True)
    objects: list[dict[str, Any]] = []
    for name, text in sorted(manifests.items()):
        if name.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def notes(values: dict[str, Any] | None = None) -> str:
    with helm_python.Chart.load(CHART) as chart:
        manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return next(text for name, text in manifests.items() if name.endswith("NOTES.txt"))


def crds() -> list[dict[str, Any]]:
    with helm_python.Chart.load(CHART) as chart:
        return [doc for entry in chart.crds for doc in yaml.safe_load_all(entry["data"]) if doc]


def of_kind(objects: Iterable[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] in kinds]


def one(objects: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in of_kind(objects, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def env(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}
