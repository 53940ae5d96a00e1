"""Where the Kubernetes API is and who we are to it: kubeconfig contexts and in-cluster credentials."""

from __future__ import annotations

import base64
import dataclasses
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(Exception):
    """The kubeconfig or in-cluster environment does not say how to reach the API."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """One endpoint and the identity to use on it."""

    server: str
    token: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    default_namespace: str = "default"


def _data(entry: Mapping[str, Any], key: str, base_dir: pathlib.Path) -> bytes | None:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        path = pathlib.Path(entry[key])
        return (path if path.is_absolute() else base_dir / path).read_bytes()
    return None


def from_kubeconfig(path: str | os.PathLike[str], context: str | None = None) -> Credentials:
    """Read one context of a kubeconfig file (token or client-certificate users)."""
    file = pathlib.Path(path)
    try:
        doc = yaml.safe_load(file.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {file}: {exc.strerror}") from None
    name = context or doc.get("current-context")
    contexts = {c["name"]: c.get("context", {}) for c in doc.get("contexts") or []}
    if name not in contexts:
        raise ConfigError(f"kubeconfig {file} has no context {name!r}; it has: {', '.join(sorted(contexts))}")
    ctx = contexts[name]
    clusters = {c["name"]: c.get("cluster", {}) for c in doc.get("clusters") or []}
    users = {u["name"]: u.get("user", {}) for u in doc.get("users") or []}
    cluster = clusters.get(ctx.get("cluster"))
    if cluster is None:
        raise ConfigError(
            f"context {name!r} names cluster {ctx.get('cluster')!r}, which the kubeconfig lacks"
        )
    user = users.get(ctx.get("user"), {})
    base_dir = file.parent
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base_dir / user["tokenFile"]).read_text().strip()
    return Credentials(
        server=str(cluster["server"]).rstrip("/"),
        token=token,
        ca_data=_data(cluster, "certificate-authority", base_dir),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        client_cert_data=_data(user, "client-certificate", base_dir),
        client_key_data=_data(user, "client-key", base_dir),
        default_namespace=ctx.get("namespace") or "default",
    )


def in_cluster() -> Credentials:
    """The Pod's ServiceAccount credentials, as every in-cluster client reads them."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not running in a cluster: KUBERNETES_SERVICE_HOST/PORT are unset")
    return Credentials(
        server=f"https://{host}:{port}",
        token=(SERVICE_ACCOUNT_DIR / "token").read_text().strip(),
        ca_data=(SERVICE_ACCOUNT_DIR / "ca.crt").read_bytes(),
        default_namespace=(SERVICE_ACCOUNT_DIR / "namespace").read_text().strip(),
    )


def load(kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None) -> Credentials:
    """Kubeconfig when given (or $KUBECONFIG, ~/.kube/config), otherwise in-cluster."""
    candidates = [kubeconfig, os.environ.get("KUBECONFIG"), pathlib.Path.home() / ".kube" / "config"]
    for candidate in candidates:
        if candidate and pathlib.Path(str(candidate).split(os.pathsep)[0]).exists():
            return from_kubeconfig(str(candidate).split(os.pathsep)[0], context)
    return in_cluster()
