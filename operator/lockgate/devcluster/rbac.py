"""RBAC authorization as Kubernetes specifies it, and the access reviews answered from it.

Pure functions over the stored Roles, ClusterRoles and their bindings, following
``plugin/pkg/auth/authorizer/rbac`` (rule matching, binding subjects, "allowed by" reasons) and the
apiserver's Forbidden message. The bootstrap policy every cluster has (``system:masters``, discovery,
public info and self access reviews for ``system:authenticated``) is built in.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from lockgate.devcluster import identity

RBAC_GROUP = "rbac.authorization.k8s.io"
AUTHORIZATION_GROUP = "authorization.k8s.io"
PRIVILEGED_GROUP = "system:masters"
# identity imports this module, so its constants are repeated here rather than read at import time.
ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"


@dataclasses.dataclass(frozen=True)
class Attributes:
    """One authorization request; ``path`` set means a non-resource request."""

    user: identity.UserInfo
    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource_request(self) -> bool:
        return not self.path


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The decision and its reason (``RBAC: allowed by ...`` or the evaluation errors on denial)."""

    allowed: bool
    reason: str = ""


@dataclasses.dataclass
class RbacObjects:
    """The stored RBAC objects, as JSON dicts."""

    roles: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    cluster_roles: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    role_bindings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    cluster_role_bindings: list[dict[str, Any]] = dataclasses.field(default_factory=list)


class ReviewInvalid(ValueError):
    """An access review body Kubernetes would reject with 422 Invalid (or 400 for namespace mismatch)."""

    def __init__(self, message: str, *, code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": rules,
    }


def _cluster_role_binding(name: str, groups: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": group} for group in groups],
    }


# The subset of Kubernetes' bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy) that
# every user sees: discovery, public info, and asking what one may do.
BOOTSTRAP_CLUSTER_ROLES: tuple[dict[str, Any], ...] = (
    _cluster_role(
        "cluster-admin",
        [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ],
    ),
    _cluster_role(
        "system:discovery",
        [
            {
                "nonResourceURLs": [
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/openapi",
                    "/openapi/*",
                    "/version",
                    "/version/",
                ],
                "verbs": ["get"],
            },
        ],
    ),
    _cluster_role(
        "system:public-info-viewer",
        [
            {"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]},
        ],
    ),
    _cluster_role(
        "system:basic-user",
        [
            {
                "apiGroups": [AUTHORIZATION_GROUP],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"],
            },
            {
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["selfsubjectreviews"],
                "verbs": ["create"],
            },
        ],
    ),
)
BOOTSTRAP_CLUSTER_ROLE_BINDINGS: tuple[dict[str, Any], ...] = (
    _cluster_role_binding("cluster-admin", [PRIVILEGED_GROUP]),
    _cluster_role_binding("system:discovery", [ALL_AUTHENTICATED]),
    _cluster_role_binding(
        "system:public-info-viewer", [ALL_AUTHENTICATED, ALL_UNAUTHENTICATED]
    ),
    _cluster_role_binding("system:basic-user", [ALL_AUTHENTICATED]),
)


# --- rule matching (rbac/v1 helpers) -------------------------------------------------------------------


def verb_matches(rule: dict[str, Any], verb: str) -> bool:
    verbs = rule.get("verbs") or []
    return "*" in verbs or verb in verbs


def api_group_matches(rule: dict[str, Any], group: str) -> bool:
    groups = rule.get("apiGroups") or []
    return "*" in groups or group in groups


def resource_matches(rule: dict[str, Any], combined: str, subresource: str) -> bool:
    for rule_resource in rule.get("resources") or []:
        if rule_resource in ("*", combined):
            return True
        if (
            subresource
            and rule_resource.startswith("*/")
            and len(rule_resource) == len(subresource) + 2
            and rule_resource.endswith(subresource)
        ):
            return True
    return False


def resource_name_matches(rule: dict[str, Any], name: str) -> bool:
    names = rule.get("resourceNames") or []
    return not names or name in names


def non_resource_url_matches(rule: dict[str, Any], path: str) -> bool:
    for url in rule.get("nonResourceURLs") or []:
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url[:-1]):
            return True
    return False


def rule_allows(attrs: Attributes, rule: dict[str, Any]) -> bool:
    """Whether one PolicyRule covers the request, exactly as ``rbac.RuleAllows``."""
    if attrs.is_resource_request:
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        return (
            verb_matches(rule, attrs.verb)
            and api_group_matches(rule, attrs.api_group)
            and resource_matches(rule, combined, attrs.subresource)
            and resource_name_matches(rule, attrs.name)
        )
    return verb_matches(rule, attrs.verb) and non_resource_url_matches(rule, attrs.path)


# --- subjects and bindings -------------------------------------------------------------------------------


def subject_applies(subject: dict[str, Any], user: identity.UserInfo, binding_namespace: str) -> bool:
    kind = subject.get("kind")
    name = subject.get("name", "")
    if kind == "User":
        return bool(user.username == name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        if not namespace:
            return False
        return user.username == identity.service_account_username(namespace, name)
    return False


def _describe_subject(subject: dict[str, Any], binding_namespace: str) -> str:
    kind = subject.get("kind", "")
    name = subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _namespace(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace", "") or "")


def _all_cluster_role_bindings(objects: RbacObjects) -> list[dict[str, Any]]:
    stored = list(objects.cluster_role_bindings)
    names = {_name(binding) for binding in stored}
    return stored + [b for b in BOOTSTRAP_CLUSTER_ROLE_BINDINGS if _name(b) not in names]


def _find_rules(
    role_ref: dict[str, Any], binding_namespace: str, objects: RbacObjects
) -> tuple[list[dict[str, Any]] | None, str]:
    kind = role_ref.get("kind")
    name = role_ref.get("name", "")
    if kind == "Role":
        for role in objects.roles:
            if _name(role) == name and _namespace(role) == binding_namespace:
                return list(role.get("rules") or []), ""
        return None, f'role.{RBAC_GROUP} "{name}" not found'
    if kind == "ClusterRole":
        for role in (*objects.cluster_roles, *BOOTSTRAP_CLUSTER_ROLES):
            if _name(role) == name:
                return list(role.get("rules") or []), ""
        return None, f'clusterrole.{RBAC_GROUP} "{name}" not found'
    return None, f'unsupported role reference kind: "{kind}"'


@dataclasses.dataclass(frozen=True)
class _Grant:
    source: str
    rules: list[dict[str, Any]] | None
    error: str


def _grants(user: identity.UserInfo, namespace: str, objects: RbacObjects) -> Iterator[_Grant]:
    """Rules reaching the user, cluster-wide bindings first, then role bindings of the namespace."""
    for binding in _all_cluster_role_bindings(objects):
        for subject in binding.get("subjects") or []:
            if subject_applies(subject, user, ""):
                ref = binding.get("roleRef") or {}
                rules, error = _find_rules(ref, "", objects)
                source = (
                    f'ClusterRoleBinding "{_name(binding)}" of {ref.get("kind")} "{ref.get("name")}" '
                    f"to {_describe_subject(subject, '')}"
                )
                yield _Grant(source, rules, error)
                break
    if not namespace:
        return
    for binding in objects.role_bindings:
        binding_ns = _namespace(binding)
        if binding_ns != namespace:
            continue
        for subject in binding.get("subjects") or []:
            if subject_applies(subject, user, binding_ns):
                ref = binding.get("roleRef") or {}
                rules, error = _find_rules(ref, binding_ns, objects)
                source = (
                    f'RoleBinding "{_name(binding)}/{binding_ns}" of {ref.get("kind")} '
                    f'"{ref.get("name")}" to {_describe_subject(subject, binding_ns)}'
                )
                yield _Grant(source, rules, error)
                break


def authorize(attrs: Attributes, objects: RbacObjects) -> Verdict:
    """Allow or deny one request from the stored RBAC objects (pure)."""
    if PRIVILEGED_GROUP in attrs.user.groups:
        return Verdict(True, "")
    errors: list[str] = []
    namespace = attrs.namespace if attrs.is_resource_request else ""
    for grant in _grants(attrs.user, namespace, objects):
        if grant.rules is None:
            errors.append(grant.error)
            continue
        for rule in grant.rules:
            if rule_allows(attrs, rule):
                return Verdict(True, f"RBAC: allowed by {grant.source}")
    if not errors:
        return Verdict(False, "")
    aggregate = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return Verdict(False, f"RBAC: {aggregate}")


def qualified_resource(group: str, resource: str) -> str:
    """``schema.GroupResource.String()``: ``promotions.lockgate.dev``, or ``pods`` for the core group."""
    return f"{resource}.{group}" if group else resource


def forbidden_message(attrs: Attributes, reason: str = "") -> str:
    """The message of the apiserver's 403 Forbidden for this request (``responsewriters.Forbidden``)."""
    user = attrs.user.username
    if not attrs.is_resource_request:
        inner = f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        inner = f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}"'
        inner += f' in the namespace "{attrs.namespace}"' if attrs.namespace else " at the cluster scope"
    if reason:
        inner = f"{inner}: {reason}"
    if not attrs.is_resource_request or not attrs.resource:
        return f"forbidden: {inner}"
    qualified = qualified_resource(attrs.api_group, attrs.resource)
    if attrs.name:
        return f'{qualified} "{attrs.name}" is forbidden: {inner}'
    return f"{qualified} is forbidden: {inner}"


# --- access reviews ----------------------------------------------------------------------------------------


def _extra(raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        return {}
    return {str(key): tuple(str(v) for v in (values or [])) for key, values in raw.items()}


def _attributes_from_spec(spec: dict[str, Any], user: identity.UserInfo) -> Attributes:
    resource_attrs = spec.get("resourceAttributes")
    non_resource_attrs = spec.get("nonResourceAttributes")
    if resource_attrs and non_resource_attrs:
        raise ReviewInvalid(
            'spec.nonResourceAttributes: Invalid value: "": cannot be specified in '
            "combination with resourceAttributes"
        )
    if non_resource_attrs:
        return Attributes(
            user=user,
            verb=str(non_resource_attrs.get("verb", "")),
            path=str(non_resource_attrs.get("path", "")) or "/",
        )
    if resource_attrs:
        return Attributes(
            user=user,
            verb=str(resource_attrs.get("verb", "")),
            api_group=str(resource_attrs.get("group", "")),
            resource=str(resource_attrs.get("resource", "")),
            subresource=str(resource_attrs.get("subresource", "")),
            namespace=str(resource_attrs.get("namespace", "")),
            name=str(resource_attrs.get("name", "")),
        )
    raise ReviewInvalid(
        'spec.resourceAttributes: Invalid value: "null": exactly one of '
        "nonResourceAttributes or resourceAttributes must be specified"
    )


def review(body: dict[str, Any], requester: identity.UserInfo, objects: RbacObjects) -> dict[str, Any]:
    """Answer a SubjectAccessReview, LocalSubjectAccessReview or SelfSubjectAccessReview.

    Returns the body with ``status: {allowed, reason?, denied?}``; raises ``ReviewInvalid`` for a body
    Kubernetes would reject.
    """
    result = copy.deepcopy(body)
    kind = result.get("kind", "SubjectAccessReview")
    spec = result.setdefault("spec", {})
    if kind == "SelfSubjectAccessReview":
        user = requester
    else:
        username = str(spec.get("user", "") or "")
        groups = tuple(str(g) for g in (spec.get("groups") or []))
        if not username and not groups:
            raise ReviewInvalid(
                'spec.user: Invalid value: "": at least one of user or group must be specified'
            )
        user = identity.UserInfo(
            username=username,
            groups=groups,
            uid=str(spec.get("uid", "") or ""),
            extra=_extra(spec.get("extra")),
        )
    if kind == "LocalSubjectAccessReview":
        namespace = str((result.get("metadata") or {}).get("namespace", "") or "")
        resource_attrs = spec.get("resourceAttributes")
        if spec.get("nonResourceAttributes"):
            raise ReviewInvalid(
                'spec.nonResourceAttributes: Invalid value: "": disallowed on this kind of request'
            )
        if isinstance(resource_attrs, dict):
            given = resource_attrs.get("namespace") or ""
            if given and namespace and given != namespace:
                raise ReviewInvalid(
                    f"spec.resourceAttributes.namespace must match namespace: {namespace}", code=400
                )
            if namespace:
                resource_attrs["namespace"] = namespace
    attrs = _attributes_from_spec(spec, user)
    verdict = authorize(attrs, objects)
    status: dict[str, Any] = {"allowed": verdict.allowed}
    if verdict.reason:
        status["reason"] = verdict.reason
    result["status"] = status
    result.setdefault("apiVersion", f"{AUTHORIZATION_GROUP}/v1")
    result.setdefault("kind", kind)
    return result


def _collect_rules(
    user: identity.UserInfo, namespace: str, objects: RbacObjects
) -> tuple[list[dict[str, Any]], list[str]]:
    if PRIVILEGED_GROUP in user.groups:
        return [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ], []
    rules: list[dict[str, Any]] = []
    errors: list[str] = []
    for grant in _grants(user, namespace, objects):
        if grant.rules is None:
            errors.append(grant.error)
        else:
            rules.extend(grant.rules)
    return rules, errors


def _dedupe(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


_RESOURCE_RULE_KEYS = ("verbs", "apiGroups", "resources", "resourceNames")


def rules_review(body: dict[str, Any], requester: identity.UserInfo, objects: RbacObjects) -> dict[str, Any]:
    """Answer a SelfSubjectRulesReview (``kubectl auth can-i --list``) for ``spec.namespace``."""
    result = copy.deepcopy(body)
    spec = result.setdefault("spec", {})
    namespace = str(spec.get("namespace", "") or "")
    rules, errors = _collect_rules(requester, namespace, objects)
    resource_rules = _dedupe(
        {key: list(rule[key]) for key in _RESOURCE_RULE_KEYS if rule.get(key)}
        for rule in rules
        if rule.get("resources")
    )
    non_resource_rules = _dedupe(
        {"verbs": list(rule.get("verbs") or []), "nonResourceURLs": list(rule["nonResourceURLs"])}
        for rule in rules
        if rule.get("nonResourceURLs")
    )
    status: dict[str, Any] = {
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": bool(errors),
    }
    if errors:
        status["evaluationError"] = ", ".join(errors)
    result["status"] = status
    result.setdefault("apiVersion", f"{AUTHORIZATION_GROUP}/v1")
    result.setdefault("kind", "SelfSubjectRulesReview")
    return result
