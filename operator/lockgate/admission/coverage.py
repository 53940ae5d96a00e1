"""Where the image guard is not called: a gated namespace that the guard's webhook configuration (as the API
server has it) leaves out, so an image change there would pass unjudged.

The API server calls a webhook only for the namespaces its ``namespaceSelector`` selects, the objects its
``objectSelector`` selects, the resources and operations its ``rules`` name and the requests all its
``matchConditions`` (CEL) accept; a GatePolicy selects namespaces by labels of its own. Nothing ties the two
together but the labels people put on namespaces: the chart's default guard selector is ``lockgate.dev/environment``
exists, while a policy may select ``team: payments``. This finds where they disagree (pure: the configuration and
the namespaces in, the gaps out). Conditions are judged by running them on the requests a person would make
(``probes``); one Lockgate's CEL cannot evaluate counts as a gap.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from lockgate.admission import imageguard
from lockgate.api import gatepolicy
from lockgate.gates import celrules, policies
from lockgate.gates.celimport import cel

#: The ValidatingWebhookConfiguration that holds the guard's webhooks (the chart's, or Kopf's when it manages them).
CONFIGURATION = "lockgate.dev"
#: The namespace label the API server sets on every namespace (a namespaceSelector may use it).
NAME_LABEL = "kubernetes.io/metadata.name"


def _hook_name(guarded: imageguard.GuardedKind) -> str:
    return f"{guarded.webhook_id}.{CONFIGURATION}"


def _names(entry: str, guarded: imageguard.GuardedKind) -> bool:
    """Whether a rule's ``resources`` entry names the guarded resource, as the API server matches it: ``*`` is
    every resource but no subresource, ``*/*`` every subresource too, ``pods/*`` or ``*/scale`` some."""
    resource, _, sub = entry.partition("/")
    if resource not in ("*", guarded.plural):
        return False
    if guarded.subresource:
        return sub in ("*", guarded.subresource)
    return not sub or entry == "*/*"


def _covers(rules: Iterable[Mapping[str, Any]], guarded: imageguard.GuardedKind, exact: bool = False) -> bool:
    """Whether the rules, together, name the guarded resource with every operation its guard judges.

    A rule of ``scope: Cluster`` names no namespaced object. With ``matchPolicy: Exact`` a rule must name the
    version requests use (v1); with ``Equivalent`` (the default) any version of the resource is sent, converted.
    """
    operations: set[str] = set()
    for rule in rules:
        groups, resources = rule.get("apiGroups") or [], rule.get("resources") or []
        if rule.get("scope") == "Cluster" or (exact and not {"*", "v1"} & set(rule.get("apiVersions") or [])):
            continue
        if {"*", guarded.group} & set(groups) and any(_names(str(r), guarded) for r in resources):
            operations |= set(rule.get("operations") or [])
    return "*" in operations or set(guarded.operations) <= operations


#: Who makes every probe request: a person, neither a workload controller nor the operator.
PROBE_USER = "lockgate:coverage-probe"


def _workload(guarded: imageguard.GuardedKind, namespace: str, image: str, replicas: int = 1) -> dict[str, Any]:
    """An object of the guarded kind running ``image`` (a Scale when the webhook is for ``scale``)."""
    metadata = {"name": "probe", "namespace": namespace, "labels": {"app": "probe"}}
    if guarded.subresource == "scale":
        return {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": metadata, "spec": {"replicas": replicas}}
    pod = {"containers": [{"name": "app", "image": image}]}
    spec: dict[str, Any] = pod
    if guarded.kind != "Pod":
        spec = {"replicas": replicas, "selector": {"matchLabels": {"app": "probe"}}, "template": {"spec": pod}}
    if guarded.kind == "CronJob":
        spec = {"schedule": "@hourly", "jobTemplate": {"spec": {"template": {"spec": pod}}}}
    version = f"{guarded.group}/v1" if guarded.group else "v1"
    return {"apiVersion": version, "kind": guarded.kind, "metadata": metadata, "spec": spec}


def probes(guarded: imageguard.GuardedKind, namespace: str) -> list[tuple[str, str, Any, Any]]:
    """The requests the guard must be called for: (what, operation, object, oldObject), each one a person's."""
    what, running = f"a person's {guarded.kind}", _workload(guarded, namespace, "app:1")
    if guarded.deletes:
        return [(f"{what} delete", "DELETE", None, running)]
    if guarded.subresource == "scale":
        scaled = _workload(guarded, namespace, "", 2)
        return [(f"{what} scale-up", "UPDATE", scaled, _workload(guarded, namespace, "", 1))]
    if guarded.subresource == "ephemeralcontainers":
        debugged = _workload(guarded, namespace, "app:1")
        debugged["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "debug:1"}]
        return [(f"{what} debug container", "UPDATE", debugged, running)]
    return [
        (f"{what} create", "CREATE", running, None),
        (f"{what} image change", "UPDATE", _workload(guarded, namespace, "app:2"), running),
    ]


def _skipped(conditions: list[Mapping[str, Any]], guarded: imageguard.GuardedKind, namespace: str) -> str | None:
    """Why the hook's ``matchConditions`` would keep a probe from it, or None: the API server calls a webhook
    only when every condition is true."""
    resource = {"group": guarded.group, "version": "v1", "resource": guarded.plural}
    for what, operation, new, old in probes(guarded, namespace):
        request = {
            "operation": operation,
            "namespace": namespace,
            "name": "probe",
            "resource": resource,
            "subResource": guarded.subresource or "",
            "userInfo": {"username": PROBE_USER, "groups": ["system:authenticated"]},
        }
        context = cel.Context({"request": request, "object": new, "oldObject": old})
        for condition in conditions:
            name, compiled = condition.get("name"), celrules.compile_expression(str(condition.get("expression")))
            try:
                if compiled.program is None:
                    raise ValueError(compiled.error)
                called = compiled.program.execute(context) is True
            except Exception as exc:  # the binding's errors: a Kubernetes-only function, a type error
                return f"its matchCondition {name} cannot be checked by Lockgate ({str(exc)[:80]}), so may skip {what}"
            if not called:
                return f"its matchCondition {name} skips {what}"
    return None


#: A condition that reads a namespace field (``request.namespace``, ``object.metadata.namespace``, ``x["namespace"]``)
#: is judged per namespace; the rest once (the chart's name ``namespace-controller`` in a string reads none).
_READS_NAMESPACE = re.compile(r"\.\s*namespace\b|\[\s*\\?[\"']namespace\\?[\"']\s*\]")


@functools.lru_cache(maxsize=4096)
def _conditions_gap(conditions: str, guarded: imageguard.GuardedKind, namespace: str) -> str | None:
    return _skipped(json.loads(conditions), guarded, namespace)


def _condition_gap(hook: Mapping[str, Any], guarded: imageguard.GuardedKind, namespace: str) -> str | None:
    """``_skipped`` for a hook's conditions, once per text (and namespace, when the conditions name one)."""
    conditions = hook.get("matchConditions") or []
    if not conditions:
        return None
    text = json.dumps(conditions, sort_keys=True)
    return _conditions_gap(text, guarded, namespace if _READS_NAMESPACE.search(text) else "")


def _fixed_gap(hook: Mapping[str, Any] | None, guarded: imageguard.GuardedKind) -> str | None:
    """Why ``hook`` is never called for ``guarded`` in any namespace, or None."""
    if hook is None:
        return "missing from the configuration"
    if not _covers(hook.get("rules") or [], guarded, exact=hook.get("matchPolicy") == "Exact"):
        resource = guarded.plural + (f"/{guarded.subresource}" if guarded.subresource else "")
        return f"its rules do not name {resource} {'/'.join(guarded.operations)}"
    objects = hook.get("objectSelector") or {}  # Kopf writes null; empty selects every object
    if objects.get("matchLabels") or objects.get("matchExpressions"):
        return "it has an objectSelector, so objects without those labels skip it"
    return None


def not_called(config: Mapping[str, Any] | None, namespaces: Mapping[str, Mapping[str, str]]) -> dict[str, list[str]]:
    """Namespace -> ``webhook: why`` for each guard webhook the API server would not call there.

    ``config`` is the ValidatingWebhookConfiguration ``lockgate.dev`` (None: it does not exist); only the
    namespaces with a gap are returned.
    """
    hooks = {str(h.get("name")): h for h in (config or {}).get("webhooks") or []}
    fixed: list[str] = []
    called: list[tuple[str, Mapping[str, Any], imageguard.GuardedKind, gatepolicy.LabelSelector | None]] = []
    for guarded in imageguard.GUARDED:
        name = _hook_name(guarded)
        hook = hooks.get(name)
        why = _fixed_gap(hook, guarded)
        if why is not None or hook is None:
            fixed.append(f"{name}: {why}")
            continue
        selector = hook.get("namespaceSelector")
        called.append((name, hook, guarded, gatepolicy.LabelSelector.model_validate(selector) if selector else None))
    found: dict[str, list[str]] = {}
    for namespace, labels in namespaces.items():
        with_name = {**labels, NAME_LABEL: namespace}
        gaps = list(fixed)
        for name, hook, guarded, selector in called:
            if selector is not None and not policies.selects(selector, with_name):
                gaps.append(f"{name}: its namespaceSelector does not select this namespace")
            elif (skipped := _condition_gap(hook, guarded, namespace)) is not None:
                gaps.append(f"{name}: {skipped}")
        if gaps:
            found[namespace] = gaps
    return found


def gated_but_not_guarded(
    config: Mapping[str, Any] | None,
    namespaces: Mapping[str, Mapping[str, str]],
    gate_policies: Iterable[gatepolicy.GatePolicy],
) -> dict[str, list[str]]:
    """``not_called`` for the namespaces some GatePolicy gates: where a direct image change would pass."""
    chosen = list(gate_policies)
    gated = {ns: labels for ns, labels in namespaces.items() if policies.matching(chosen, labels)}
    return not_called(config, gated)


def message(namespaces: Mapping[str, list[str]], limit: int = 5) -> str:
    """What is wrong and what to do, for a status condition or a log line."""
    if not namespaces:
        return "the image guard is called in every namespace this policy gates"
    shown = sorted(namespaces)[:limit]
    more = f" (and {len(namespaces) - limit} more)" if len(namespaces) > limit else ""
    first = namespaces[shown[0]]
    why = "; ".join(first[:3]) + (f"; and {len(first) - 3} more webhooks" if len(first) > 3 else "")
    gaps = " ".join(gap for found in namespaces.values() for gap in found)
    advice = [text for cause, text in _ADVICE if cause in gaps]
    return (
        f"the image guard is not called in gated namespace(s) {', '.join(shown)}{more}, so a direct image change "
        f"there (kubectl set image, apply) would pass unjudged: {shown[0]}: {why}. {'; '.join(advice)}"
    )


#: What to do, by what ``not_called`` found (in this order).
_ADVICE = (
    (
        "missing from the configuration",
        f"Re-apply the chart (its ValidatingWebhookConfiguration {CONFIGURATION} lacks the webhook), or restart "
        "the operator where it manages its webhooks (webhook.operatorManaged)",
    ),
    ("its rules do not name", "Restore the webhook's rules as the chart renders them"),
    ("matchCondition", "Restore the webhook's matchConditions as the chart renders them"),
    ("objectSelector", "Remove the webhook's objectSelector"),
    (
        "namespaceSelector",
        "Label the namespace so the guard's namespaceSelector selects it (the chart's default: "
        "lockgate.dev/environment=<env>), or widen the chart's webhook.guardNamespaceSelector to select every "
        "namespace a GatePolicy gates",
    ),
)
