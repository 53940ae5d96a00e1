"""The Promotion kind: one requested change of one workload's image, and its status."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import pydantic

from lockgate.api import durations, meta, phases

#: Annotation the admission webhook stamps with the requester's identity, as JSON
#: ``{"username", "groups", "at", "signature"}``; the operator verifies it and copies
#: ``username`` and ``groups`` to ``status.requestedBy``.
REQUESTED_BY_ANNOTATION = "lockgate.dev/requested-by"

_DOMAIN_COMPONENT = r"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(\.{_DOMAIN_COMPONENT})*(:[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
_NAME = rf"({_DOMAIN}/)?{_PATH_COMPONENT}(/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"

#: An OCI image reference that names a tag, a digest, or both: ``name[:tag][@sha256:<64 hex>]``.
#: A bare name (implicitly ``:latest``) is refused. Policies can require a digest with a CEL rule
#: such as ``promotion.spec.image.contains("@sha256:")``.
IMAGE_PATTERN = rf"^{_NAME}(:{_TAG}(@{_DIGEST})?|@{_DIGEST})$"

WorkloadKind = Literal["Deployment", "StatefulSet", "DaemonSet"]
#: A Kubernetes object name (RFC 1123 subdomain).
DNS_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DnsName = Annotated[str, pydantic.Field(min_length=1, max_length=253, pattern=DNS_NAME_PATTERN)]
EvidenceStatus = Literal["Passed", "Failed", "Unknown"]
RiskLevel = Literal["Low", "Medium", "High"]


class Target(meta.Model):
    """The workload whose image changes; it lives in the Promotion's namespace."""

    kind: WorkloadKind = "Deployment"
    """Workload kind: Deployment, StatefulSet or DaemonSet."""
    name: DnsName
    """Workload name."""
    container: str | None = None
    """Container whose image changes; when omitted, the workload must have exactly one container."""


class Change(meta.Model):
    """What the change is, for the approvers and the audit record."""

    description: str = pydantic.Field(min_length=1, max_length=4096)
    """What changes and why, in a sentence an approver can judge."""
    ticket: str | None = pydantic.Field(default=None, max_length=256)
    """Change ticket or issue identifier (e.g. CHG-1234)."""
    url: str | None = pydantic.Field(default=None, max_length=2048)
    """Link to the pull request, merge request or change record."""
    author: str | None = pydantic.Field(default=None, max_length=256)
    """Declared author of the code change (a username or commit author); never counts as an approver."""


class SecurityScan(meta.Model):
    """Vulnerability scan of the image, as reported by CI."""

    status: EvidenceStatus = "Unknown"
    """Passed, Failed or Unknown."""
    critical: int = pydantic.Field(default=0, ge=0)
    """Number of critical findings."""
    high: int = pydantic.Field(default=0, ge=0)
    """Number of high findings."""
    medium: int | None = pydantic.Field(default=None, ge=0)
    """Number of medium findings."""
    report_url: str | None = pydantic.Field(default=None, max_length=2048)
    """Link to the full report."""


class IntegrationTests(meta.Model):
    """Integration test run against this image, as reported by CI."""

    status: EvidenceStatus = "Unknown"
    """Passed, Failed or Unknown."""
    url: str | None = pydantic.Field(default=None, max_length=2048)
    """Link to the test run."""


class Sbom(meta.Model):
    """Software bill of materials of the image."""

    url: str | None = pydantic.Field(default=None, max_length=2048)
    """Link to the SBOM document."""
    licenses: list[str] = pydantic.Field(default_factory=list, max_length=1024)
    """SPDX identifiers of the licences found in the image."""


class Evidence(meta.Model):
    """CI's claims about the image; GatePolicy rules judge them."""

    security_scan: SecurityScan | None = None
    """Vulnerability scan summary."""
    integration_tests: IntegrationTests | None = None
    """Integration test result."""
    sbom: Sbom | None = None
    """Software bill of materials."""


class Source(meta.Model):
    """A workload (usually in staging) that must already run the same image healthily."""

    namespace: DnsName
    """Namespace of the source workload."""
    name: DnsName
    """Name of the source workload."""
    kind: WorkloadKind = "Deployment"
    """Kind of the source workload."""
    min_soak: durations.Duration = "0"
    """How long the source must have run this image, available and healthy, e.g. 30m."""


class Emergency(meta.Model):
    """Break-glass request: the policy's emergency approvers suffice, and a retro review becomes due."""

    justification: str = pydantic.Field(min_length=10, max_length=4096)
    """Why this cannot wait for the normal path (recorded in the audit trail)."""


class HttpCheck(meta.Model):
    """An HTTP probe the operator runs after the rollout."""

    url: str = pydantic.Field(min_length=1, max_length=2048)
    """URL to GET: a Service of the Promotion's namespace (http://<service>.<namespace>.svc[:port]/path), or a
    host the operator allows (LOCKGATE_VERIFICATION_HOSTS); others are refused at admission."""
    expect_status: int = pydantic.Field(default=200, ge=100, le=599)
    """Expected HTTP status code."""
    successes: int = pydantic.Field(default=3, ge=1, le=100)
    """Consecutive successes required."""
    interval: durations.Duration = "5s"
    """Time between probes."""


class Verification(meta.Model):
    """How the operator judges the rollout, and what it does when it fails."""

    timeout: durations.Duration = "10m"
    """Deadline for the rollout and its checks."""
    rollback_on_failure: bool = True
    """Restore the previous image when the rollout or a check fails."""
    http: list[HttpCheck] = pydantic.Field(default_factory=list, max_length=20)
    """HTTP checks that must pass after the rollout."""


class PromotionSpec(meta.Model):
    """The requested change. Any change to the spec starts a new approval cycle (new specHash)."""

    target: Target
    """The workload to change, in this namespace."""
    image: str = pydantic.Field(pattern=IMAGE_PATTERN, max_length=512)
    """New image: an OCI reference with a tag and/or digest, name[:tag][@sha256:<64 hex>]."""
    change: Change | None = None
    """What the change is (description, ticket, url, author)."""
    evidence: Evidence | None = None
    """CI's claims about the image, judged by GatePolicy rules."""
    source: Source | None = None
    """Optional: a workload that must already run this image healthily for minSoak."""
    emergency: Emergency | None = None
    """Optional break-glass: the policy's emergency approvers suffice; a retro review becomes due."""
    risk: RiskLevel | None = None
    """Declared risk (Low, Medium, High); GatePolicy riskThresholds may lower or raise required approvals."""
    verification: Verification | None = None
    """How the rollout is verified (defaults: 10m timeout, roll back on failure)."""


class Identity(meta.Model):
    """An authenticated Kubernetes user, as stamped at admission."""

    username: str
    """Username from the request's userInfo."""
    groups: list[str] = pydantic.Field(default_factory=list)
    """Groups from the request's userInfo."""


class ApprovalRecord(meta.Model):
    """How one Approval was judged for the current spec."""

    approval: str
    """Approval object name."""
    approver: str | None = None
    """Stamped approver username."""
    groups: list[str] = pydantic.Field(default_factory=list)
    """Stamped approver groups."""
    decision: str | None = None
    """Approve or Reject."""
    at: datetime.datetime | None = None
    """Stamped time of the approval."""
    counted: bool = False
    """Whether it counts toward the gate."""
    rule: str | None = None
    """The policy rule(s) it filled, as policy/rule."""
    reason: str = ""
    """CamelCase reason it counts or does not."""
    message: str = ""
    """Human-readable detail."""


class GateRecord(meta.Model):
    """One gate's verdict for the current spec."""

    name: str
    """Gate name (policy/rule)."""
    kind: str
    """Gate kind (Rule, ChangeWindow, WaitTimer, SourceSoak, Approvals, ...)."""
    passed: bool
    """Whether it passed."""
    reason: str
    """CamelCase reason."""
    message: str = ""
    """What holds the change and what to do."""


_STATUS_EXTRA: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}


class RolloutRecord(meta.Model):
    """The image change of the current cycle, as the operator planned and applied it."""

    kind: WorkloadKind = "Deployment"
    name: str = ""
    container: str = ""
    image: str = ""
    started_at: datetime.datetime | None = None
    """When the operator started deploying (the Deploying record was written)."""
    generation: int | None = None
    """The workload generation the image patch produced; the rollout is judged from it."""


class RollbackRecord(meta.Model):
    """Why and when the operator restored the previous image."""

    reason: str = ""
    """CamelCase reason of the failed verification (e.g. ProgressDeadlineExceeded, HttpCheckFailed)."""
    message: str = ""
    """What failed, in a sentence."""
    started_at: datetime.datetime | None = None
    generation: int | None = None
    """The workload generation the rollback patch produced."""


class PromotionStatus(meta.Model):
    """Written by the operator only."""

    model_config = pydantic.ConfigDict(json_schema_extra=_STATUS_EXTRA)

    phase: phases.Phase | None = None
    """Pending, AwaitingApproval, Approved, Deploying, Verifying, Succeeded, Failed, RolledBack,
    Rejected or Superseded."""
    spec_hash: str | None = None
    """sha256 of the canonical spec; Approvals bind to exactly this value."""
    observed_generation: int | None = None
    """metadata.generation the status describes."""
    requested_by: Identity | None = None
    """Verified requester identity, copied from the admission stamp; never from the user's body."""
    conditions: list[meta.Condition] = pydantic.Field(
        default_factory=list, json_schema_extra=meta.CONDITIONS_LIST
    )
    """Ready, PolicyPassed, Approved, Deployed, Verified, AuditRecorded."""
    approvals: list[ApprovalRecord] = pydantic.Field(default_factory=list)
    """How each Approval for this Promotion was judged."""
    gates: list[GateRecord] = pydantic.Field(default_factory=list)
    """Each gate's verdict."""
    required_approvals: int | None = None
    """Approvals required by the matching policies."""
    counted_approvals: int | None = None
    """Approvals that count."""
    approvals_summary: str | None = None
    """counted/required, e.g. 1/2 (a printer column)."""
    message: str | None = None
    """What the Promotion waits for, in a sentence."""
    emergency: bool | None = None
    """Whether the emergency path applies."""
    ready_for_approval_at: datetime.datetime | None = None
    """When the current cycle became ready for approvers."""
    approved_at: datetime.datetime | None = None
    """When the gate opened for the current cycle."""
    deployed_at: datetime.datetime | None = None
    """When the image change was applied."""
    completed_at: datetime.datetime | None = None
    """When the Promotion reached a terminal phase."""
    next_check_at: datetime.datetime | None = None
    """When the operator looks again (window opens, timer ends, approval expires)."""
    gate_latency_seconds: float | None = None
    """readyForApprovalAt to approvedAt, in seconds."""
    previous_image: str | None = None
    rollout: RolloutRecord | None = None
    """The current cycle's image change (set when deploying starts)."""
    rollback: RollbackRecord | None = None
    """Set when a failed verification started a rollback."""
    audit_recorded: bool | None = None
    """False while the audit trail cannot record a decision (nothing proceeds until it can)."""
    """Image before the change (the rollback target)."""
    audit_records: list[str] = pydantic.Field(default_factory=list)
    """Identifiers of the audit records written for this Promotion."""
    retro_review_due_at: datetime.datetime | None = None
    """Emergency changes: when the retro review is due."""
    retro_reviewed_by: str | None = None
    """Emergency changes: who closed the retro review."""
    retro_reviewed_at: datetime.datetime | None = None
    """Emergency changes: when the retro review was closed."""


class Promotion(meta.Resource):
    """One requested change of one workload's image, in the workload's namespace."""

    kind: str = "Promotion"
    spec: PromotionSpec
    status: PromotionStatus = pydantic.Field(default_factory=PromotionStatus)
