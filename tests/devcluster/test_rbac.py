"""RBAC authorization answers as Kubernetes does: rules, bindings, subjects, messages and access reviews."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockgate.devcluster import identity, rbac

GROUP = "lockgate.dev"


def user(name: str, *groups: str) -> identity.UserInfo:
    return identity.UserInfo(username=name, groups=(*groups, identity.ALL_AUTHENTICATED))


def role(name: str, namespace: str, *rules: dict[str, object]) -> dict[str, object]:
    return {"kind": "Role", "metadata": {"name": name, "namespace": namespace}, "rules": list(rules)}


def cluster_role(name: str, *rules: dict[str, object]) -> dict[str, object]:
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


def binding(
    kind: str, name: str, ref_kind: str, ref: str, subjects: list[dict[str, str]], namespace: str = ""
) -> dict[str, object]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "kind": kind,
        "metadata": metadata,
        "subjects": subjects,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref},
    }


APPROVER = cluster_role(
    "promotion-approver",
    {"apiGroups": [GROUP], "resources": ["promotions"], "verbs": ["get", "list", "approve"]},
)
WORLD = rbac.RbacObjects(
    roles=[
        role(
            "status-writer",
            "production",
            {"apiGroups": [GROUP], "resources": ["promotions/status"], "verbs": ["update"]},
        )
    ],
    cluster_roles=[
        APPROVER,
        cluster_role("scaler", {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]}),
        cluster_role(
            "one-cm",
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get"]},
        ),
        cluster_role("metrics", {"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}),
    ],
    role_bindings=[
        binding(
            "RoleBinding",
            "leads-approve",
            "ClusterRole",
            "promotion-approver",
            [{"kind": "Group", "name": "engineering-leads"}],
            namespace="production",
        ),
        binding(
            "RoleBinding",
            "operator-status",
            "Role",
            "status-writer",
            [{"kind": "ServiceAccount", "name": "lockgate"}],
            namespace="production",
        ),
        binding(
            "RoleBinding",
            "dangling",
            "Role",
            "missing",
            [{"kind": "User", "name": "erin"}],
            namespace="production",
        ),
    ],
    cluster_role_bindings=[
        binding(
            "ClusterRoleBinding",
            "carol-approves",
            "ClusterRole",
            "promotion-approver",
            [{"kind": "User", "name": "carol"}],
        ),
        binding("ClusterRoleBinding", "scalers", "ClusterRole", "scaler", [{"kind": "User", "name": "sam"}]),
        binding("ClusterRoleBinding", "cm", "ClusterRole", "one-cm", [{"kind": "User", "name": "sam"}]),
        binding(
            "ClusterRoleBinding",
            "metrics",
            "ClusterRole",
            "metrics",
            [{"kind": "ServiceAccount", "name": "prom", "namespace": "monitoring"}],
        ),
    ],
)


def can(
    who: identity.UserInfo,
    verb: str,
    resource: str = "",
    *,
    group: str = GROUP,
    namespace: str = "",
    name: str = "",
    subresource: str = "",
    path: str = "",
) -> rbac.Verdict:
    attrs = rbac.Attributes(
        user=who,
        verb=verb,
        api_group=group,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
        path=path,
    )
    return rbac.authorize(attrs, WORLD)


def test_role_binding_grants_in_its_namespace_only_with_kubernetes_reason() -> None:
    bob = user("bob", "engineering-leads")
    verdict = can(bob, "approve", "promotions", namespace="production")
    assert verdict == rbac.Verdict(
        True,
        'RBAC: allowed by RoleBinding "leads-approve/production" of ClusterRole '
        '"promotion-approver" to Group "engineering-leads"',
    )
    assert not can(bob, "approve", "promotions", namespace="staging").allowed
    assert not can(bob, "approve", "promotions").allowed  # cluster scope
    assert not can(bob, "delete", "promotions", namespace="production").allowed


def test_cluster_role_binding_grants_everywhere() -> None:
    carol = user("carol")
    for namespace in ("production", "staging", ""):
        verdict = can(carol, "approve", "promotions", namespace=namespace)
        assert verdict.allowed
        assert verdict.reason == (
            'RBAC: allowed by ClusterRoleBinding "carol-approves" of ClusterRole '
            '"promotion-approver" to User "carol"'
        )


def test_subresources_need_their_own_rule() -> None:
    sa = identity.UserInfo(
        "system:serviceaccount:production:lockgate",
        (*identity.service_account_groups("production"), identity.ALL_AUTHENTICATED),
    )
    verdict = can(sa, "update", "promotions", subresource="status", namespace="production")
    assert verdict.reason == (
        'RBAC: allowed by RoleBinding "operator-status/production" of Role "status-writer" '
        'to ServiceAccount "lockgate/production"'
    )
    assert not can(sa, "update", "promotions", namespace="production").allowed
    # A service account of another namespace with the same name is someone else.
    other = identity.UserInfo("system:serviceaccount:staging:lockgate", (identity.ALL_AUTHENTICATED,))
    assert not can(other, "update", "promotions", subresource="status", namespace="production").allowed


def test_star_slash_subresource_and_resource_names() -> None:
    sam = user("sam")
    assert can(sam, "update", "deployments", group="apps", subresource="scale", namespace="x").allowed
    assert not can(sam, "update", "deployments", group="apps", namespace="x").allowed
    assert can(sam, "get", "configmaps", group="", name="settings", namespace="x").allowed
    assert not can(sam, "get", "configmaps", group="", name="other", namespace="x").allowed
    assert not can(sam, "list", "configmaps", group="", namespace="x").allowed  # list has no name


def test_non_resource_urls_with_prefix_star() -> None:
    prom = identity.UserInfo("system:serviceaccount:monitoring:prom", (identity.ALL_AUTHENTICATED,))
    assert can(prom, "get", path="/metrics").allowed
    assert can(prom, "get", path="/logs/kube.log").allowed
    assert not can(prom, "get", path="/metricsx").allowed
    assert not can(prom, "post", path="/metrics").allowed


def test_discovery_and_self_reviews_are_open_to_every_authenticated_user() -> None:
    nobody = user("mallory")
    for path in ("/api", "/apis", "/apis/lockgate.dev/v1alpha1", "/version", "/openapi/v3", "/healthz"):
        assert can(nobody, "get", path=path).allowed, path
    verdict = can(nobody, "create", "selfsubjectaccessreviews", group="authorization.k8s.io")
    assert verdict.reason == (
        'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole '
        '"system:basic-user" to Group "system:authenticated"'
    )
    assert not can(nobody, "get", path="/metrics").allowed


def test_missing_role_is_reported_as_the_denial_reason() -> None:
    verdict = can(user("erin"), "get", "promotions", namespace="production")
    assert verdict == rbac.Verdict(False, 'RBAC: role.rbac.authorization.k8s.io "missing" not found')


def test_system_masters_is_allowed_everything() -> None:
    admin = user("admin", "system:masters")
    assert can(admin, "delete", "namespaces", group="").allowed
    assert can(admin, "get", path="/anything").allowed


def test_forbidden_messages_are_the_api_servers() -> None:
    mallory = user("mallory")
    attrs = rbac.Attributes(
        user=mallory, verb="list", api_group=GROUP, resource="promotions", namespace="production"
    )
    assert rbac.forbidden_message(attrs) == (
        'promotions.lockgate.dev is forbidden: User "mallory" cannot list resource "promotions" '
        'in API group "lockgate.dev" in the namespace "production"'
    )
    named = rbac.Attributes(
        user=mallory,
        verb="get",
        api_group=GROUP,
        resource="promotions",
        subresource="status",
        namespace="production",
        name="web",
    )
    assert rbac.forbidden_message(named) == (
        'promotions.lockgate.dev "web" is forbidden: User "mallory" cannot get resource "promotions/status" '
        'in API group "lockgate.dev" in the namespace "production"'
    )
    cluster = rbac.Attributes(user=mallory, verb="list", resource="namespaces")
    assert rbac.forbidden_message(cluster) == (
        'namespaces is forbidden: User "mallory" cannot list resource "namespaces" in API group "" '
        "at the cluster scope"
    )
    path = rbac.Attributes(user=mallory, verb="get", path="/metrics")
    assert rbac.forbidden_message(path) == 'forbidden: User "mallory" cannot get path "/metrics"'


def test_subject_access_review_uses_the_spec_identity() -> None:
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "bob",
            "groups": ["engineering-leads"],
            "resourceAttributes": {
                "namespace": "production",
                "verb": "approve",
                "group": GROUP,
                "resource": "promotions",
                "name": "web",
            },
        },
    }
    answer = rbac.review(body, user("operator"), WORLD)
    assert answer["status"]["allowed"] is True
    assert answer["status"]["reason"].startswith('RBAC: allowed by RoleBinding "leads-approve/production"')
    body["spec"]["groups"] = []
    assert rbac.review(body, user("operator"), WORLD)["status"] == {"allowed": False}
    with pytest.raises(rbac.ReviewInvalid):
        rbac.review(
            {"kind": "SubjectAccessReview", "spec": {"resourceAttributes": {"verb": "get"}}},
            user("operator"),
            WORLD,
        )


def test_self_and_local_reviews() -> None:
    ssar = {
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": "production",
                "verb": "approve",
                "group": GROUP,
                "resource": "promotions",
            }
        },
    }
    assert rbac.review(ssar, user("bob", "engineering-leads"), WORLD)["status"]["allowed"] is True
    assert rbac.review(ssar, user("mallory"), WORLD)["status"]["allowed"] is False
    lsar = {
        "kind": "LocalSubjectAccessReview",
        "metadata": {"namespace": "production"},
        "spec": {
            "user": "bob",
            "groups": ["engineering-leads"],
            "resourceAttributes": {"verb": "approve", "group": GROUP, "resource": "promotions"},
        },
    }
    assert rbac.review(lsar, user("operator"), WORLD)["status"]["allowed"] is True
    lsar["spec"]["resourceAttributes"]["namespace"] = "staging"
    with pytest.raises(rbac.ReviewInvalid):
        rbac.review(lsar, user("operator"), WORLD)


def test_rules_review_lists_what_the_user_may_do() -> None:
    answer = rbac.rules_review(
        {"kind": "SelfSubjectRulesReview", "spec": {"namespace": "production"}},
        user("bob", "engineering-leads"),
        WORLD,
    )
    rules = answer["status"]["resourceRules"]
    assert {"verbs": ["get", "list", "approve"], "apiGroups": [GROUP], "resources": ["promotions"]} in rules
    assert {
        "verbs": ["get"],
        "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
    } in answer["status"]["nonResourceRules"]
    elsewhere = rbac.rules_review({"spec": {"namespace": "staging"}}, user("bob", "engineering-leads"), WORLD)
    assert all("promotions" not in rule["resources"] for rule in elsewhere["status"]["resourceRules"])


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
verbs = st.sampled_from(
    ["get", "list", "watch", "create", "update", "patch", "delete", "approve", "impersonate"]
)


@given(
    who=names.filter(lambda n: n not in {"carol", "sam", "erin"}),
    verb=verbs,
    resource=names,
    group=st.sampled_from(["", "apps", GROUP]),
    namespace=st.sampled_from(["", "production", "staging"]),
)
def test_an_unbound_user_is_never_allowed_a_resource(
    who: str, verb: str, resource: str, group: str, namespace: str
) -> None:
    attrs = rbac.Attributes(
        user=user(who, "nobody-binds-this"),
        verb=verb,
        api_group=group,
        resource=resource,
        namespace=namespace,
    )
    assert not rbac.authorize(attrs, WORLD).allowed


@given(who=names, verb=verbs, resource=names, namespace=st.sampled_from(["", "production"]), path=names)
def test_system_masters_is_always_allowed(
    who: str, verb: str, resource: str, namespace: str, path: str
) -> None:
    admin = identity.UserInfo(who, ("system:masters",))
    assert rbac.authorize(rbac.Attributes(admin, verb, "x", resource, namespace=namespace), WORLD).allowed
    assert rbac.authorize(rbac.Attributes(admin, verb, path="/" + path), rbac.RbacObjects()).allowed


@given(verb=verbs, resource=names, namespace=names, other=names)
def test_a_role_binding_never_reaches_another_namespace(
    verb: str, resource: str, namespace: str, other: str
) -> None:
    objects = rbac.RbacObjects(
        roles=[role("r", namespace, {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})],
        role_bindings=[binding("RoleBinding", "b", "Role", "r", [{"kind": "User", "name": "u"}], namespace)],
    )
    u = user("u")
    assert rbac.authorize(rbac.Attributes(u, verb, GROUP, resource, namespace=namespace), objects).allowed
    if other != namespace:
        assert not rbac.authorize(rbac.Attributes(u, verb, GROUP, resource, namespace=other), objects).allowed
    assert not rbac.authorize(rbac.Attributes(u, verb, GROUP, resource), objects).allowed
