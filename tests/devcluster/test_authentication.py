"""Bearer-token authentication and impersonation headers behave as the Kubernetes API server's."""

from __future__ import annotations

import multidict
import pytest

from lockgate.devcluster import identity, rbac

OBJECTS = rbac.RbacObjects(
    cluster_roles=[
        {
            "kind": "ClusterRole",
            "metadata": {"name": "impersonator"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["users", "groups", "serviceaccounts"],
                    "verbs": ["impersonate"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["uids", "userextras/scopes"],
                    "verbs": ["impersonate"],
                },
            ],
        },
        {
            "kind": "ClusterRole",
            "metadata": {"name": "bob-only"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["users"],
                    "resourceNames": ["bob"],
                    "verbs": ["impersonate"],
                }
            ],
        },
    ],
    cluster_role_bindings=[
        {
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "ops-impersonate"},
            "roleRef": {"kind": "ClusterRole", "name": "impersonator"},
            "subjects": [{"kind": "Group", "name": "ops"}],
        },
        {
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "alice-as-bob"},
            "roleRef": {"kind": "ClusterRole", "name": "bob-only"},
            "subjects": [{"kind": "User", "name": "alice"}],
        },
    ],
)


def authorize(attrs: rbac.Attributes) -> rbac.Verdict:
    return rbac.authorize(attrs, OBJECTS)


@pytest.fixture
def authn() -> identity.Authenticator:
    authenticator = identity.Authenticator()
    authenticator.add_token("t-alice", "alice", ["engineers"])
    authenticator.add_token("t-ops", "olga", ["ops"])
    return authenticator


def test_bearer_token_maps_to_user_and_groups_plus_authenticated(authn: identity.Authenticator) -> None:
    alice = authn.authenticate({"Authorization": "Bearer t-alice"})
    assert alice == identity.UserInfo("alice", ("engineers", "system:authenticated"))
    assert authn.authenticate({"authorization": "bearer t-alice"}) == alice


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dDp0"}, {"Authorization": "Bearer "}],
)
def test_unknown_or_missing_token_is_unauthenticated(
    authn: identity.Authenticator, headers: dict[str, str]
) -> None:
    assert authn.authenticate(headers) is None


def test_anonymous_when_enabled() -> None:
    authenticator = identity.Authenticator(allow_anonymous=True)
    assert authenticator.authenticate({}) == identity.UserInfo(
        "system:anonymous", ("system:unauthenticated",)
    )
    assert authenticator.authenticate({"Authorization": "Bearer wrong"}) is None


def test_no_impersonation_headers_keep_the_requester(authn: identity.Authenticator) -> None:
    alice = authn.authenticate({"Authorization": "Bearer t-alice"})
    assert alice is not None
    assert identity.impersonate(alice, {"Accept": "application/json"}, authorize) is alice


def test_impersonating_a_user_without_permission_is_forbidden_with_kubernetes_message(
    authn: identity.Authenticator,
) -> None:
    alice = authn.authenticate({"Authorization": "Bearer t-alice"})
    assert alice is not None
    with pytest.raises(identity.ImpersonationForbidden) as caught:
        identity.impersonate(alice, {"Impersonate-User": "carol"}, authorize)
    assert caught.value.code == 403
    assert caught.value.message == (
        'users "carol" is forbidden: User "alice" cannot impersonate resource "users" '
        'in API group "" at the cluster scope'
    )


def test_resource_names_limit_whom_one_may_impersonate(authn: identity.Authenticator) -> None:
    alice = authn.authenticate({"Authorization": "Bearer t-alice"})
    assert alice is not None
    bob = identity.impersonate(alice, {"Impersonate-User": "bob"}, authorize)
    assert bob == identity.UserInfo("bob", ("system:authenticated",))
    with pytest.raises(identity.ImpersonationForbidden) as caught:
        identity.impersonate(alice, {"Impersonate-User": "bob", "Impersonate-Group": "admins"}, authorize)
    assert caught.value.message.startswith(
        'groups "admins" is forbidden: User "alice" cannot impersonate resource "groups" in API group ""'
    )


def test_user_groups_uid_and_extra_from_repeated_headers(authn: identity.Authenticator) -> None:
    olga = authn.authenticate({"Authorization": "Bearer t-ops"})
    assert olga is not None
    headers = multidict.CIMultiDict(
        [
            ("Impersonate-User", "bob"),
            ("Impersonate-Group", "engineering-leads"),
            ("Impersonate-Group", "security-leads"),
            ("Impersonate-Uid", "1234"),
            ("Impersonate-Extra-Scopes", "view"),
            ("Impersonate-Extra-Scopes", "edit"),
        ]
    )
    acting = identity.impersonate(olga, headers, authorize)
    assert acting == identity.UserInfo(
        "bob",
        ("engineering-leads", "security-leads", "system:authenticated"),
        uid="1234",
        extra={"scopes": ("view", "edit")},
    )


def test_extra_keys_need_their_own_subresource_permission(authn: identity.Authenticator) -> None:
    olga = authn.authenticate({"Authorization": "Bearer t-ops"})
    assert olga is not None
    with pytest.raises(identity.ImpersonationForbidden) as caught:
        identity.impersonate(olga, {"Impersonate-User": "bob", "Impersonate-Extra-Reason": "x"}, authorize)
    assert caught.value.message == (
        'userextras.authentication.k8s.io "x" is forbidden: User "olga" cannot impersonate resource '
        '"userextras/reason" in API group "authentication.k8s.io" at the cluster scope'
    )


def test_service_account_impersonation_gets_service_account_groups(authn: identity.Authenticator) -> None:
    olga = authn.authenticate({"Authorization": "Bearer t-ops"})
    assert olga is not None
    acting = identity.impersonate(
        olga, {"Impersonate-User": "system:serviceaccount:lockgate:operator"}, authorize
    )
    assert acting.username == "system:serviceaccount:lockgate:operator"
    assert acting.groups == (
        "system:serviceaccounts",
        "system:serviceaccounts:lockgate",
        "system:authenticated",
    )
    alice = authn.authenticate({"Authorization": "Bearer t-alice"})
    assert alice is not None
    with pytest.raises(identity.ImpersonationForbidden) as caught:
        identity.impersonate(
            alice, {"Impersonate-User": "system:serviceaccount:lockgate:operator"}, authorize
        )
    assert caught.value.message == (
        'serviceaccounts "operator" is forbidden: User "alice" cannot impersonate resource "serviceaccounts" '
        'in API group "" in the namespace "lockgate"'
    )


def test_groups_without_a_user_is_a_bad_request(authn: identity.Authenticator) -> None:
    olga = authn.authenticate({"Authorization": "Bearer t-ops"})
    assert olga is not None
    with pytest.raises(identity.ImpersonationForbidden) as caught:
        identity.impersonate(olga, {"Impersonate-Group": "x"}, authorize)
    assert caught.value.code == 400
    assert "without impersonating a user" in caught.value.message


def test_system_masters_may_impersonate_anyone() -> None:
    admin = identity.UserInfo("admin", ("system:masters", "system:authenticated"))
    acting = identity.impersonate(
        admin, {"Impersonate-User": "mallory", "Impersonate-Group": "system:masters"}, authorize
    )
    assert acting == identity.UserInfo("mallory", ("system:masters", "system:authenticated"))
