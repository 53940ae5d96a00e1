"""The chart "installed" into the embedded API: its RBAC, Secrets and webhook configurations
loaded into ``lockgate dev --empty``, and the operator running as the chart's ServiceAccount with the
chart's settings, serving the webhooks on the chart's generated certificate.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import os
import pathlib
import secrets
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

import yaml

from lockgate import settings as lockgate_settings
from lockgate.devcluster import admission as dev_admission
from lockgate.devcluster import testing as dev_testing
from lockgate.devcluster import world
from lockgate.handlers import background, testing
from tests.chart import rendering, scenario

OPERATOR_CONTEXT = "lockgate-chart"
# What the chart installs that the operator's calls depend on (workload kinds run elsewhere).
LOADED_KINDS = (
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Secret",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)
RBAC_KINDS = ("ClusterRole", "Role")
# The people of the sample world, bound with the chart's example roles.
USER_VALUES: dict[str, Any] = {
    "rbac": {
        "userRoles": {
            "requesterGroups": ["engineers"],
            "approverGroups": ["engineering-leads", "security-leads", "oncall-leads"],
        }
    }
}


@dataclasses.dataclass(frozen=True)
class RuleRef:
    """One PolicyRule of one of the chart's (Cluster)Roles."""

    kind: str
    name: str
    index: int
    rule: dict[str, Any]

    @property
    def id(self) -> str:
        resources = ",".join(self.rule.get("resources", []))
        names = ",".join(self.rule.get("resourceNames", []))
        verbs = ",".join(self.rule.get("verbs", []))
        return f"{self.name}[{self.index}]:{resources}{'=' + names if names else ''}:{verbs}"


def chart_values(**extra: Any) -> dict[str, Any]:
    values = copy.deepcopy(USER_VALUES)
    values.update(extra)
    return values


def operator_rules(objects: list[dict[str, Any]]) -> list[RuleRef]:
    """The rules the chart grants the operator (its roles, not the example roles for people)."""
    return [
        RuleRef(obj["kind"], obj["metadata"]["name"], i, rule)
        for obj in rendering.of_kind(objects, *RBAC_KINDS)
        if "-operator" in obj["metadata"]["name"]
        for i, rule in enumerate(obj["rules"])
    ]


def without(objects: list[dict[str, Any]], ref: RuleRef) -> list[dict[str, Any]]:
    out = copy.deepcopy(objects)
    for obj in out:
        if obj["kind"] == ref.kind and obj["metadata"]["name"] == ref.name:
            del obj["rules"][ref.index]
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_cert_dir(objects: list[dict[str, Any]], directory: pathlib.Path) -> None:
    secret = next(o for o in rendering.of_kind(objects, "Secret") if o["type"] == "kubernetes.io/tls")
    directory.mkdir()
    for key, value in secret["data"].items():
        (directory / key).write_bytes(base64.b64decode(value))


def settings_from(objects: list[dict[str, Any]], **overrides: Any) -> lockgate_settings.OperatorSettings:
    """The operator's settings exactly as the chart's Deployment sets them (``LOCKGATE_*``), plus overrides."""
    env = {
        k: v
        for k, v in rendering.env(rendering.one(objects, "Deployment")).items()
        if k.startswith("LOCKGATE_") and not k.startswith("LOCKGATE_AUDIT_")
    }
    saved = {k: os.environ.get(k) for k in env}
    try:
        os.environ.update(env)
        settings = lockgate_settings.OperatorSettings()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return settings.model_copy(update=overrides)


def _manifest(objects: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)


@contextlib.contextmanager
def installed(objects: list[dict[str, Any]] | None = None, *, start_timeout: float = 15.0) -> Iterator[testing.Stack]:
    """The embedded API (no sample RBAC) with the chart loaded and its operator running."""
    objects = objects if objects is not None else rendering.render(chart_values())
    with tempfile.TemporaryDirectory(prefix="lockgate-chart-") as tmp:
        workdir = pathlib.Path(tmp)
        cert_dir = workdir / "webhook-tls"
        _write_cert_dir(objects, cert_dir)
        port = _free_port()
        with dev_testing.running(
            crd_dir=[rendering.CHART / "crds"], seed=False, workload_delay=0.2, bookmark_interval=1.0
        ) as cluster:
            stack = testing.Stack(cluster, workdir)
            _world(stack)
            stack.apply(_manifest([o for o in objects if o["kind"] in LOADED_KINDS]))
            operator = world.User(
                OPERATOR_CONTEXT,
                rendering.IDENTITY,
                (
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{rendering.NAMESPACE}",
                    "system:authenticated",
                ),
                secrets.token_urlsafe(24),
            )
            cluster.cluster.add_user(operator.token, operator.username, operator.groups)
            kubeconfig = world.write_kubeconfig(
                workdir / "operator-kubeconfig",
                cluster.url,
                {OPERATOR_CONTEXT: operator},
                ca_pem=cluster.running.ca_pem,
            )
            settings = settings_from(
                objects,
                webhook_host="127.0.0.1",
                webhook_port=port,
                webhook_cert_dir=str(cert_dir),
                metrics_port=0,
                health_port=0,
            )
            dev_admission.SERVICE_URL_OVERRIDES[(rendering.NAMESPACE, rendering.RELEASE)] = f"https://127.0.0.1:{port}"
            try:
                stack.operator = background.OperatorThread(
                    kubeconfig=kubeconfig, context=OPERATOR_CONTEXT, settings=settings, audit_trail=stack.trail()
                )
                try:
                    stack.operator.start(start_timeout)
                except (RuntimeError, TimeoutError) as exc:
                    raise scenario.OperatorRefused(
                        f"the operator did not start; the API refused it: {scenario.refused(stack)}"
                    ) from exc
                yield stack
            finally:
                stack.stop_operator()
                dev_admission.SERVICE_URL_OVERRIDES.pop((rendering.NAMESPACE, rendering.RELEASE), None)


def _world(stack: testing.Stack) -> None:
    """Namespaces and the ``web`` Deployments of the sample world, created by the admin."""
    namespaces = [ns for ns in world.namespaces() if ns["metadata"]["name"] != world.OPERATOR_NAMESPACE]
    namespaces.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": rendering.NAMESPACE}})
    stack.apply(_manifest([*namespaces, world.web_deployment("staging"), world.web_deployment("production")]))
    stack.kubectl("rollout", "status", "deployment/web", "-n", "production", "--timeout=20s")
