"""The sample world of ``lockgate dev``: users, tokens, namespaces, ``web`` Deployments, RBAC, kubeconfig."""

from __future__ import annotations

import base64
import dataclasses
import pathlib
import secrets
from typing import Any

import yaml

from lockgate.devcluster import server, workloads

OPERATOR_NAMESPACE = "lockgate-system"
OPERATOR_SA = "lockgate-operator"
OPERATOR_USERNAME = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SA}"
OPERATOR_CONTEXT = "lockgate-operator"
WEB_IMAGE = "registry.example/web:1.0"
RBAC = "rbac.authorization.k8s.io"


@dataclasses.dataclass(frozen=True)
class User:
    name: str  # the kubeconfig context and user name
    username: str  # the authenticated username
    groups: tuple[str, ...]
    token: str


def make_users() -> dict[str, User]:
    """The sample users with fresh random tokens: admin, alice, bob, carol, dan, mallory, the operator."""
    groups: dict[str, tuple[str, ...]] = {
        "admin": ("system:masters",),
        "alice": ("engineers",),
        "bob": ("engineering-leads",),
        "carol": ("security-leads",),
        "dan": ("oncall-leads",),
        "mallory": (),
    }
    users = {
        name: User(name, name, (*grps, "system:authenticated"), secrets.token_urlsafe(24))
        for name, grps in groups.items()
    }
    users[OPERATOR_CONTEXT] = User(
        OPERATOR_CONTEXT,
        OPERATOR_USERNAME,
        ("system:serviceaccounts", f"system:serviceaccounts:{OPERATOR_NAMESPACE}", "system:authenticated"),
        secrets.token_urlsafe(24),
    )
    return users


def add_users(cluster: server.DevCluster, users: dict[str, User]) -> None:
    for user in users.values():
        cluster.add_user(user.token, user.username, user.groups)


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}


def _binding(name: str, role: str, subjects: list[dict[str, Any]], namespace: str = "") -> dict[str, Any]:
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {
            "apiGroup": RBAC,
            "kind": "Role" if namespace and role.startswith("ns:") else "ClusterRole",
            "name": role.removeprefix("ns:"),
        },
        "subjects": subjects,
    }


def _groups(*names: str) -> list[dict[str, Any]]:
    return [{"apiGroup": RBAC, "kind": "Group", "name": name} for name in names]


_READ = ["get", "list", "watch"]
_WORKLOADS = ["deployments", "statefulsets", "daemonsets"]
_EDIT = [*_READ, "create", "update", "patch"]


def rbac_objects() -> list[dict[str, Any]]:
    """ClusterRoles for requesters, approvers, viewers and the operator, and their bindings."""
    operator_sa = [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": OPERATOR_NAMESPACE}]
    return [
        _cluster_role(
            "lockgate-requester",
            [
                {"apiGroups": ["lockgate.dev"], "resources": ["promotions"], "verbs": [*_READ, "create"]},
                {"apiGroups": ["lockgate.dev"], "resources": ["approvals", "gatepolicies"], "verbs": _READ},
                {"apiGroups": ["apps"], "resources": _WORKLOADS, "verbs": _READ},
            ],
        ),
        _cluster_role(
            "lockgate-approver",
            [
                {"apiGroups": ["lockgate.dev"], "resources": ["promotions"], "verbs": [*_READ, "approve"]},
                {"apiGroups": ["lockgate.dev"], "resources": ["approvals"], "verbs": [*_READ, "create", "delete"]},
                {"apiGroups": ["lockgate.dev"], "resources": ["gatepolicies"], "verbs": _READ},
            ],
        ),
        # Anyone signed in may record a decision; only holders of the `approve` verb count (the operator
        # asks a SubjectAccessReview), so an Approval from someone else is listed with the reason.
        _cluster_role(
            "lockgate-approval-author",
            [{"apiGroups": ["lockgate.dev"], "resources": ["approvals"], "verbs": ["create"]}],
        ),
        _cluster_role(
            "lockgate-viewer",
            [
                {
                    "apiGroups": ["lockgate.dev"],
                    "resources": ["promotions", "approvals", "gatepolicies"],
                    "verbs": _READ,
                },
                {"apiGroups": ["apps"], "resources": _WORKLOADS, "verbs": _READ},
                {"apiGroups": [""], "resources": ["namespaces", "events"], "verbs": _READ},
                {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": _READ},
            ],
        ),
        # Engineers may try to change images directly: the admission webhook, not RBAC, stops them in
        # gated namespaces.
        _cluster_role(
            "lockgate-workload-editor",
            [
                {"apiGroups": ["apps"], "resources": _WORKLOADS, "verbs": ["update", "patch"]},
                {
                    "apiGroups": ["apps"],
                    "resources": [f"{w}/scale" for w in _WORKLOADS],
                    "verbs": ["get", "update", "patch"],
                },
                # As Kubernetes' `edit` role: the other kinds that run containers (the guard covers them too).
                {
                    "apiGroups": [""],
                    "resources": [
                        "pods",
                        "pods/ephemeralcontainers",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                    ],
                    "verbs": _EDIT,
                },
                {"apiGroups": ["apps"], "resources": ["replicasets/scale"], "verbs": _EDIT},
                {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": [*_EDIT, "delete", "deletecollection"]},
                {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": _EDIT},
            ],
        ),
        _cluster_role(
            "lockgate-operator",
            [
                {
                    "apiGroups": ["lockgate.dev"],
                    "resources": ["promotions", "approvals", "gatepolicies"],
                    "verbs": [*_READ, "patch", "update"],
                },
                {
                    "apiGroups": ["lockgate.dev"],
                    "resources": ["promotions/status", "approvals/status", "gatepolicies/status"],
                    "verbs": ["get", "patch", "update"],
                },
                {"apiGroups": ["apps"], "resources": _WORKLOADS, "verbs": [*_READ, "patch", "update"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update", *_READ]},
                {
                    "apiGroups": ["events.k8s.io"],
                    "resources": ["events"],
                    "verbs": ["create", "patch", "update"],
                },
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": _READ},
                {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]},  # HTTP checks' Services
                {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get"]},  # kubectl create job --from
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "verbs": [*_READ, "create", "update", "patch"],
                },
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["subjectaccessreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": [RBAC],
                    "resources": ["roles", "rolebindings", "clusterroles", "clusterrolebindings"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["apiextensions.k8s.io"],
                    "resources": ["customresourcedefinitions"],
                    "verbs": _READ,
                },
                {
                    "apiGroups": ["kopf.dev"],
                    "resources": ["kopfpeerings", "clusterkopfpeerings"],
                    "verbs": [*_READ, "patch", "create"],
                },
                {
                    "apiGroups": ["admissionregistration.k8s.io"],
                    "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
                    "verbs": [*_READ, "create", "patch", "update"],
                },
            ],
        ),
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "Role",
            "metadata": {"name": "lockgate-operator-secrets", "namespace": OPERATOR_NAMESPACE},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["secrets", "configmaps"],
                    "verbs": [*_READ, "create", "update", "patch"],
                }
            ],
        },
        _binding("lockgate-operator-secrets", "ns:lockgate-operator-secrets", operator_sa, OPERATOR_NAMESPACE),
        _binding("lockgate-operator", "lockgate-operator", operator_sa),
        _binding("lockgate-requesters", "lockgate-requester", _groups("engineers")),
        _binding("lockgate-workload-editors", "lockgate-workload-editor", _groups("engineers", "oncall-leads")),
        _binding(
            "lockgate-approvers",
            "lockgate-approver",
            _groups("engineering-leads", "security-leads", "oncall-leads"),
        ),
        _binding("lockgate-approval-authors", "lockgate-approval-author", _groups("system:authenticated")),
        _binding(
            "lockgate-viewers",
            "lockgate-viewer",
            _groups("engineers", "engineering-leads", "security-leads", "oncall-leads"),
        ),
        # What kube-controller-manager's controllers hold (system:controller:*), for the kinds they make.
        _cluster_role(
            "system:controller:workload-controllers",
            [
                {"apiGroups": [""], "resources": ["pods"], "verbs": _EDIT},
                {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": [*_EDIT, "delete"]},  # history limit
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": _EDIT},
            ],
        ),
        _binding(
            "system:controller:workload-controllers",
            "system:controller:workload-controllers",
            [
                {"kind": "ServiceAccount", "name": f"{controller}-controller", "namespace": "kube-system"}
                for controller in ("deployment", "replicaset", "statefulset", "daemon-set", "job", "cronjob")
            ],
        ),
    ]


def namespaces() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "staging", "labels": {"lockgate.dev/environment": "staging"}},
        },
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "production", "labels": {"lockgate.dev/environment": "production"}},
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
    ]


def web_deployment(namespace: str, image: str = WEB_IMAGE, replicas: int = 2) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080, "name": "http"}]}]
                },
            },
        },
    }


def base(cluster: server.DevCluster) -> None:
    """What every cluster has: the ``default``, ``kube-system`` and ``kube-public`` namespaces."""
    for name in ("default", "kube-system", "kube-public"):
        cluster.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def seed(cluster: server.DevCluster, users: dict[str, User] | None = None) -> dict[str, User]:
    """Seed the sample world into a cluster; returns the users (with the tokens it accepts)."""
    users = users or make_users()
    add_users(cluster, users)
    for ns in namespaces():
        cluster.seed(ns)
    cluster.seed(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": OPERATOR_SA, "namespace": OPERATOR_NAMESPACE},
        }
    )
    for obj in rbac_objects():
        cluster.seed(obj)
    for namespace in ("staging", "production"):
        deployment = web_deployment(namespace)
        deployment["metadata"]["generation"] = 1
        status = workloads.next_status("Deployment", deployment, "complete")
        cluster.seed(deployment, status=status, observe=False)
    return users


def seed_users_only(cluster: server.DevCluster) -> dict[str, User]:
    """Just an admin user (for ``--empty``), plus the operator identity, without RBAC or objects."""
    users = make_users()
    add_users(cluster, users)
    return users


def kubeconfig(url: str, users: dict[str, User], *, ca_pem: bytes = b"", current: str = "admin") -> dict[str, Any]:
    """A kubeconfig with one context per user, all pointing at the embedded API."""
    cluster: dict[str, Any] = {"server": url}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lockgate-dev", "cluster": cluster}],
        "users": [{"name": user.name, "user": {"token": user.token}} for user in users.values()],
        "contexts": [
            {
                "name": user.name,
                "context": {"cluster": "lockgate-dev", "user": user.name, "namespace": "default"},
            }
            for user in users.values()
        ],
        "current-context": current,
        "preferences": {},
    }


def write_kubeconfig(
    path: str | pathlib.Path, url: str, users: dict[str, User], *, ca_pem: bytes = b""
) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig(url, users, ca_pem=ca_pem), sort_keys=False))
    path.chmod(0o600)
    return path


def load_crds(cluster: server.DevCluster, directory: str | pathlib.Path) -> list[str]:
    """Load every CustomResourceDefinition in ``directory/*.yaml``; returns their names."""
    names: list[str] = []
    for file in sorted(pathlib.Path(directory).glob("*.y*ml")):
        for doc in yaml.safe_load_all(file.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                cluster.load_crd(doc)
                names.append(doc["metadata"]["name"])
    return names
