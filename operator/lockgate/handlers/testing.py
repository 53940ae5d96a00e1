"""A whole Lockgate for tests and benchmarks: the embedded API, the operator, an audit trail, kubectl."""

from __future__ import annotations

import json
import pathlib
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lockgate.audit import trail as audit_trail
from lockgate.audit.sinks import sqlite
from lockgate.devcluster import runner, testing
from lockgate.handlers import background


class Stack:
    """The embedded API with the operator running against it as its ServiceAccount."""

    def __init__(self, cluster: runner.RunningCluster, workdir: pathlib.Path) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.audit_path = workdir / "audit.sqlite3"
        self.operator: background.OperatorThread | None = None

    def trail(self) -> audit_trail.AuditTrail:
        return audit_trail.AuditTrail([sqlite.SqliteSink(self.audit_path)])

    def start_operator(self, **kw: Any) -> background.OperatorThread:
        self.operator = background.OperatorThread(kubeconfig=self.cluster.kubeconfig, audit_trail=self.trail(), **kw)
        return self.operator.start()

    def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.stop()
            self.operator = None

    def kubectl(
        self, *args: str, context: str = "admin", input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = testing.kubectl(self.cluster, *args, context=context, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def apply(self, manifest: str, context: str = "admin", check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", "-", context=context, input=manifest, check=check)

    def get(self, kind: str, name: str, namespace: str = "production") -> dict[str, Any]:
        out = self.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout
        result: dict[str, Any] = json.loads(out)
        return result

    def wait_for(
        self,
        what: Callable[[], Any],
        timeout: float = 20.0,
        interval: float = 0.1,
        message: str = "condition",
    ) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = what()
            except AssertionError as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {message}; last: {last!r}")

    def phase(self, name: str, namespace: str = "production") -> str:
        return str(self.get("promo", name, namespace).get("status", {}).get("phase", ""))

    def wait_phase(
        self, name: str, *phases: str, namespace: str = "production", timeout: float = 20.0
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            obj = self.get("promo", name, namespace)
            return obj if obj.get("status", {}).get("phase") in phases else None

        result: dict[str, Any] = self.wait_for(check, timeout, message=f"{name} in {phases}")
        return result

    def image(self, name: str = "web", namespace: str = "production", container: str = "web") -> str:
        obj = self.get("deployment", name, namespace)
        for c in obj["spec"]["template"]["spec"]["containers"]:
            if c["name"] == container:
                return str(c["image"])
        raise AssertionError(f"no container {container}")


@contextmanager
def stack(*, operator: bool = True, workload_delay: float = 0.2, **operator_kw: Any) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="lockgate-stack-") as tmp:
        workdir = pathlib.Path(tmp)
        with testing.running(
            crd_dir=testing.crd_dirs(), workload_delay=workload_delay, bookmark_interval=1.0
        ) as cluster:
            s = Stack(cluster, workdir)
            if operator:
                s.start_operator(**operator_kw)
            try:
                yield s
            finally:
                s.stop_operator()
