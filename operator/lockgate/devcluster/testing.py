"""Helpers for tests that run against the embedded API: start it, drive kubectl, call it over HTTPS."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lockgate.devcluster import runner

REPO = pathlib.Path(__file__).resolve().parents[3]


def crd_dirs(*extra: str | pathlib.Path) -> list[pathlib.Path]:
    """The repository's ``crds/`` (when it has CRDs) plus ``extra`` directories."""
    dirs = [pathlib.Path(d) for d in extra]
    default = runner.default_crd_dir()
    if default is not None and any(default.glob("*.y*ml")):
        dirs.insert(0, default)
    return dirs


@contextmanager
def running(
    *,
    crd_dir: Sequence[str | pathlib.Path] = (),
    seed: bool = True,
    workload_delay: float = 0.3,
    bookmark_interval: float = 5.0,
) -> Iterator[runner.RunningCluster]:
    """A seeded DevCluster in a background thread, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="lockgate-devcluster-") as tmp:
        cluster = runner.start_in_thread(
            crd_dir=list(crd_dir),
            seed=seed,
            kubeconfig_path=pathlib.Path(tmp) / "kubeconfig",
            workload_delay=workload_delay,
            bookmark_interval=bookmark_interval,
        )
        try:
            yield cluster
        finally:
            cluster.stop()


def kubectl(
    cluster: runner.RunningCluster,
    *args: str,
    context: str = "admin",
    input: str | None = None,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """Run the real kubectl against the cluster (``KUBECONFIG`` set, ``--context`` chosen)."""
    binary = shutil.which("kubectl")
    if binary is None:
        raise RuntimeError("kubectl is not on PATH")
    # A discovery cache per cluster: ports are reused, and kubectl trusts a cached discovery for hours.
    env = dict(
        os.environ, KUBECONFIG=str(cluster.kubeconfig), KUBECACHEDIR=str(cluster.kubeconfig.parent / "kube-cache")
    )
    return subprocess.run(
        [binary, "--context", context, *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ssl_context(cluster: runner.RunningCluster) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=cluster.running.ca_pem.decode())


def api(
    cluster: runner.RunningCluster,
    method: str,
    path: str,
    body: Any = None,
    *,
    user: str | None = "admin",
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, Any]:
    """One HTTPS request as ``user`` (``None``: no token); returns (status code, decoded JSON body)."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(cluster.url + path, data=data, method=method.upper())
    request.add_header("Content-Type", content_type)
    request.add_header("Accept", "application/json")
    if user is not None:
        request.add_header("Authorization", f"Bearer {cluster.users[user].token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=ssl_context(cluster)) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode()
