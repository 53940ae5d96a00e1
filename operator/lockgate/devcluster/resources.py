"""The registry of served resource types: built-in kinds and CRD-defined kinds, as discovery shows them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclasses.dataclass
class ResourceType:
    """One served group/version/plural with everything the pipeline needs to know about it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    printer_columns: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    schema: dict[str, Any] | None = None  # openAPIV3Schema of a CRD version; None for built-ins
    builtin: bool = True
    create_only: bool = False  # reviews: answered, never stored
    skip_validation: bool = False

    def __post_init__(self) -> None:
        if not self.singular:
            self.singular = self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


def _b(group: str, version: str, plural: str, kind: str, namespaced: bool, **kwargs: Any) -> ResourceType:
    return ResourceType(
        group=group, version=version, plural=plural, kind=kind, namespaced=namespaced, **kwargs
    )


def builtin_types() -> list[ResourceType]:
    """The built-in kinds the operator, Kopf and kubectl touch."""
    review_verbs = ("create",)
    return [
        _b(
            "",
            "v1",
            "namespaces",
            "Namespace",
            False,
            short_names=("ns",),
            subresources=("status",),
            verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        ),
        _b("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
        _b(
            "",
            "v1",
            "replicationcontrollers",
            "ReplicationController",
            True,
            short_names=("rc",),
            categories=("all",),
            subresources=("status", "scale"),
        ),
        _b("", "v1", "secrets", "Secret", True),
        _b("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
        _b("", "v1", "events", "Event", True, short_names=("ev",)),
        _b(
            "",
            "v1",
            "pods",
            "Pod",
            True,
            short_names=("po",),
            categories=("all",),
            subresources=("status", "ephemeralcontainers"),
        ),
        _b(
            "",
            "v1",
            "services",
            "Service",
            True,
            short_names=("svc",),
            categories=("all",),
            subresources=("status",),
        ),
        _b(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            True,
            short_names=("deploy",),
            categories=("all",),
            subresources=("status", "scale"),
        ),
        _b(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            True,
            short_names=("sts",),
            categories=("all",),
            subresources=("status", "scale"),
        ),
        _b(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            True,
            short_names=("ds",),
            categories=("all",),
            subresources=("status",),
        ),
        _b(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            True,
            short_names=("rs",),
            categories=("all",),
            subresources=("status", "scale"),
        ),
        _b("batch", "v1", "jobs", "Job", True, categories=("all",), subresources=("status",)),
        _b(
            "batch",
            "v1",
            "cronjobs",
            "CronJob",
            True,
            short_names=("cj",),
            categories=("all",),
            subresources=("status",),
        ),
        _b("events.k8s.io", "v1", "events", "Event", True, short_names=("ev",)),
        _b("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
        _b("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
        _b("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
        _b("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        _b("coordination.k8s.io", "v1", "leases", "Lease", True),
        _b(
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            False,
            categories=("api-extensions",),
        ),
        _b(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            False,
            categories=("api-extensions",),
        ),
        _b(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            short_names=("crd", "crds"),
            categories=("api-extensions",),
            subresources=("status",),
        ),
        _b(
            "authorization.k8s.io",
            "v1",
            "subjectaccessreviews",
            "SubjectAccessReview",
            False,
            verbs=review_verbs,
            create_only=True,
        ),
        _b(
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            False,
            verbs=review_verbs,
            create_only=True,
        ),
        _b(
            "authorization.k8s.io",
            "v1",
            "localsubjectaccessreviews",
            "LocalSubjectAccessReview",
            True,
            verbs=review_verbs,
            create_only=True,
        ),
        _b(
            "authorization.k8s.io",
            "v1",
            "selfsubjectrulesreviews",
            "SelfSubjectRulesReview",
            False,
            verbs=review_verbs,
            create_only=True,
            skip_validation=True,
        ),
    ]


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of a CustomResourceDefinition object."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    result: list[ResourceType] = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        subresources = tuple(sorted(version.get("subresources", {}) or {}))
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }
        result.append(
            ResourceType(
                group=spec.get("group", ""),
                version=version["name"],
                plural=names.get("plural", ""),
                kind=names.get("kind", ""),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular", "") or names.get("kind", "").lower(),
                short_names=tuple(names.get("shortNames", []) or []),
                categories=tuple(names.get("categories", []) or []),
                subresources=subresources,
                printer_columns=list(version.get("additionalPrinterColumns", []) or []),
                schema=schema,
                builtin=False,
            )
        )
    return result


class Registry:
    """Lookup of resource types by URL (group, version, plural) and by (apiVersion, kind)."""

    def __init__(self, types: Iterable[ResourceType] = ()) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._crd_owned: dict[str, list[tuple[str, str, str]]] = {}
        for rtype in types:
            self.add(rtype)

    def add(self, rtype: ResourceType) -> None:
        self._types[rtype.key] = rtype

    def add_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        name = crd.get("metadata", {}).get("name", "")
        self.remove_crd(name)
        types = types_from_crd(crd)
        for rtype in types:
            self.add(rtype)
        self._crd_owned[name] = [rtype.key for rtype in types]
        return types

    def remove_crd(self, name: str) -> None:
        for key in self._crd_owned.pop(name, []):
            self._types.pop(key, None)

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rtype in self._types.values():
            if rtype.api_version == api_version and rtype.kind == kind:
                return rtype
        return None

    def by_plural(self, group: str, plural: str) -> list[ResourceType]:
        return [rtype for rtype in self._types.values() if rtype.group == group and rtype.plural == plural]

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))

    def groups(self) -> dict[str, list[str]]:
        """Group name -> served versions (in order of registration)."""
        result: dict[str, list[str]] = {}
        for rtype in self._types.values():
            versions = result.setdefault(rtype.group, [])
            if rtype.version not in versions:
                versions.append(rtype.version)
        return result
