"""``lockgate list|status|approve|reject|explain``: the approver's and requester's view of Promotions.

They talk to the API as the user of a kubeconfig context, like kubectl (``--kubeconfig``,
``--context``, ``-n``), print rich tables or ``-o json|yaml``, and report any failure as one line
on stderr with exit status 1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import json
import os
import pathlib
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Annotated, Any, NoReturn

import kubernetes
import rich.console
import rich.table
import rich.text
import typer
import urllib3
import yaml

GROUP, VERSION = "lockgate.dev", "v1alpha1"
TERMINAL = ("Succeeded", "Failed", "RolledBack", "Rejected", "Superseded")
WAITING = ("Pending", "AwaitingApproval")


class Output(enum.StrEnum):
    """Output formats: tables for people, json or yaml for scripts."""

    table = "table"
    json = "json"
    yaml = "yaml"


class CliError(Exception):
    """A failure to report as one line."""


KubeconfigOption = Annotated[
    pathlib.Path | None,
    typer.Option("--kubeconfig", help="Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
]
ContextOption = Annotated[str | None, typer.Option("--context", help="The kubeconfig context to use.")]
NamespaceOption = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's namespace).")
]
OutputOption = Annotated[Output, typer.Option("--output", "-o", help="table, json or yaml.")]
PromotionArgument = Annotated[str, typer.Argument(help="The Promotion's name.")]


# -- talking to the API ---------------------------------------------------------------------------


@dataclasses.dataclass
class Session:
    """An API client for one kubeconfig context, its default namespace and its user's name."""

    client: kubernetes.client.ApiClient
    namespace: str
    user: str

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.client)

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.client)

    def promotion(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        ns = namespace or self.namespace
        try:
            result = _dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "promotions", name))
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                raise CliError(f'promotion "{name}" not found in namespace "{ns}"') from None
            raise
        return result

    def promotions(self, namespace: str | None) -> list[dict[str, Any]]:
        if namespace is None:
            listing = _dict(self.custom.list_cluster_custom_object(GROUP, VERSION, "promotions"))
        else:
            listing = _dict(self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "promotions"))
        return list(listing.get("items") or [])

    def approval(self, name: str, namespace: str) -> dict[str, Any]:
        return _dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "approvals", name))

    def create_approval(self, body: Mapping[str, Any], namespace: str) -> dict[str, Any]:
        return _dict(self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "approvals", dict(body)))

    def events(self, name: str, namespace: str) -> list[Any]:
        """Events about the Promotion, oldest first (empty when the user may not read events)."""
        try:
            listing = self.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
        except kubernetes.client.ApiException:
            return []
        items = [e for e in listing.items if (e.involved_object.kind or "Promotion") == "Promotion"]
        return sorted(items, key=lambda e: _event_time(e) or datetime.datetime.min.replace(tzinfo=datetime.UTC))

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _kubeconfig_path(kubeconfig: pathlib.Path | None) -> pathlib.Path:
    if kubeconfig is not None:
        candidates = [kubeconfig]
    elif os.environ.get("KUBECONFIG"):
        candidates = [pathlib.Path(p) for p in os.environ["KUBECONFIG"].split(os.pathsep) if p]
    else:
        candidates = [pathlib.Path.home() / ".kube" / "config"]
    for path in candidates:
        if path.expanduser().is_file():
            return path.expanduser()
    raise CliError(
        f"no kubeconfig at {', '.join(str(p) for p in candidates)}: pass --kubeconfig or set KUBECONFIG "
        "(`lockgate dev` writes one)"
    )


def connect(kubeconfig: pathlib.Path | None, context: str | None, namespace: str | None) -> Session:
    """Load a kubeconfig context the way kubectl does."""
    path = _kubeconfig_path(kubeconfig)
    try:
        contexts, active = kubernetes.config.list_kube_config_contexts(config_file=str(path))  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException as exc:
        raise CliError(f"kubeconfig {path}: {exc}") from None
    by_name = {c["name"]: c for c in contexts or []}
    chosen = by_name.get(context) if context else active
    if chosen is None:
        raise CliError(f"kubeconfig {path} has no context {context!r}; it has: {', '.join(sorted(by_name))}")
    details = chosen.get("context") or {}
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path), context=chosen["name"], client_configuration=configuration
        )
    except kubernetes.config.ConfigException as exc:
        raise CliError(f"kubeconfig {path}, context {chosen['name']!r}: {exc}") from None
    configuration.retries = 1
    return Session(
        client=kubernetes.client.ApiClient(configuration),
        namespace=namespace or details.get("namespace") or "default",
        user=str(details.get("user") or chosen["name"]),
    )


def _api_message(exc: kubernetes.client.ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"the API answered {exc.status} {exc.reason or ''}".strip()


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextlib.contextmanager
def session(kubeconfig: pathlib.Path | None, context: str | None, namespace: str | None) -> Iterator[Session]:
    """A connected Session; any API, connection or kubeconfig failure becomes one line and exit 1."""
    s: Session | None = None
    try:
        s = connect(kubeconfig, context, namespace)
        yield s
    except CliError as exc:
        fail(str(exc))
    except kubernetes.client.ApiException as exc:
        fail(_api_message(exc))
    except urllib3.exceptions.HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        where = s.client.configuration.host if s is not None else "the API"
        fail(f"cannot reach the Kubernetes API at {where}: {' '.join(str(reason).split())}")
    finally:
        if s is not None:
            s.close()


# -- reading a Promotion ----------------------------------------------------------------------------


def _time(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _event_time(event: Any) -> datetime.datetime | None:
    for value in (event.last_timestamp, event.event_time, event.first_timestamp, event.metadata.creation_timestamp):
        when = _time(value)
        if when is not None:
            return when
    return None


def duration(seconds: float) -> str:
    """``42s``, ``3m12s``, ``2h05m``, ``3d04h``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s" if seconds >= 1 or seconds == 0 else f"{seconds:.1f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def time_in_gate(status: Mapping[str, Any]) -> str:
    """How long the Promotion waited (or has been waiting) for approval."""
    if status.get("gateLatencySeconds") is not None:
        return f"{duration(float(status['gateLatencySeconds']))} (ready for approval -> approved)"
    ready = _time(status.get("readyForApprovalAt"))
    if ready is None:
        return "not in the gate yet"
    if status.get("phase") in TERMINAL:
        return f"left the gate {status.get('phase')} (was ready for approval at {status['readyForApprovalAt']})"
    return f"{duration((_now() - ready).total_seconds())} so far (ready for approval at {status['readyForApprovalAt']})"


def age(obj: Mapping[str, Any]) -> str:
    created = _time(obj.get("metadata", {}).get("creationTimestamp"))
    return duration((_now() - created).total_seconds()) if created else ""


def requester(status: Mapping[str, Any]) -> str:
    by = status.get("requestedBy") or {}
    if not by.get("username"):
        return ""
    groups = [g for g in by.get("groups") or [] if not g.startswith("system:")]
    return f"{by['username']} ({', '.join(groups)})" if groups else str(by["username"])


def waits_for(promo: Mapping[str, Any]) -> str:
    """One sentence: what the Promotion waits for, or where it ended."""
    status = promo.get("status") or {}
    phase = status.get("phase") or "Pending"
    message = str(status.get("message") or "")
    if not status:
        return "the operator has not looked at it yet"
    if phase in WAITING:
        return message or "the operator's next evaluation"
    return f"nothing: it is {phase}{f' ({message})' if message else ''}"


def target(spec: Mapping[str, Any]) -> str:
    t = spec.get("target") or {}
    container = f", container {t['container']}" if t.get("container") else ""
    return f"{t.get('kind', 'Deployment')}/{t.get('name', '?')}{container}"


def evidence_rows(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    ev = spec.get("evidence") or {}
    rows: list[tuple[str, str]] = []
    scan = ev.get("securityScan")
    if scan:
        rows.append(
            (
                "security scan",
                f"{scan.get('status', '?')}, critical {scan.get('critical', '?')}, high {scan.get('high', '?')}"
                + (f"  {scan['reportUrl']}" if scan.get("reportUrl") else ""),
            )
        )
    tests = ev.get("integrationTests")
    if tests:
        rows.append(
            ("integration tests", f"{tests.get('status', '?')}" + (f"  {tests['url']}" if tests.get("url") else ""))
        )
    sbom = ev.get("sbom")
    if sbom:
        licenses = ", ".join(sbom.get("licenses") or []) or "none listed"
        rows.append(("SBOM", f"licences: {licenses}" + (f"  {sbom['url']}" if sbom.get("url") else "")))
    return rows


def change_line(spec: Mapping[str, Any]) -> str:
    change = spec.get("change") or {}
    parts = [str(change[k]) for k in ("description", "ticket", "url") if change.get(k)]
    return " · ".join(parts) or "(no change description)"


def verdict(item: Mapping[str, Any]) -> str:
    """Why an approval counted or did not."""
    message = str(item.get("message") or "")
    reason = str(item.get("reason") or "")
    if item.get("counted"):
        return message or f"counts for {item.get('rule', '')}"
    return f"{message} ({reason})" if reason and reason not in message else message or reason or "not judged yet"


# -- rendering ---------------------------------------------------------------------------------------


def console() -> rich.console.Console:
    out = rich.console.Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out = rich.console.Console(highlight=False, soft_wrap=True, width=1000)  # pipes: one line per row
    return out


def dump(data: Any, output: Output) -> None:
    if output is Output.json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())


def list_table(items: Sequence[Mapping[str, Any]], all_namespaces: bool) -> rich.table.Table:
    table = rich.table.Table(box=None, header_style="bold", pad_edge=False)
    columns = ["NAMESPACE"] if all_namespaces else []
    columns += ["NAME", "PHASE", "TARGET", "IMAGE", "APPROVALS", "REQUESTED BY", "IN GATE", "AGE", "WAITING FOR"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for promo in items:
        meta, spec, status = promo.get("metadata", {}), promo.get("spec") or {}, promo.get("status") or {}
        gate = ""
        if status.get("gateLatencySeconds") is not None:
            gate = duration(float(status["gateLatencySeconds"]))
        elif (ready := _time(status.get("readyForApprovalAt"))) and status.get("phase") not in TERMINAL:
            gate = duration((_now() - ready).total_seconds())
        row = [meta.get("namespace", "")] if all_namespaces else []
        row += [
            meta.get("name", ""),
            status.get("phase") or "Pending",
            target(spec).split(",")[0],
            str(spec.get("image", "")),
            str(status.get("approvalsSummary") or ""),
            (status.get("requestedBy") or {}).get("username", ""),
            gate,
            age(promo),
            str(status.get("message") or "") if status.get("phase") in WAITING else "",
        ]
        table.add_row(*row)
    return table


def status_renderables(promo: Mapping[str, Any], events: Sequence[Any] = ()) -> Iterator[Any]:
    meta, spec, status = promo.get("metadata", {}), promo.get("spec") or {}, promo.get("status") or {}
    phase = status.get("phase") or "Pending"
    title = rich.text.Text.assemble(
        ("Promotion ", "bold"), (f"{meta.get('namespace')}/{meta.get('name')}", "bold cyan"), "  ", (phase, "bold")
    )
    yield title
    facts = rich.table.Table(show_header=False, box=None, pad_edge=False)
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    facts.add_row("target", target(spec))
    facts.add_row("image", str(spec.get("image", "")))
    if status.get("previousImage"):
        facts.add_row("previous image", str(status["previousImage"]))
    facts.add_row("change", change_line(spec))
    if (spec.get("change") or {}).get("author"):
        facts.add_row("author", str(spec["change"]["author"]))
    facts.add_row("requested by", requester(status) or "(not stamped yet)")
    facts.add_row("spec hash", str(status.get("specHash") or "(not evaluated yet)"))
    facts.add_row("approvals", f"{status.get('countedApprovals', 0)} of {status.get('requiredApprovals', '?')} counted")
    facts.add_row("time in gate", time_in_gate(status))
    if spec.get("emergency"):
        facts.add_row("emergency", str((spec.get("emergency") or {}).get("justification", "")))
    yield facts
    yield rich.text.Text.assemble(("Waiting for: ", "bold yellow" if phase in WAITING else "bold"), waits_for(promo))
    gates = status.get("gates") or []
    if gates:
        table = rich.table.Table(title="Gates", title_justify="left", box=None, header_style="bold", pad_edge=False)
        for column in ("GATE", "KIND", "RESULT", "WHY"):
            table.add_column(column, overflow="fold")
        for gate in gates:
            table.add_row(
                str(gate.get("name", "")),
                str(gate.get("kind", "")),
                "[green]passed[/]" if gate.get("passed") else "[red]held[/]",
                str(gate.get("message") or gate.get("reason") or ""),
            )
        yield table
    approvals = status.get("approvals") or []
    table = rich.table.Table(title="Approvals", title_justify="left", box=None, header_style="bold", pad_edge=False)
    for column in ("APPROVAL", "APPROVER", "GROUPS", "DECISION", "COUNTED", "WHY"):
        table.add_column(column, overflow="fold")
    for item in approvals:
        table.add_row(
            str(item.get("approval", "")),
            str(item.get("approver", "")),
            ", ".join(g for g in item.get("groups") or [] if not g.startswith("system:")),
            str(item.get("decision", "")),
            "[green]yes[/]" if item.get("counted") else "[red]no[/]",
            verdict(item),
        )
    yield table if approvals else rich.text.Text("Approvals: none yet", style="bold")
    rows = evidence_rows(spec)
    if rows:
        table = rich.table.Table(title="Evidence", title_justify="left", box=None, header_style="bold", pad_edge=False)
        table.add_column("CLAIM")
        table.add_column("VALUE", overflow="fold")
        for row in rows:
            table.add_row(*row)
        yield table
    if events:
        table = rich.table.Table(title="Events", title_justify="left", box=None, header_style="bold", pad_edge=False)
        for column in ("AGE", "REASON", "MESSAGE"):
            table.add_column(column, overflow="fold")
        for event in events[-8:]:
            when = _event_time(event)
            table.add_row(
                duration((_now() - when).total_seconds()) if when else "", event.reason or "", event.message or ""
            )
        yield table


def explain_sentences(promo: Mapping[str, Any], events: Sequence[Any] = ()) -> list[str]:
    """Why the Promotion is where it is, in sentences."""
    meta, spec, status = promo.get("metadata", {}), promo.get("spec") or {}, promo.get("status") or {}
    name, namespace = meta.get("name"), meta.get("namespace")
    phase = status.get("phase") or "Pending"
    out: list[str] = []
    who = (status.get("requestedBy") or {}).get("username") or "someone"
    out.append(
        f"{who} requested Promotion {namespace}/{name} at {meta.get('creationTimestamp')}: "
        f"set {target(spec)} to {spec.get('image')} ({change_line(spec)})."
    )
    if not status:
        out.append("The operator has not evaluated it yet: is the Lockgate operator running?")
        return out
    out.append(f"It is {phase}: {status.get('message') or 'no message'}.")
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    gates = status.get("gates") or []
    held = [g for g in gates if not g.get("passed")]
    rules = [g for g in gates if str(g.get("kind", "")).lower() == "rule"]
    if rules and not any(not g.get("passed") for g in rules):
        out.append(f"Every policy rule passed ({len(rules)} rules).")
    for gate in held:
        out.append(f"Gate {gate.get('name')} holds it ({gate.get('reason')}): {gate.get('message')}.")
    approvals = status.get("approvals") or []
    counted = [a for a in approvals if a.get("counted")]
    required = status.get("requiredApprovals")
    if required is not None:
        names = ", ".join(f"{a.get('approver')} ({a.get('rule') or 'counted'})" for a in counted) or "none"
        out.append(f"{len(counted)} of {required} required approvals count: {names}.")
    for item in approvals:
        if not item.get("counted"):
            out.append(
                f"{item.get('approver') or '?'}'s {str(item.get('decision') or 'approval').lower()} "
                f"{item.get('approval')} does not count: {verdict(item)}."
            )
    if status.get("gateLatencySeconds") is not None:
        out.append(
            f"It was approved at {status.get('approvedAt')} after {duration(float(status['gateLatencySeconds']))} "
            "in the gate."
        )
    elif phase in WAITING and status.get("readyForApprovalAt"):
        out.append(f"It has been in the gate for {time_in_gate(status)}.")
    for kind in ("Deployed", "Verified", "AuditRecorded"):
        c = conditions.get(kind)
        if c:
            state = "yes" if c.get("status") == "True" else "no"
            out.append(f"{kind}: {state} ({c.get('reason')}): {c.get('message')}.")
    if phase == "RolledBack":
        out.append(f"The rollout failed verification, so the operator restored {status.get('previousImage')}.")
    if phase in WAITING and held:
        out.append(f"Next: {next_step(promo)}")
    for event in events[-5:]:
        out.append(f"Event {event.reason} at {_event_time(event)}: {event.message}")
    return [" ".join(s.split()) for s in out]


def next_step(promo: Mapping[str, Any]) -> str:
    meta, status = promo.get("metadata", {}), promo.get("status") or {}
    held = [g for g in status.get("gates") or [] if not g.get("passed")]
    if any(str(g.get("kind", "")).lower() == "approvals" for g in held):
        return (
            f"an approver named above runs `kubectl lockgate approve {meta.get('name')} -n {meta.get('namespace')}` "
            "after reviewing it."
        )
    return "fix what the held gates name (a new spec starts a new cycle), or wait for the time gate."


# -- approving ----------------------------------------------------------------------------------------


def approval_name(promotion: str, user: str) -> str:
    """``<promotion>-<user>-<random>``, a valid object name."""
    clean = re.sub(r"[^a-z0-9-]+", "-", user.lower()).strip("-") or "user"
    suffix = secrets.token_hex(3)
    base = f"{promotion}-{clean}"[: 253 - len(suffix) - 1].rstrip("-.")
    return f"{base}-{suffix}"


def decide(
    s: Session,
    name: str,
    decision: str,
    comment: str | None,
    seen_hash: str | None,
    wait: float,
    purpose: str = "Change",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create an Approval bound to the spec hash the approver saw; return it (judged, if in time) and the promotion."""
    promo = s.promotion(name)
    namespace = promo["metadata"]["namespace"]
    status = promo.get("status") or {}
    current = status.get("specHash")
    if not current:
        raise CliError(f'promotion "{name}" has not been evaluated by the operator yet (no status.specHash); retry')
    if seen_hash and seen_hash != current:
        raise CliError(
            f'the spec of promotion "{name}" changed since you reviewed it (you saw {seen_hash}, it is now {current}); '
            f"review it again with `kubectl lockgate status {name} -n {namespace}`"
        )
    phase = status.get("phase")
    if phase in TERMINAL and purpose == "Change":
        raise CliError(f'promotion "{name}" is {phase}: there is nothing to {decision.lower()}')
    spec: dict[str, Any] = {"promotion": name, "decision": decision, "specHash": current, "purpose": purpose}
    if comment:
        spec["comment"] = comment
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Approval",
        "metadata": {"name": approval_name(name, s.user), "namespace": namespace},
        "spec": spec,
    }
    created = s.create_approval(body, namespace)
    judged = created
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        judged = s.approval(created["metadata"]["name"], namespace)
        if (judged.get("status") or {}).get("reason"):
            break
        time.sleep(0.2)
    return judged, s.promotion(name, namespace)


def report_decision(approval: Mapping[str, Any], promo: Mapping[str, Any]) -> list[str]:
    spec, status = approval.get("spec") or {}, approval.get("status") or {}
    name = approval["metadata"]["name"]
    who = spec.get("approver") or "you"
    lines = [f"approval {name} created: {who} {str(spec.get('decision', '')).lower()}s spec {spec.get('specHash')}"]
    pstatus = promo.get("status") or {}
    if not status.get("reason"):
        lines.append("the operator has not judged it yet; see `kubectl lockgate status`")
    elif status.get("counted"):
        lines.append(
            f"counted: {status.get('message')} ({pstatus.get('countedApprovals', '?')}/"
            f"{pstatus.get('requiredApprovals', '?')} approvals)"
        )
    else:
        lines.append(f"not counted: {verdict(status)}")
    lines.append(f"promotion {promo['metadata']['name']} is {pstatus.get('phase')}: {pstatus.get('message', '')}")
    return lines


# -- commands ------------------------------------------------------------------------------------------


def list_cmd(
    pending: Annotated[bool, typer.Option("--pending", help="Only Promotions waiting for approval.")] = False,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = Output.table,
) -> None:
    """List Promotions: phase, approvals counted, who asked, time in gate, what each waits for."""
    with session(kubeconfig, context, namespace) as s:
        items = s.promotions(None if all_namespaces else s.namespace)
    if pending:
        items = [p for p in items if (p.get("status") or {}).get("phase") == "AwaitingApproval"]
    items.sort(key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"].get("creationTimestamp", "")))
    if output is not Output.table:
        dump({"apiVersion": "v1", "kind": "List", "items": items}, output)
        return
    if not items:
        where = "any namespace" if all_namespaces else f'namespace "{s.namespace}"'
        typer.echo(f"No {'pending ' if pending else ''}promotions in {where}.")
        return
    console().print(list_table(items, all_namespaces))


def status_cmd(
    promotion: PromotionArgument,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Show one Promotion: what it waits for, its gates, who counted and why others did not, evidence."""
    with session(kubeconfig, context, namespace) as s:
        promo = s.promotion(promotion)
        events = s.events(promotion, promo["metadata"]["namespace"]) if output is Output.table else []
    if output is not Output.table:
        dump(promo, output)
        return
    out = console()
    for part in status_renderables(promo, events):
        out.print(part)


def approve_cmd(
    promotion: PromotionArgument,
    comment: Annotated[
        str | None, typer.Option("--comment", "-m", help="Why you approve (kept in the audit trail).")
    ] = None,
    spec_hash: Annotated[
        str | None,
        typer.Option(
            "--spec-hash", help="The spec hash you reviewed (from `status`); refuse if the spec changed since."
        ),
    ] = None,
    retro_review: Annotated[
        bool, typer.Option("--retro-review", help="Close an emergency change's retro review instead.")
    ] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the operator's verdict.")] = 15.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Approve the spec you see now (the Approval binds to its hash; a later spec change needs a new approval)."""
    purpose = "RetroReview" if retro_review else "Change"
    with session(kubeconfig, context, namespace) as s:
        approval, promo = decide(s, promotion, "Approve", comment, spec_hash, wait, purpose)
    _report(approval, promo, output)


def reject_cmd(
    promotion: PromotionArgument,
    comment: Annotated[str | None, typer.Option("--comment", "-m", help="Why you reject it (required).")] = None,
    spec_hash: Annotated[
        str | None, typer.Option("--spec-hash", help="The spec hash you reviewed; refuse if the spec changed since.")
    ] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the operator's verdict.")] = 15.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Reject the spec you see now, saying why."""
    if not comment or not comment.strip():
        fail("reject needs --comment saying why (it goes into the audit trail)")
    with session(kubeconfig, context, namespace) as s:
        approval, promo = decide(s, promotion, "Reject", comment, spec_hash, wait)
    _report(approval, promo, output)


def _report(approval: dict[str, Any], promo: dict[str, Any], output: Output) -> None:
    if output is not Output.table:
        dump(approval, output)
        return
    out = console()
    for line in report_decision(approval, promo):
        out.print(line)


def explain_cmd(
    promotion: PromotionArgument,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Explain in sentences why a Promotion is where it is (conditions, gates, approvals, events)."""
    with session(kubeconfig, context, namespace) as s:
        promo = s.promotion(promotion)
        events = s.events(promotion, promo["metadata"]["namespace"])
    sentences = explain_sentences(promo, events)
    if output is not Output.table:
        dump({"promotion": f"{promo['metadata']['namespace']}/{promotion}", "explanation": sentences}, output)
        return
    out = console()
    for sentence in sentences:
        out.print(sentence)


COMMANDS: dict[str, Callable[..., None]] = {
    "list": list_cmd,
    "status": status_cmd,
    "approve": approve_cmd,
    "reject": reject_cmd,
    "explain": explain_cmd,
}


def register(app: typer.Typer) -> None:
    """Add ``list``, ``status``, ``approve``, ``reject`` and ``explain`` to ``app``."""
    for name, command in COMMANDS.items():
        app.command(name)(command)
