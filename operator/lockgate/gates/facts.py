"""Facts the operator gathers before asking the engine (SubjectAccessReview answers, verified stamps,
the requester, the source workload, the namespace's labels). Plain frozen data, no I/O."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class Identity:
    """An authenticated user whose stamp verified."""

    username: str
    groups: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SourceState:
    """The source workload (``spec.source``) as observed now."""

    image: str
    """The image the source's container spec names."""
    image_id: str | None = None
    """The resolved image (pod ``imageID``, ``...@sha256:...``) when known."""
    healthy: bool = False
    """Rolled out and all replicas available (no failed condition)."""
    available_since: datetime.datetime | None = None
    """Since when it has run this image available and healthy."""


@dataclasses.dataclass(frozen=True)
class Facts:
    """Everything the engine needs beyond the objects themselves."""

    can_approve: Mapping[str, bool] = dataclasses.field(default_factory=dict)
    """SubjectAccessReview answer per approver username (the policies' ``approvals.rbac`` check,
    in the Promotion's namespace). A username missing here never counts."""
    verified_approvals: frozenset[str] = frozenset()
    """Names of the Approvals whose stamp signature verified (``stamps.verify``); others never count."""
    requester: Identity | None = None
    """The verified requester stamp; None means the Promotion cannot be approved (RequesterUnknown)."""
    source: SourceState | None = None
    """The source workload's state, when ``spec.source`` is set and the workload exists."""
    namespace_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Labels of the Promotion's namespace (used for policy selection by the caller)."""
