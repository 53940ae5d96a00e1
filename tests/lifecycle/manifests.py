"""Manifests the lifecycle tests apply, as the sample users would write them."""

from __future__ import annotations

DIGEST = "sha256:" + "0123456789abcdef" * 4


def promotion(
    name: str = "web-2",
    image: str = f"registry.example/web:2.0@{DIGEST}",
    *,
    namespace: str = "production",
    author: str = "dave",
    extra: str = "",
) -> str:
    return f"""
apiVersion: lockgate.dev/v1alpha1
kind: Promotion
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  target: {{kind: Deployment, name: web, container: web}}
  image: "{image}"
  change: {{description: "Release {name}", ticket: CHG-1, author: {author}}}
  evidence:
    securityScan: {{status: Passed, critical: 0, high: 1}}
    integrationTests: {{status: Passed}}
    sbom: {{licenses: [MIT]}}
  verification: {{timeout: 20s, rollbackOnFailure: true}}
{extra}"""


def approval(
    name: str, promotion: str, *, decision: str = "Approve", namespace: str = "production", extra: str = ""
) -> str:
    return f"""
apiVersion: lockgate.dev/v1alpha1
kind: Approval
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  promotion: {promotion}
  decision: {decision}
{extra}"""
