"""Shared model plumbing: the camelCase base model, the ObjectMeta subset and metav1.Condition."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Literal, Self

import pydantic
from pydantic import alias_generators

GROUP = "lockgate.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: ``sha256:<64 hex>``: the Promotion spec hash Approvals bind to.
SPEC_HASH_PATTERN = r"^sha256:[a-f0-9]{64}$"


class Model(pydantic.BaseModel):
    """Base of every API model: camelCase on the wire, snake_case in Python, unknown keys ignored.

    Unknown keys are ignored (not rejected) so the operator keeps working against objects written
    by a newer CRD; the API server's structural schema is what refuses bad input.
    """

    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
        validate_default=False,
    )

    def to_k8s(self) -> dict[str, Any]:
        """The camelCase dict the API server stores (``None`` fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ObjectMeta(Model):
    """The subset of metav1.ObjectMeta Lockgate reads."""

    name: str = ""
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: datetime.datetime | None = None
    labels: dict[str, str] = pydantic.Field(default_factory=dict)
    annotations: dict[str, str] = pydantic.Field(default_factory=dict)


ConditionStatus = Literal["True", "False", "Unknown"]

#: Schema extras for a ``conditions`` list: one entry per type (a list-map, as in metav1).
CONDITIONS_LIST: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


class Condition(Model):
    """One aspect of an object's state, in the metav1.Condition shape kstatus and ``kubectl wait`` read."""

    type: str
    """CamelCase condition type, e.g. Ready, PolicyPassed, Approved."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str
    """CamelCase, machine-readable reason for the last transition."""
    message: str = ""
    """Human-readable detail: what holds the object and what to do about it."""
    last_transition_time: datetime.datetime
    """When status last changed (not when the message last changed)."""
    observed_generation: int | None = None
    """The metadata.generation this condition was computed from."""


class Resource(Model):
    """Base of the three kinds: apiVersion, kind, metadata; ``from_k8s`` builds one from a raw object."""

    api_version: str = API_VERSION
    kind: str = ""
    metadata: ObjectMeta = pydantic.Field(default_factory=ObjectMeta)

    @classmethod
    def from_k8s(cls, obj: Mapping[str, Any]) -> Self:
        """Build the model from a raw Kubernetes object (a dict, or Kopf's body); extra keys are ignored."""
        return cls.model_validate(dict(obj))
