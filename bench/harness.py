"""Shared plumbing of the benchmarks: the embedded API, the operator as a subprocess, HTTPS as the sample users.

Not a benchmark itself. The benchmarks import it as ``harness`` (``bench/`` is on ``sys.path`` when a
script in it runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any

import aiohttp
import yaml

from lockgate.devcluster import runner, testing

REPO = pathlib.Path(__file__).resolve().parents[1]
GROUP_PATH = "/apis/lockgate.dev/v1alpha1"
DIGEST = "sha256:" + "0123456789abcdef" * 4
OPERATOR_USER = "system:serviceaccount:lockgate-system:lockgate-operator"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def cluster(workload_delay: float = 0.05) -> Iterator[runner.RunningCluster]:
    with testing.running(crd_dir=testing.crd_dirs(), workload_delay=workload_delay, bookmark_interval=5.0) as running:
        yield running


def promotion_body(
    namespace: str, name: str, target: str, image: str, *, author: str = "dave", timeout: str = "60s"
) -> dict[str, Any]:
    return {
        "apiVersion": "lockgate.dev/v1alpha1",
        "kind": "Promotion",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "target": {"kind": "Deployment", "name": target, "container": "web"},
            "image": image,
            "change": {"description": f"Release {name}", "ticket": "CHG-1", "author": author},
            "evidence": {
                "securityScan": {"status": "Passed", "critical": 0, "high": 1},
                "integrationTests": {"status": "Passed"},
                "sbom": {"licenses": ["MIT"]},
            },
            "verification": {"timeout": timeout, "rollbackOnFailure": True},
        },
    }


def approval_body(namespace: str, name: str, promotion: str, spec_hash: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"promotion": promotion, "decision": "Approve"}
    if spec_hash:
        spec["specHash"] = spec_hash
    return {
        "apiVersion": "lockgate.dev/v1alpha1",
        "kind": "Approval",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def deployment_body(namespace: str, name: str, image: str = "registry.example/web:1.0") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def namespace_body(name: str, environment: str | None = "production") -> dict[str, Any]:
    labels = {"lockgate.dev/environment": environment} if environment else {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def production_policy() -> dict[str, Any]:
    policy: dict[str, Any] = yaml.safe_load((REPO / "examples" / "gatepolicy-production.yaml").read_text())
    return policy


def image_of(deployment: dict[str, Any], container: str = "web") -> str:
    for c in deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
        if c.get("name") == container:
            return str(c.get("image"))
    return ""


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary_ms(values: Sequence[float]) -> tuple[float, float, float]:
    """p50, p99 and mean of ``values`` (seconds) in milliseconds."""
    return percentile(values, 0.5) * 1e3, percentile(values, 0.99) * 1e3, statistics.fmean(values) * 1e3


class Api:
    """HTTPS to the embedded API as the sample users (bearer tokens), with bounded concurrency."""

    def __init__(self, running: runner.RunningCluster, *, concurrency: int = 32) -> None:
        self.running = running
        self.url = running.url
        self.ssl = testing.ssl_context(running)
        self.limit = asyncio.Semaphore(concurrency)
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Api:
        connector = aiohttp.TCPConnector(ssl=self.ssl, limit=256)
        self.session = aiohttp.ClientSession(self.url, connector=connector)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.session is not None:
            await self.session.close()

    def _headers(self, user: str, content_type: str = "application/json") -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.running.users[user].token}",
            "Content-Type": content_type,
            "Accept": "application/json",
        }

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: str = "admin",
        content_type: str = "application/json",
        ok: Iterable[int] = (200, 201),
        attempts: int = 5,
    ) -> dict[str, Any]:
        assert self.session is not None
        data = json.dumps(body) if body is not None else None
        last = ""
        for attempt in range(attempts):
            async with (
                self.limit,
                self.session.request(
                    method,
                    path,
                    data=data,
                    headers=self._headers(user, content_type),
                    timeout=aiohttp.ClientTimeout(total=60),
                ) as response,
            ):
                text = await response.text()
                if response.status in ok:
                    result: dict[str, Any] = json.loads(text) if text else {}
                    return result
                last = f"{response.status}: {text[:300]}"
                if response.status not in (429, 500, 502, 503, 504, 409):
                    break
            await asyncio.sleep(0.1 * (attempt + 1))
        raise RuntimeError(f"{method} {path} as {user} failed: {last}")

    async def create(self, obj: dict[str, Any], *, user: str = "admin") -> dict[str, Any]:
        return await self.call("POST", collection_path(obj), obj, user=user, ok=(200, 201, 409))

    async def list(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self.call("GET", path)).get("items", [])
        return items

    async def gather(self, calls: Iterable[Awaitable[Any]]) -> list[Any]:
        return list(await asyncio.gather(*calls))


async def guard_only_labelled_namespaces(api: Api) -> None:
    """Give the image guard's webhooks the chart's default namespace selector (Kopf set none)."""
    path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/lockgate.dev"
    config = await api.call("GET", path)
    selector = {"matchExpressions": [{"key": "lockgate.dev/environment", "operator": "Exists"}]}
    guards = 0
    for webhook in config.get("webhooks") or []:
        if any("deployments" in (rule.get("resources") or []) for rule in webhook.get("rules") or []):
            webhook["namespaceSelector"] = selector
            guards += 1
    if not guards:
        raise RuntimeError(f"no image-guard webhook for deployments in {path}")
    await api.call("PUT", path, config)


def collection_path(obj: dict[str, Any]) -> str:
    api_version, kind = obj["apiVersion"], obj["kind"]
    namespace = obj.get("metadata", {}).get("namespace")
    plural = {
        "Promotion": "promotions",
        "Approval": "approvals",
        "GatePolicy": "gatepolicies",
        "Deployment": "deployments",
        "Namespace": "namespaces",
    }[kind]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    return f"{base}/{plural}"


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.25, what: str = "condition"
) -> float:
    """Poll ``check`` until true; returns the seconds it took. Raises TimeoutError with ``what``."""
    start = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise TimeoutError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


class OperatorProcess:
    """``lockgate run`` against the embedded API as its ServiceAccount, in a subprocess of its own."""

    def __init__(self, running: runner.RunningCluster, workdir: pathlib.Path, *, verbose: bool = False) -> None:
        self.running = running
        self.workdir = workdir
        self.verbose = verbose
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "operator.log"
        self.started_at = 0.0

    def start(self) -> OperatorProcess:
        env = dict(
            os.environ,
            LOCKGATE_WEBHOOK_PORT=str(free_port()),
            LOCKGATE_WEBHOOK_HOST="127.0.0.1",
            LOCKGATE_WEBHOOK_PUBLIC_HOST="127.0.0.1",
            LOCKGATE_METRICS_PORT="0",
            LOCKGATE_HEALTH_PORT="0",
            LOCKGATE_AUDIT_SQLITE_PATH=str(self.workdir / "audit.sqlite3"),
            LOCKGATE_LOG_FORMAT="text",
        )
        cmd = [
            str(pathlib.Path(sys.executable).parent / "lockgate"),
            "run",
            "--kubeconfig",
            str(self.running.kubeconfig),
            "--context",
            "lockgate-operator",
            "--standalone",
        ]
        profile = os.environ.get("LOCKGATE_BENCH_PROFILE")  # py-spy's collapsed stacks of the operator
        snapshots = os.environ.get("LOCKGATE_BENCH_TRACEMALLOC")  # tracemalloc snapshots on SIGUSR1 (`snapshot`)
        if snapshots:
            cmd = [
                sys.executable,
                "-X",
                f"tracemalloc={os.environ.get('LOCKGATE_BENCH_TRACEMALLOC_FRAMES', '25')}",
                "-c",
                _TRACED.format(prefix=snapshots),
                *cmd[1:],
            ]
        elif profile:
            spy = pathlib.Path(sys.executable).parent / "py-spy"
            cmd = [str(spy), "record", "--format", "raw", "--rate", "200", "-o", profile, "--", *cmd]
        self.started_at = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def snapshot(self) -> None:
        """With ``LOCKGATE_BENCH_TRACEMALLOC=<prefix>``: the operator writes ``<prefix>-<n>.tracemalloc`` now."""
        if os.environ.get("LOCKGATE_BENCH_TRACEMALLOC"):
            os.kill(self.pid, signal.SIGUSR1)
            time.sleep(5)  # taking and dumping a snapshot of ~100 MB takes a few seconds

    def memory_kb(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) of the operator process, in kB."""
        out: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in pathlib.Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU time of the operator process so far (robust to a busy machine)."""
        try:
            fields = pathlib.Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def webhooks_registered(self) -> bool:
        store = self.running.cluster.store
        try:
            found = store.get(("admissionregistration.k8s.io", "mutatingwebhookconfigurations"), "", "lockgate.dev")
        except Exception:
            return False
        return found is not None

    def wait_ready(self, timeout: float = 60) -> float:
        """Wait until the operator's webhook configuration points at it and its watches are open."""
        deadline = time.monotonic() + timeout
        since = len(self.running.cluster.requests)
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the operator exited ({self.proc.returncode}); see {self.log}")
            watches = {
                r.resource
                for r in self.running.cluster.requests[since:]
                if r.user == OPERATOR_USER and r.verb == "watch"
            }
            if {"promotions", "approvals", "deployments"} <= watches and self.webhooks_registered():
                return time.monotonic() - self.started_at
            time.sleep(0.05)
        raise TimeoutError(f"the operator did not become ready within {timeout}s; see {self.log}")

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # py-spy writes its profile on SIGINT (and passes it on); the operator stops on either.
        self.proc.send_signal(signal.SIGINT if os.environ.get("LOCKGATE_BENCH_PROFILE") else signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


# ``lockgate run`` with tracemalloc on, a snapshot dumped on each SIGUSR1 (memory investigations only).
_TRACED = """
import itertools, os, signal, sys, tracemalloc
_count = itertools.count()
def _dump(*_):
    tracemalloc.take_snapshot().dump("{prefix}-%d-%d.tracemalloc" % (os.getpid(), next(_count)))
signal.signal(signal.SIGUSR1, _dump)
sys.argv[0] = "lockgate"
from lockgate.cli.main import main
main()
"""


def operator_requests(running: runner.RunningCluster, since: int = 0) -> list[Any]:
    return [r for r in running.cluster.requests[since:] if r.user == OPERATOR_USER]


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[pathlib.Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield pathlib.Path(tmp)


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join([line, sep, *body])
