"""Small factories of sample objects (raw dicts) for tests, examples and the demo.

Each factory returns a raw Kubernetes object; pass ``model=True`` for the pydantic model. Keyword
overrides replace top-level spec keys.
"""

from __future__ import annotations

import datetime
from typing import Any

from lockgate.api import approval as approval_api
from lockgate.api import gatepolicy, meta
from lockgate.api import promotion as promotion_api

DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = f"registry.example/web:1.4.2@{DIGEST}"
SPEC_HASH = "sha256:" + "0" * 64
AT = datetime.datetime(2025, 1, 6, 14, 0, tzinfo=datetime.UTC)


def promotion_dict(name: str = "web-1-4-2", namespace: str = "production", **spec: Any) -> dict[str, Any]:
    """A Promotion of production/web to IMAGE with passing evidence, authored by alice."""
    body: dict[str, Any] = {
        "target": {"kind": "Deployment", "name": "web", "container": "web"},
        "image": IMAGE,
        "change": {
            "description": "Release 1.4.2: fix checkout timeout",
            "ticket": "CHG-1042",
            "url": "https://git.example/web/pull/1042",
            "author": "alice",
        },
        "evidence": {
            "securityScan": {
                "status": "Passed",
                "critical": 0,
                "high": 2,
                "reportUrl": "https://ci.example/scan/1",
            },
            "integrationTests": {"status": "Passed", "url": "https://ci.example/tests/1"},
            "sbom": {"url": "https://ci.example/sbom/1", "licenses": ["MIT", "Apache-2.0", "BSD-3-Clause"]},
        },
    }
    body.update(spec)
    return {
        "apiVersion": meta.API_VERSION,
        "kind": "Promotion",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def promotion(name: str = "web-1-4-2", namespace: str = "production", **spec: Any) -> promotion_api.Promotion:
    """The model of ``promotion_dict``."""
    return promotion_api.Promotion.from_k8s(promotion_dict(name, namespace, **spec))


def approval_dict(
    name: str = "web-1-4-2-bob",
    namespace: str = "production",
    *,
    promotion: str = "web-1-4-2",
    approver: str = "bob",
    groups: tuple[str, ...] = ("engineering-leads",),
    decision: str = "Approve",
    spec_hash: str | None = SPEC_HASH,
    at: datetime.datetime = AT,
    purpose: str = "Change",
    signature: str = "hmac-sha256:" + "0" * 64,
) -> dict[str, Any]:
    """A stamped Approval (the signature is a placeholder: tests mark it verified through Facts)."""
    spec: dict[str, Any] = {
        "promotion": promotion,
        "decision": decision,
        "purpose": purpose,
        "comment": "reviewed",
        "approver": approver,
        "groups": list(groups),
        "stamp": {"at": at.isoformat().replace("+00:00", "Z"), "signature": signature},
    }
    if spec_hash is not None:
        spec["specHash"] = spec_hash
    return {
        "apiVersion": meta.API_VERSION,
        "kind": "Approval",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def approval(
    name: str = "web-1-4-2-bob", namespace: str = "production", **kwargs: Any
) -> approval_api.Approval:
    """The model of ``approval_dict``."""
    return approval_api.Approval.from_k8s(approval_dict(name, namespace, **kwargs))


def gate_policy_dict(name: str = "production", **spec: Any) -> dict[str, Any]:
    """The seed's production policy: technical + security approvals, the default evidence rules."""
    body: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"lockgate.dev/environment": "production"}},
        "approvals": {
            "rules": [
                {"name": "technical", "groups": ["engineering-leads"], "count": 1},
                {"name": "security", "groups": ["security-leads"], "count": 1},
            ],
            "forbidSelfApproval": True,
            "maxAge": "24h",
        },
        "rules": [dict(rule) for rule in DEFAULT_EVIDENCE_RULES],
        "emergency": {"groups": ["oncall-leads"], "required": 1, "retroReviewWithin": "24h"},
        "audit": {"retention": "7y"},
    }
    body.update(spec)
    return {
        "apiVersion": meta.API_VERSION,
        "kind": "GatePolicy",
        "metadata": {"name": name, "uid": f"uid-{name}", "generation": 1},
        "spec": body,
    }


def gate_policy(name: str = "production", **spec: Any) -> gatepolicy.GatePolicy:
    """The model of ``gate_policy_dict``."""
    return gatepolicy.GatePolicy.from_k8s(gate_policy_dict(name, **spec))


#: The seed's default evidence rules (also in examples/gatepolicy-production.yaml).
DEFAULT_EVIDENCE_RULES: tuple[dict[str, str], ...] = (
    {
        "name": "no-critical-vulnerabilities",
        "expression": "promotion.spec.evidence.securityScan.critical == 0",
        "message": "the image has critical vulnerabilities; fix them or use an image without them",
    },
    {
        "name": "few-high-vulnerabilities",
        "expression": "promotion.spec.evidence.securityScan.high <= 5",
        "message": "the image has more than 5 high vulnerabilities",
    },
    {
        "name": "integration-tests-passed",
        "expression": "promotion.spec.evidence.integrationTests.status == 'Passed'",
        "message": "integration tests must pass for this image",
    },
    {
        "name": "no-banned-licenses",
        "expression": "!promotion.spec.evidence.sbom.licenses.exists(l, l in ['GPL-3.0', 'AGPL-3.0'])",
        "message": "the SBOM lists a banned licence (GPL-3.0, AGPL-3.0)",
    },
)
