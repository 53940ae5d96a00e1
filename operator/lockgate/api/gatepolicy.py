"""The GatePolicy kind (cluster-scoped): who must approve changes in selected namespaces, what must hold."""

from __future__ import annotations

import datetime
from typing import Any, Literal

import pydantic

from lockgate.api import durations, meta

Day = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
DAYS: tuple[Day, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

#: ``HH:MM`` on a 24-hour clock; ``24:00`` is allowed as an end time.
CLOCK_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
RULE_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"

_MAP_LIST_BY_NAME: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}

#: Why ``forbidSelfApproval: false`` is refused: an approval by the change's requester or author never counts.
SEPARATION_OF_DUTIES = (
    "approvals.forbidSelfApproval cannot be false: the requester's and the declared change author's own "
    "approvals never count (separation of duties); remove the field or set it to true, and have someone "
    "else approve"
)


class LabelSelectorRequirement(meta.Model):
    """A label selector requirement (metav1.LabelSelectorRequirement)."""

    key: str
    """Label key."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """In, NotIn, Exists or DoesNotExist."""
    values: list[str] = pydantic.Field(default_factory=list)
    """Values for In and NotIn."""


class LabelSelector(meta.Model):
    """Selects namespaces by their labels (metav1.LabelSelector); empty selects every namespace."""

    match_labels: dict[str, str] = pydantic.Field(default_factory=dict)
    """Labels the namespace must have."""
    match_expressions: list[LabelSelectorRequirement] = pydantic.Field(default_factory=list)
    """Requirements the namespace's labels must meet."""


class ApprovalRule(meta.Model):
    """``count`` distinct approvers from ``groups`` (or ``users``); one approver fills at most one rule."""

    name: str = pydantic.Field(pattern=RULE_NAME_PATTERN)
    """Rule name, shown in status and the audit record."""
    groups: list[str] = pydantic.Field(default_factory=list)
    """Approvers must be in one of these groups (stamped at admission)."""
    users: list[str] = pydantic.Field(default_factory=list)
    """Or be one of these usernames."""
    count: int = pydantic.Field(default=1, ge=0, le=20)
    """Distinct approvers required for this rule."""


class RbacCheck(meta.Model):
    """The SubjectAccessReview an approver must pass for their Approval to count."""

    verb: str = "approve"
    """Verb checked."""
    group: str = meta.GROUP
    """API group checked."""
    resource: str = "promotions"
    """Resource checked (in the Promotion's namespace)."""


class Approvals(meta.Model):
    """Who must approve."""

    rules: list[ApprovalRule] = pydantic.Field(
        default_factory=list, max_length=20, json_schema_extra=_MAP_LIST_BY_NAME
    )
    """Approval rules; all must be satisfied, by distinct approvers."""
    forbid_self_approval: bool = True
    """The requester and the declared change.author never count (separation of duties). Always true:
    false is refused at admission (the policy-valid webhook), and ignored in a policy stored before that.
    Not a CRD rule: before Kubernetes 1.30 (no ratcheting) it would refuse every status write of such a policy."""
    max_age: durations.Duration | None = "24h"
    """Approvals older than this expire (e.g. 24h)."""
    rbac: RbacCheck = pydantic.Field(default_factory=RbacCheck)
    """SubjectAccessReview an approver must pass."""


class Rule(meta.Model):
    """A CEL expression over ``promotion``, ``source`` and ``now`` that must be true."""

    name: str = pydantic.Field(pattern=RULE_NAME_PATTERN)
    """Rule name, shown when it denies."""
    expression: str = pydantic.Field(min_length=1, max_length=4096)
    """CEL expression; true passes. ``promotion`` is {metadata, spec, requestedBy}; ``source`` is
    the source workload's state or null; ``now`` is a timestamp. An error denies."""
    message: str | None = pydantic.Field(default=None, max_length=1024)
    """What to tell the requester when the rule denies."""


class AllowWindow(meta.Model):
    """Days and hours in which changes may deploy (end before start spans midnight)."""

    days: list[Day] = pydantic.Field(default_factory=lambda: list(DAYS), min_length=1, max_length=7)
    """Days of the week (Mon..Sun) the window opens on."""
    start: str = pydantic.Field(default="00:00", pattern=CLOCK_PATTERN)
    """Opening time, HH:MM local."""
    end: str = pydantic.Field(default="24:00", pattern=CLOCK_PATTERN)
    """Closing time, HH:MM local (exclusive)."""


class Freeze(meta.Model):
    """A period in which nothing deploys (except emergency changes)."""

    start: datetime.datetime
    """Start (RFC 3339)."""
    end: datetime.datetime
    """End (RFC 3339, exclusive)."""
    reason: str = pydantic.Field(min_length=1, max_length=1024)
    """Why, shown to requesters."""


class ChangeWindows(meta.Model):
    """When changes may deploy; approvals may still be collected outside the windows."""

    timezone: str = "UTC"
    """IANA time zone the windows are in, e.g. America/New_York."""
    allow: list[AllowWindow] = pydantic.Field(default_factory=list, max_length=50)
    """Windows in which deploys may start; empty means any time."""
    freeze: list[Freeze] = pydantic.Field(default_factory=list, max_length=100)
    """Freezes, which override allow windows."""


class EmergencyPolicy(meta.Model):
    """The break-glass path for Promotions with spec.emergency."""

    groups: list[str] = pydantic.Field(min_length=1)
    """Groups whose members may approve an emergency change."""
    required: int = pydantic.Field(default=1, ge=1, le=20)
    """Distinct emergency approvers required."""
    retro_review_within: durations.Duration = "24h"
    """A RetroReview Approval is due within this time of the emergency approval."""


class RiskThreshold(meta.Model):
    """Changes matching ``when`` need the approval counts given here instead of the rules' own."""

    name: str = pydantic.Field(pattern=RULE_NAME_PATTERN)
    """Threshold name."""
    when: str = pydantic.Field(min_length=1, max_length=4096)
    """CEL expression (same variables as rules); the first threshold that is true applies."""
    counts: dict[str, int] = pydantic.Field(default_factory=dict)
    """Approval rule name -> count for changes in this risk class (rules not listed keep theirs)."""
    allow_without_human_approval: bool = False
    """Must be true for the counts to add up to zero; otherwise at least one approval stays required."""


class Audit(meta.Model):
    """Audit record settings."""

    retention: durations.Duration = "7y"
    """How long audit records for this namespace are kept (e.g. 7y)."""


class GatePolicySpec(meta.Model):
    """What a change in the selected namespaces needs. All matching policies must pass."""

    namespace_selector: LabelSelector = pydantic.Field(default_factory=LabelSelector)
    """Namespaces this policy gates, by label (e.g. lockgate.dev/environment: production)."""
    approvals: Approvals = pydantic.Field(default_factory=Approvals)
    """Who must approve."""
    rules: list[Rule] = pydantic.Field(
        default_factory=list, max_length=64, json_schema_extra=_MAP_LIST_BY_NAME
    )
    """CEL rules that must all be true (evidence gates, image policy, ...)."""
    change_windows: ChangeWindows | None = None
    """When changes may deploy."""
    wait_timer: durations.Duration = "0"
    """Minimum time between the cycle becoming ready for approval and the deploy."""
    emergency: EmergencyPolicy | None = None
    """Break-glass path; without it, emergency Promotions are held."""
    risk_thresholds: list[RiskThreshold] = pydantic.Field(
        default_factory=list, max_length=20, json_schema_extra=_MAP_LIST_BY_NAME
    )
    """Approval counts by risk class; the first matching threshold applies."""
    audit: Audit = pydantic.Field(default_factory=Audit)
    """Audit settings."""


class GatePolicyStatus(meta.Model):
    """Written by the operator."""

    model_config = pydantic.ConfigDict(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})

    required_approvals: int | None = None
    """Approvals a normal change needs under this policy (a printer column)."""
    problems: list[str] = pydantic.Field(default_factory=list)
    """Why the policy is invalid (CEL that does not compile, bad time zone, ...)."""
    observed_generation: int | None = None
    """metadata.generation the status describes."""
    unguarded_namespaces: list[str] = pydantic.Field(default_factory=list)
    """Namespaces this policy gates where the API server would not call the image guard (its webhook
    configuration leaves them out): an image change there would pass unjudged. The ImageGuardCalled
    condition says why and what to do."""
    conditions: list[meta.Condition] = pydantic.Field(
        default_factory=list, json_schema_extra=meta.CONDITIONS_LIST
    )
    """ImageGuardCalled (True when the image guard is called in every namespace this policy gates)."""


class GatePolicy(meta.Resource):
    """Who must approve changes in the selected namespaces, and what must hold (cluster-scoped)."""

    kind: str = "GatePolicy"
    spec: GatePolicySpec
    status: GatePolicyStatus = pydantic.Field(default_factory=GatePolicyStatus)


def required_approvals(spec: GatePolicySpec) -> int:
    """Approvals a normal (non-emergency, no risk threshold) change needs: the sum of rule counts."""
    return sum(rule.count for rule in spec.approvals.rules)
