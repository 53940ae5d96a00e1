"""``lockgate demo`` (``make demo``): the whole Lockgate story on an in-process embedded API, told live.

A Promotion waits, a self-approval does not count, two approvers approve, the rollout happens and
is verified, a direct image change is refused, a bad release is rolled back, the audit chain
verifies, the auditor's questions are answered, and the gate latency is read from ``/metrics``.
Any failed step ends the demo with a clear message and exit status 1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shlex
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import kubernetes
import rich.console
import rich.markup
import rich.panel
import rich.rule
import rich.table
import typer
import yaml
from prometheus_client import parser

from lockgate import settings as lockgate_settings
from lockgate.cli import audit as audit_cli
from lockgate.cli import promotions
from lockgate.handlers import testing

NAMESPACE = "production"
DIGEST = "sha256:" + "4d1c" * 16
GOOD_IMAGE = f"registry.example/web:2.0@{DIGEST}"
BROKEN_IMAGE = "registry.example/web:2.0-broken"

POLICY = """\
apiVersion: lockgate.dev/v1alpha1
kind: GatePolicy
metadata: {name: production}
spec:
  namespaceSelector: {matchLabels: {lockgate.dev/environment: production}}
  approvals:
    rules:
    - {name: technical, groups: [engineering-leads], count: 1}
    - {name: security, groups: [security-leads], count: 1}
    forbidSelfApproval: true
    maxAge: 24h
  rules:
  - name: no-critical-vulnerabilities
    expression: promotion.spec.evidence.securityScan.critical == 0
    message: the image has critical vulnerabilities
  - name: integration-tests-passed
    expression: promotion.spec.evidence.integrationTests.status == 'Passed'
    message: integration tests must pass for this image
  audit: {retention: 7y}
"""

# For the story: alice also holds the `approve` permission in production, so what stops her approving
# her own change is the separation-of-duties rule, not RBAC.
ALICE_APPROVER = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-approver, namespace: production}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lockgate-approver}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
"""


def promotion_manifest(name: str, image: str, description: str, ticket: str) -> str:
    return f"""\
apiVersion: lockgate.dev/v1alpha1
kind: Promotion
metadata: {{name: {name}, namespace: {NAMESPACE}}}
spec:
  target: {{kind: Deployment, name: web, container: web}}
  image: "{image}"
  change:
    description: "{description}"
    ticket: {ticket}
    url: https://git.example/web/pull/{ticket.split("-")[-1]}
    author: alice
  evidence:
    securityScan: {{status: Passed, critical: 0, high: 1, reportUrl: "https://ci.example/scan/{ticket}"}}
    integrationTests: {{status: Passed, url: "https://ci.example/tests/{ticket}"}}
    sbom: {{licenses: [MIT, Apache-2.0]}}
  verification: {{timeout: 20s, rollbackOnFailure: true}}
"""


class StepFailed(Exception):
    """A step of the story did not happen as told."""


@dataclasses.dataclass
class Step:
    title: str
    seconds: float
    ok: bool


class Demo:
    """The running stack, the narrator's console, and the user actions of the story."""

    def __init__(self, out: rich.console.Console, stack: testing.Stack, metrics_port: int) -> None:
        self.out = out
        self.stack = stack
        self.metrics_port = metrics_port
        self.kubeconfig = stack.cluster.kubeconfig
        self.kubectl_bin = shutil.which("kubectl")
        self.steps: list[Step] = []

    # -- narration -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.out.print()
        self.out.print(rich.rule.Rule(f"[bold]{len(self.steps) + 1}. {title}", align="left"))
        started = time.monotonic()
        try:
            yield
        except (StepFailed, AssertionError, kubernetes.client.ApiException, OSError) as exc:
            self.steps.append(Step(title, time.monotonic() - started, False))
            raise StepFailed(f"step {len(self.steps)} ({title}) failed: {' '.join(str(exc).split())}") from exc
        self.steps.append(Step(title, time.monotonic() - started, True))

    def say(self, text: str) -> None:
        self.out.print(f"[italic]{text}[/]")

    def command(self, line: str) -> None:
        self.out.print(f"[bold green]$[/] [bold]{line}[/]")

    def ok(self, text: str) -> None:
        self.out.print(f"[green]✔[/] {text}")

    # -- kubectl, or the Python client when kubectl is not installed --------------------------------
    def kubectl(self, *args: str, context: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        assert self.kubectl_bin is not None
        self.command(f"kubectl --context {context} {shlex.join(args)}" + (" <<EOF ... EOF" if input else ""))
        result = subprocess.run(
            [self.kubectl_bin, "--context", context, *args],
            env=dict(
                os.environ, KUBECONFIG=str(self.kubeconfig), KUBECACHEDIR=str(self.kubeconfig.parent / "kube-cache")
            ),
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        for line in (result.stdout + result.stderr).rstrip().splitlines():
            self.out.print(f"  [dim]{rich.markup.escape(line)}[/]")
        return result

    def client(self, context: str) -> kubernetes.client.ApiClient:
        return promotions.connect(self.kubeconfig, context, NAMESPACE).client

    def apply(self, manifest: str, context: str) -> None:
        doc = yaml.safe_load(manifest)
        if self.kubectl_bin:
            result = self.kubectl("apply", "-f", "-", context=context, input=manifest)
            if result.returncode != 0:
                raise StepFailed(f"kubectl apply as {context}: {result.stderr.strip()}")
            return
        self.command(f"(python client as {context}) create {doc['kind']} {doc['metadata']['name']}")
        with contextlib.closing(self.client(context)) as api:
            if doc["kind"] == "RoleBinding":
                kubernetes.client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(NAMESPACE, doc)
            else:
                self._create_custom(api, doc)

    @staticmethod
    def _create_custom(api: kubernetes.client.ApiClient, doc: dict[str, Any]) -> None:
        group, version = doc["apiVersion"].split("/")
        plural = doc["kind"].lower() + ("ies" if doc["kind"].endswith("y") else "s")
        custom = kubernetes.client.CustomObjectsApi(api)
        if doc["kind"] == "GatePolicy":
            custom.create_cluster_custom_object(group, version, "gatepolicies", doc)
        else:
            custom.create_namespaced_custom_object(group, version, doc["metadata"]["namespace"], plural, doc)

    def deployment(self) -> dict[str, Any]:
        with contextlib.closing(self.client("admin")) as api:
            obj = kubernetes.client.AppsV1Api(api).read_namespaced_deployment("web", NAMESPACE)
            return promotions._dict(api.sanitize_for_serialization(obj))  # type: ignore[no-untyped-call]

    def image(self) -> str:
        return str(self.deployment()["spec"]["template"]["spec"]["containers"][0]["image"])

    def rollout_status(self) -> None:
        if self.kubectl_bin:
            result = self.kubectl(
                "rollout", "status", "deployment/web", "-n", NAMESPACE, "--timeout=30s", context="bob"
            )
            if "successfully rolled out" not in result.stdout:
                raise StepFailed(f"the rollout did not complete: {result.stdout.strip()} {result.stderr.strip()}")
            return
        self.command("(python client) wait until deployment/web is rolled out")

        def rolled_out() -> bool:
            d = self.deployment()
            spec, status = d["spec"], d.get("status") or {}
            return bool(
                status.get("observedGeneration", 0) >= d["metadata"]["generation"]
                and status.get("updatedReplicas") == status.get("availableReplicas") == spec.get("replicas")
            )

        self.wait(rolled_out, "deployment/web to roll out", 30)
        self.out.print('  [dim]deployment "web" successfully rolled out[/]')

    def set_image_directly(self) -> str:
        """alice changes production's image herself; returns the refusal."""
        if self.kubectl_bin:
            result = self.kubectl(
                "set", "image", "deployment/web", "web=registry.example/web:6.6.6", "-n", NAMESPACE, context="alice"
            )
            if result.returncode == 0:
                raise StepFailed("a direct image change in production was allowed")
            return result.stderr
        self.command("(python client as alice) patch deployment/web image=registry.example/web:6.6.6")
        patch = {
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "registry.example/web:6.6.6"}]}}}
        }
        with contextlib.closing(self.client("alice")) as api:
            try:
                kubernetes.client.AppsV1Api(api).patch_namespaced_deployment("web", NAMESPACE, patch)
            except kubernetes.client.ApiException as exc:
                self.out.print(f"  [dim]{promotions._api_message(exc)}[/]")
                return promotions._api_message(exc)
        raise StepFailed("a direct image change in production was allowed")

    # -- lockgate commands, as the user would type them ---------------------------------------------
    def lockgate(self, line: str) -> None:
        self.command(f"kubectl lockgate {line}")

    def promotion(self, name: str) -> dict[str, Any]:
        with contextlib.closing(promotions.connect(self.kubeconfig, "admin", NAMESPACE)) as s:
            return s.promotion(name)

    def status(self, name: str, context: str) -> None:
        self.lockgate(f"status {name} -n {NAMESPACE} --context {context}")
        with contextlib.closing(promotions.connect(self.kubeconfig, context, NAMESPACE)) as s:
            promo = s.promotion(name)
            for part in promotions.status_renderables(promo, s.events(name, NAMESPACE)):
                self.out.print(part)

    def explain(self, name: str, context: str) -> None:
        self.lockgate(f"explain {name} -n {NAMESPACE} --context {context}")
        with contextlib.closing(promotions.connect(self.kubeconfig, context, NAMESPACE)) as s:
            for sentence in promotions.explain_sentences(s.promotion(name), s.events(name, NAMESPACE)):
                self.out.print(f"  {sentence}")

    def approve(self, name: str, context: str, comment: str) -> dict[str, Any]:
        self.lockgate(f"approve {name} -n {NAMESPACE} --context {context} --comment {shlex.quote(comment)}")
        with contextlib.closing(promotions.connect(self.kubeconfig, context, NAMESPACE)) as s:
            approval, promo = promotions.decide(s, name, "Approve", comment, None, wait=15)
        for line in promotions.report_decision(approval, promo):
            self.out.print(f"  {line}")
        if not (approval.get("status") or {}).get("reason"):
            raise StepFailed(f"the operator did not judge {context}'s approval within 15s")
        return approval

    def wait(self, what: Callable[[], Any], message: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = what()
            if result:
                return result
            time.sleep(0.2)
        raise StepFailed(f"timed out after {timeout:.0f}s waiting for {message}")

    def wait_phase(self, name: str, *phases: str, timeout: float = 30) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            promo = self.promotion(name)
            return promo if (promo.get("status") or {}).get("phase") in phases else None

        try:
            result: dict[str, Any] = self.wait(reached, f"{name} to be {' or '.join(phases)}", timeout)
        except StepFailed:
            status = self.promotion(name).get("status") or {}
            raise StepFailed(
                f"{name} is {status.get('phase')} ({status.get('message')}), expected {' or '.join(phases)}"
            ) from None
        return result

    def metrics(self) -> dict[str, list[Any]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return {f.name: list(f.samples) for f in parser.text_string_to_metric_families(text)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def story(demo: Demo) -> None:
    """The steps of the story, in order."""
    say = demo.say
    with demo.step("A production policy: two approvers from different teams, evidence rules"):
        say("The platform team (admin) gates every namespace labelled lockgate.dev/environment=production.")
        demo.apply(POLICY, context="admin")
        demo.apply(ALICE_APPROVER, context="admin")
        say(
            "alice is given the approve permission in production too: the gate still must not let her "
            "approve her own change (separation of duties, NIST 800-53 CM-5)."
        )

    with demo.step("alice requests a release; the Promotion waits for approvals"):
        demo.apply(promotion_manifest("web-2", GOOD_IMAGE, "Release 2.0: faster checkout", "CHG-2001"), "alice")
        promo = demo.wait_phase("web-2", "AwaitingApproval")
        if demo.kubectl_bin:
            demo.kubectl("get", "promo", "-n", NAMESPACE, context="alice")
        demo.status("web-2", context="bob")
        if "engineering-leads" not in promo["status"]["message"]:
            raise StepFailed(f"unexpected wait: {promo['status']['message']}")
        demo.ok(f"web-2 waits for: {promo['status']['message']}")

    with demo.step("alice approves her own change: listed, not counted"):
        approval = demo.approve("web-2", "alice", "LGTM (my own change)")
        reason = approval["status"].get("reason")
        if approval["status"].get("counted") or reason not in ("SelfApproval", "AuthorApproval"):
            raise StepFailed(
                f"alice's self-approval was judged {reason!r}, counted={approval['status'].get('counted')}"
            )
        demo.ok(f"refused as {reason}: {approval['status'].get('message')}")

    with demo.step("bob (engineering lead) and carol (security lead) approve"):
        bob = demo.approve("web-2", "bob", "reviewed the diff and the test run")
        carol = demo.approve("web-2", "carol", "scan report reviewed: 0 critical, 1 high (accepted)")
        if not (bob["status"].get("counted") and carol["status"].get("counted")):
            raise StepFailed("bob's and carol's approvals should both count")
        demo.ok("2 of 2 required approvals counted; the operator records the decision, then deploys")

    with demo.step("The rollout happens and is verified"):
        promo = demo.wait_phase("web-2", "Succeeded", "Failed", "RolledBack", timeout=40)
        if promo["status"]["phase"] != "Succeeded":
            raise StepFailed(f"web-2 ended {promo['status']['phase']}: {promo['status'].get('message')}")
        demo.rollout_status()
        image = demo.image()
        if image != GOOD_IMAGE:
            raise StepFailed(f"production runs {image}, expected {GOOD_IMAGE}")
        demo.ok(
            f"production runs {image}; gate latency {promo['status'].get('gateLatencySeconds')}s; "
            f"approved by {demo.deployment()['metadata']['annotations'].get('lockgate.dev/approved-by')}"
        )

    with demo.step("Nobody changes production around the gate"):
        say("alice tries `kubectl set image` in production directly:")
        refusal = demo.set_image_directly()
        if demo.image() != GOOD_IMAGE:
            raise StepFailed("the image changed without an approved Promotion")
        demo.ok(f"refused at admission: {' '.join(refusal.split())[:160]}")

    with demo.step("A bad release is approved, fails verification and is rolled back"):
        demo.apply(promotion_manifest("web-3", BROKEN_IMAGE, "Release 2.0.1: new cache", "CHG-2002"), "alice")
        demo.wait_phase("web-3", "AwaitingApproval")
        demo.approve("web-3", "bob", "looks fine")
        demo.approve("web-3", "carol", "scan is clean")
        say("The new pods never become ready; the operator waits for the verification deadline...")
        promo = demo.wait_phase("web-3", "RolledBack", "Failed", "Succeeded", timeout=60)
        if promo["status"]["phase"] != "RolledBack":
            raise StepFailed(f"web-3 ended {promo['status']['phase']}, expected RolledBack")
        demo.explain("web-3", context="bob")
        if demo.image() != GOOD_IMAGE:
            raise StepFailed(f"production runs {demo.image()} after the rollback, expected {GOOD_IMAGE}")
        demo.ok(f"rolled back: production runs {GOOD_IMAGE} again")

    with demo.step("The audit chain verifies"):
        demo.command(f"lockgate audit verify --sqlite {demo.stack.audit_path}")
        try:
            audit_cli.verify(stream=None, sqlite=demo.stack.audit_path, output=audit_cli.Output.table)
        except typer.Exit as exc:
            raise StepFailed("lockgate audit verify reports a broken chain") from exc
        demo.ok("every record is chained to the one before it; edits, deletions and reordering would be named")

    with demo.step("The auditor's questions, answered from the records"):
        demo.command(f"lockgate audit evidence {NAMESPACE}/web-2 --sqlite {demo.stack.audit_path}")
        try:
            audit_cli.evidence_cmd(
                promotion=f"{NAMESPACE}/web-2", sqlite=demo.stack.audit_path, output=audit_cli.Output.table
            )
        except typer.Exit as exc:
            raise StepFailed("lockgate audit evidence says a control is not satisfied") from exc
        demo.ok("reviewed by a qualified person, explicitly approved, with identity and time, nothing before it")

    with demo.step("Gate latency from /metrics"):
        demo.command(f"curl -s http://127.0.0.1:{demo.metrics_port}/metrics | grep lockgate_gate_latency_seconds")
        families = demo.metrics()
        histogram = families.get("lockgate_gate_latency_seconds", [])
        count = sum(s.value for s in histogram if s.name.endswith("_count"))
        total = sum(s.value for s in histogram if s.name.endswith("_sum"))
        if count < 2:
            raise StepFailed(f"lockgate_gate_latency_seconds_count is {count}, expected 2 approved promotions")
        table = rich.table.Table(title="lockgate_gate_latency_seconds (ready for approval -> approved)")
        table.add_column("le (seconds)", justify="right")
        table.add_column("promotions", justify="right")
        for sample in histogram:
            if sample.name.endswith("_bucket") and sample.labels.get("le") in ("1.0", "5.0", "60.0", "3600.0", "+Inf"):
                table.add_row(sample.labels["le"], f"{sample.value:.0f}")
        demo.out.print(table)
        counters = rich.table.Table(title="Other counters")
        counters.add_column("metric")
        counters.add_column("labels")
        counters.add_column("value", justify="right")
        for name in ("lockgate_promotions", "lockgate_rollbacks", "lockgate_approvals", "lockgate_audit_writes"):
            for sample in families.get(name, []):
                if sample.name.endswith("_total"):
                    labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                    counters.add_row(sample.name, labels, f"{sample.value:.0f}")
        demo.out.print(counters)
        demo.ok(f"{count:.0f} promotions passed the gate, {total / count:.2f}s on average")


def summary(out: rich.console.Console, steps: list[Step], started: float, error: str | None) -> None:
    table = rich.table.Table(title="Lockgate demo summary", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("result")
    table.add_column("time", justify="right")
    for i, s in enumerate(steps, 1):
        table.add_row(str(i), s.title, "[green]ok[/]" if s.ok else "[red]FAILED[/]", f"{s.seconds:.1f}s")
    out.print()
    out.print(table)
    elapsed = time.monotonic() - started
    if error:
        out.print(rich.panel.Panel(f"[bold red]demo failed[/] after {elapsed:.0f}s: {error}", expand=False))
    else:
        out.print(
            rich.panel.Panel(
                f"[bold green]Lockgate demo passed[/]: {len(steps)} steps in {elapsed:.0f}s.\n"
                "Next: `lockgate dev --kubeconfig /tmp/kc` and try it yourself (see README.md).",
                expand=False,
            )
        )


def demo(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show the operator's own log.")] = False,
) -> None:
    """Tell the whole Lockgate story on an embedded Kubernetes API (no cluster needed), in under two minutes."""
    out = rich.console.Console(highlight=False)
    if not out.is_terminal:
        out = rich.console.Console(highlight=False, width=120)
    if not verbose:  # the story is told here; the operator's log would interleave on stderr
        for name in ("kopf", "lockgate", "aiohttp"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    started = time.monotonic()
    port = _free_port()
    settings = lockgate_settings.OperatorSettings(
        standalone=True,
        metrics_host="127.0.0.1",
        metrics_port=port,
        health_port=0,
        webhook_port=0,
        webhook_host="127.0.0.1",
        webhook_public_host="127.0.0.1",
    )
    out.print(
        rich.panel.Panel("[bold]Lockgate[/]: an auditable approval gate in front of production rollouts", expand=False)
    )
    out.print("[italic]Starting the embedded Kubernetes API and the Lockgate operator in this process...[/]")
    error: str | None = None
    steps: list[Step] = []
    try:
        with testing.stack(settings=settings) as stack:
            d = Demo(out, stack, port)
            steps = d.steps
            out.print(f"API {stack.cluster.url}; kubeconfig {stack.cluster.kubeconfig}")
            out.print("contexts: admin, alice (engineers), bob (engineering-leads), carol (security-leads), mallory")
            out.print(f"metrics http://127.0.0.1:{port}/metrics; audit trail {stack.audit_path}")
            if d.kubectl_bin is None:
                out.print("[yellow]kubectl is not on PATH: the kubectl steps use the Kubernetes Python client[/]")
            story(d)
    except StepFailed as exc:
        error = str(exc)
    except (RuntimeError, TimeoutError, OSError) as exc:
        error = f"the embedded API or the operator did not start: {' '.join(str(exc).split())}"
    summary(out, steps, started, error)
    if error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command("demo")(demo)
