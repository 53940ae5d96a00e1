"""Where the image guard is not called: a gated namespace that the guard's webhook configuration (as the API
server has it) leaves out, so an image change there would pass unjudged.

The API server calls a webhook only for the namespaces its ``namespaceSelector`` selects, the objects its
``objectSelector`` selects, the resources and operations its ``rules`` name and the requests all its
``matchConditions`` (CEL) accept; a GatePolicy selects namespaces by labels of its own. Nothing ties the two
together but the labels people put on namespaces: the chart's default guard selector is ``lockgate.dev/environment``
exists, while a policy may select ``team: payments``. This finds where they disagree (pure: the configuration and
the namespaces in, the gaps out). Conditions are judged by running them on the requests the guard judges
(``probes``); one Lockgate's CEL cannot evaluate is reported apart (``Coverage.unverifiable``), not as a gap.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import fnmatch
import functools
import hashlib
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
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


def _covers(rules: Iterable[Mapping[str, Any]], guarded: imageguard.GuardedKind) -> bool:
    """Whether the rules, together, name the guarded resource with every operation its guard judges.

    A rule of ``scope: Cluster`` names no namespaced object. A rule must name v1 (or ``*``): every guarded
    resource is served only at v1 on the Kubernetes versions the chart supports, and ``matchPolicy: Equivalent``
    converts a request only to a version the API server serves, so a rule for ``v1beta1`` is never called.
    """
    operations: set[str] = set()
    for rule in rules:
        groups, resources = rule.get("apiGroups") or [], rule.get("resources") or []
        if rule.get("scope") == "Cluster" or not {"*", "v1"} & set(rule.get("apiVersions") or []):
            continue
        if {"*", guarded.group} & set(groups) and any(_names(str(r), guarded) for r in resources):
            operations |= set(rule.get("operations") or [])
    return "*" in operations or set(guarded.operations) <= operations


#: Who makes the probe requests: none is a workload controller or the operator; each kind of requester a
#: condition might be written to skip (the break-glass groups are added when the operator has them).
_REQUESTERS = (
    ("a person", "lockgate:coverage-probe", ("system:authenticated",)),
    (
        "a ServiceAccount",
        "system:serviceaccount:{namespace}:deployer",
        ("system:serviceaccounts", "system:serviceaccounts:{namespace}", "system:authenticated"),
    ),
    ("a cluster admin", "lockgate:coverage-admin", ("system:masters", "system:authenticated")),
)
#: The namespace of the probes for conditions that read none.
PROBE_NAMESPACE = "lockgate-probe"


def _workload(guarded: imageguard.GuardedKind, namespace: str, image: str, replicas: int = 1) -> dict[str, Any]:
    """An object of the guarded kind running ``image`` (a Scale when the webhook is for ``scale``), controlled
    by an owner of the kind that makes it."""
    metadata: dict[str, Any] = {"name": "probe", "namespace": namespace, "uid": "probe", "labels": {"app": "probe"}}
    if guarded.subresource == "scale":
        return {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": metadata, "spec": {"replicas": replicas}}
    if guarded.kind in imageguard.DERIVED:
        owner = {"ReplicaSet": "Deployment", "Pod": "ReplicaSet", "Job": "CronJob"}[guarded.kind]
        metadata["ownerReferences"] = [{"kind": owner, "name": "probe", "uid": "owner", "controller": True}]
    pod = {"containers": [{"name": "app", "image": image}]}
    spec: dict[str, Any] = pod
    if guarded.kind != "Pod":
        spec = {"replicas": replicas, "selector": {"matchLabels": {"app": "probe"}}, "template": {"spec": pod}}
    if guarded.kind == "CronJob":
        spec = {"schedule": "@hourly", "jobTemplate": {"spec": {"template": {"spec": pod}}}}
    version = f"{guarded.group}/v1" if guarded.group else "v1"
    return {"apiVersion": version, "kind": guarded.kind, "metadata": metadata, "spec": spec}


def _edited(obj: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    edited = copy.deepcopy(obj)
    change(edited)
    return edited


def _sample(pattern: str) -> str:
    """An annotation key a glob pattern matches (``example.com/*-image`` -> ``example.com/x-image``)."""

    def one(klass: re.Match[str]) -> str:  # a character of the class ``[...]`` (or ``[!...]``)
        return next((c for c in _KEY_CHARACTERS if fnmatch.fnmatchcase(c, klass.group(0))), "x")

    sample = re.sub(r"\[!?\]?[^\]]*\]", one, pattern).replace("*", "x").replace("?", "x")
    return sample if fnmatch.fnmatchcase(sample, pattern) else pattern  # a pattern too odd to sample: as written


_ANNOTATION_CHANGE = "image annotation change"
_KEY_CHARACTERS = "xyz0123456789abcdefghijklmnopqrstuvwABCDEFGHIJKLMNOPQRSTUVWXYZ-_./"


def changes(
    guarded: imageguard.GuardedKind, namespace: str, image_annotations: Iterable[str] = imageguard.IMAGE_ANNOTATIONS
) -> list[tuple[str, str, Any, Any]]:
    """Every kind of request the guard judges for ``guarded``: (what, operation, object, oldObject); a pod
    template annotation change for each of ``image_annotations`` (the operator's, which choose an image)."""
    running = _workload(guarded, namespace, "app:1")
    if guarded.deletes:
        return [("delete", "DELETE", None, running)]
    if guarded.subresource == "scale":
        return [("scale-up", "UPDATE", _workload(guarded, namespace, "", 2), _workload(guarded, namespace, "", 1))]
    if guarded.subresource == "ephemeralcontainers":
        debug = {"name": "debugger", "image": "debug:1"}
        return [
            (
                "debug container",
                "UPDATE",
                _edited(running, lambda o: o["spec"].update(ephemeralContainers=[debug])),
                running,
            )
        ]

    def annotate(o: dict[str, Any]) -> None:
        o["metadata"]["annotations"] = {imageguard.ANNOTATION_PROMOTION: f"{namespace}/probe"}

    def template(o: dict[str, Any]) -> dict[str, Any]:  # the pod template (a CronJob's job template's)
        spec = o["spec"]["jobTemplate"]["spec"] if guarded.kind == "CronJob" else o["spec"]
        pod_template: dict[str, Any] = spec["template"]
        return pod_template

    def pod(o: dict[str, Any]) -> dict[str, Any]:
        spec: dict[str, Any] = o["spec"] if guarded.kind == "Pod" else template(o)["spec"]
        return spec

    def template_metadata(o: dict[str, Any], **metadata: Any) -> None:
        template(o)["metadata"] = metadata

    found = [
        ("create", "CREATE", running, None),
        ("lockgate.dev annotation change", "UPDATE", _edited(running, annotate), running),
    ]
    if guarded.kind == "Job":  # the API server refuses any other template change of a Job, and these unsuspended
        running = _edited(running, lambda o: o["spec"].update(suspend=True))
        found += [
            (
                "pod template label change",
                "UPDATE",
                _edited(running, lambda o: template_metadata(o, labels={"x": "y"})),
                running,
            ),
            (
                "pod template annotation change",
                "UPDATE",
                _edited(running, lambda o: template_metadata(o, annotations={"x": "y"})),
                running,
            ),
        ]
    else:
        initialised = _edited(running, lambda o: pod(o).update(initContainers=[{"name": "setup", "image": "s:1"}]))
        new_init = _edited(initialised, lambda o: pod(o)["initContainers"][0].update(image="s:2"))
        digest = f"app@sha256:{'0' * 64}"
        found += [
            ("image change", "UPDATE", _workload(guarded, namespace, "app:2"), running),
            ("image change to a digest", "UPDATE", _workload(guarded, namespace, digest), running),
            ("init container image change", "UPDATE", new_init, initialised),
        ]
    if guarded.kind not in ("Pod", "Job"):  # a Pod's volumes are fixed at its creation
        volume = {"name": "tools", "image": {"reference": "tools:1"}}
        found.append(("image volume", "UPDATE", _edited(running, lambda o: pod(o).update(volumes=[volume])), running))

        for key in sorted({_sample(pattern) for pattern in image_annotations}):  # an injector's image, chosen so
            injected = _edited(running, functools.partial(template_metadata, annotations={key: "proxy:2"}))
            found.append((f"{_ANNOTATION_CHANGE} ({key})", "UPDATE", injected, running))
    if guarded.kind == "Deployment":
        paused = _edited(running, lambda o: o["spec"].update(paused=True))
        env = _edited(paused, lambda o: o["spec"]["template"]["spec"]["containers"][0].update(env=[{"name": "X"}]))
        found += [("pause", "UPDATE", paused, running), ("pod template change while paused", "UPDATE", env, paused)]
    if guarded.kind in imageguard.SCALED:
        found.append(("replicas rise", "UPDATE", _edited(running, lambda o: o["spec"].update(replicas=3)), running))
    if guarded.kind == "ReplicaSet":
        env = _edited(running, lambda o: o["spec"]["template"]["spec"]["containers"][0].update(env=[{"name": "X"}]))
        relabelled = _edited(running, lambda o: o["metadata"].update(labels={"app": "other"}))
        reowned = _edited(running, lambda o: o["metadata"]["ownerReferences"][0].update(uid="other"))
        found += [
            ("pod template edit", "UPDATE", env, running),
            ("relabelling", "UPDATE", relabelled, running),
            ("owner change", "UPDATE", reowned, running),
        ]
    return found


def _request(
    guarded: imageguard.GuardedKind, namespace: str, operation: str, user: Mapping[str, Any]
) -> dict[str, Any]:
    """An AdmissionRequest as the API server fills it in (``object``/``oldObject`` go beside it)."""
    resource = {"group": guarded.group, "version": "v1", "resource": guarded.plural}
    if guarded.subresource == "scale":
        kind = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    else:
        kind = {"group": guarded.group, "version": "v1", "kind": guarded.kind}
    options = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}[operation]
    return {
        "uid": "lockgate-coverage-probe",
        "kind": kind,
        "resource": resource,
        "subResource": guarded.subresource or "",
        "requestKind": kind,
        "requestResource": resource,
        "requestSubResource": guarded.subresource or "",
        "name": "probe",
        "namespace": namespace,
        "operation": operation,
        "userInfo": dict(user),
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": options},
    }


def probes(
    guarded: imageguard.GuardedKind,
    namespace: str,
    break_glass_groups: Iterable[str] = (),
    image_annotations: Iterable[str] = imageguard.IMAGE_ANNOTATIONS,
) -> list[tuple[str, dict[str, Any]]]:
    """The requests the guard must be called for: (what, the CEL variables ``request``, ``object``,
    ``oldObject``), every kind of change by every kind of requester."""
    requesters: list[tuple[str, str, tuple[str, ...]]] = [
        (who, name.format(namespace=namespace), tuple(g.format(namespace=namespace) for g in groups))
        for who, name, groups in _REQUESTERS
    ]
    glass = tuple(break_glass_groups)
    if glass:
        requesters.append(("a break-glass member", "lockgate:coverage-break-glass", (*glass, "system:authenticated")))
    found = []
    for what, operation, new, old in changes(guarded, namespace, image_annotations):
        # One image annotation's change is made by a person only: a condition that skips a kind of requester is
        # found by the other changes, and each annotation by every requester would double the probes.
        for who, username, groups in requesters[:1] if what.startswith(_ANNOTATION_CHANGE) else requesters:
            user = {"username": username, "uid": "probe", "groups": list(groups)}
            variables = {"request": _request(guarded, namespace, operation, user), "object": new, "oldObject": old}
            found.append((f"{who}'s {guarded.kind} {what}", variables))
    return found


@dataclasses.dataclass(frozen=True)
class Probing:
    """The operator's settings the probes depend on: its break-glass groups (who else asks) and the pod template
    annotations that choose an image (what else changes)."""

    break_glass_groups: tuple[str, ...] = ()
    image_annotations: tuple[str, ...] = imageguard.IMAGE_ANNOTATIONS


@dataclasses.dataclass(frozen=True)
class Setup:
    """The operator's settings the coverage check reads: who else asks (its break-glass groups), what else changes
    (the pod template annotations that choose an image), where the API server reaches its guard (``served_at``,
    its ``webhook_public_host``) and who writes the configuration."""

    break_glass_groups: tuple[str, ...] = ()
    image_annotations: tuple[str, ...] = imageguard.IMAGE_ANNOTATIONS
    served_at: str | None = None
    operator_managed: bool = False
    """Kopf writes the webhook configuration (``manage_webhooks``): some guards fail open there by design."""


@dataclasses.dataclass(frozen=True)
class Conditions:
    """What a webhook's ``matchConditions`` do with the probes: the first one skipped, or why they cannot be
    judged here (a Kubernetes-only CEL function or variable, ``authorizer`` say)."""

    skips: str | None = None
    unverifiable: str | None = None


def _judge_conditions(
    conditions: list[Mapping[str, Any]],
    guarded: imageguard.GuardedKind,
    namespace: str,
    probing: Probing,
) -> Conditions:
    """The API server calls a webhook only when every condition is true; an error fails the request
    (``failurePolicy: Fail``) or skips the webhook (``Ignore``)."""
    unverifiable = None
    for what, variables in probes(guarded, namespace, probing.break_glass_groups, probing.image_annotations):
        context = cel.Context(variables)
        for condition in conditions:
            name, compiled = condition.get("name"), celrules.compile_expression(str(condition.get("expression")))
            try:
                if compiled.program is None:
                    raise ValueError(compiled.error)
                called = compiled.program.execute(context) is True
            except Exception as exc:  # the binding's errors: a Kubernetes-only function, a type error
                unverifiable = (
                    unverifiable or f"its matchCondition {name} cannot be evaluated by Lockgate ({str(exc)[:80]})"
                )
                continue
            if not called:
                return Conditions(skips=f"its matchCondition {name} skips {what}")
    return Conditions(unverifiable=unverifiable)


#: Every condition is judged on every probe once, in PROBE_NAMESPACE; one that reads a namespace field
#: (``request.namespace``, ``object.metadata.namespace``, ``x["namespace"]``) is judged again in each namespace, on
#: every probe (the chart's name ``namespace-controller`` in a string reads no namespace).
_READS_NAMESPACE = re.compile(r"\.\s*namespace\b|\[\s*\\?[\"']namespace\\?[\"']\s*\]")


@functools.lru_cache(maxsize=256)
def _judged_once(text: str, guarded: imageguard.GuardedKind, probing: Probing) -> Conditions:
    return _judge_conditions(json.loads(text), guarded, PROBE_NAMESPACE, probing)


@dataclasses.dataclass
class _Hook:
    """A guard webhook the API server would call somewhere: its selector and how to judge its conditions."""

    name: str
    guarded: imageguard.GuardedKind
    selector: gatepolicy.LabelSelector | None
    conditions: list[Mapping[str, Any]]
    probing: Probing
    everywhere: Conditions  # the verdict of every probe in one namespace (PROBE_NAMESPACE)
    by_namespace: dict[str, Conditions] | None  # conditions that read the namespace: the verdict in each
    named: frozenset[str] | None  # the namespaces they can tell from PROBE_NAMESPACE (None: any)

    def judged(self, namespace: str, budget: list[int] | None = None) -> Conditions | None:
        """The conditions' verdict in ``namespace``: every probe, in it when they read the namespace (cached);
        None when that needs probing and ``budget`` (the namespaces that may still be probed) is spent."""
        if self.by_namespace is None or (self.everywhere.unverifiable and not self.everywhere.skips):
            return self.everywhere  # reads no namespace; or cannot be evaluated here anyway (Unknown)
        if self.named is not None and namespace not in self.named:
            return self.everywhere  # compared only with other names: as in PROBE_NAMESPACE
        if namespace not in self.by_namespace:
            if budget is not None:
                if budget[0] <= 0:
                    return None
                budget[0] -= 1
            self.by_namespace[namespace] = _judge_conditions(self.conditions, self.guarded, namespace, self.probing)
        return self.by_namespace[namespace]

    def forget_all_but(self, namespaces: Iterable[str]) -> None:
        if self.by_namespace is not None:
            keep = set(namespaces)
            for gone in [ns for ns in self.by_namespace if ns not in keep]:
                del self.by_namespace[gone]


#: Per-namespace verdicts of conditions that read the namespace, by (conditions, kind, probing settings); kept
#: across recomputations, so a new namespace costs its own probes only. A few configurations at most.
_BY_NAMESPACE: collections.OrderedDict[tuple[str, imageguard.GuardedKind, Probing], dict[str, Conditions]]
_BY_NAMESPACE = collections.OrderedDict()


def _hook(name: str, hook: Mapping[str, Any], guarded: imageguard.GuardedKind, probing: Probing) -> _Hook:
    selector = hook.get("namespaceSelector")
    conditions = list(hook.get("matchConditions") or [])
    text = json.dumps(conditions, sort_keys=True)
    by_namespace = None
    if conditions and _READS_NAMESPACE.search(text):
        key = (hashlib.sha256(text.encode()).hexdigest(), guarded, probing)
        by_namespace = _BY_NAMESPACE.setdefault(key, {})
        _BY_NAMESPACE.move_to_end(key)
        while len(_BY_NAMESPACE) > 64:
            _BY_NAMESPACE.popitem(last=False)
    everywhere = _judged_once(text, guarded, probing) if conditions else Conditions()
    model = gatepolicy.LabelSelector.model_validate(selector) if selector else None
    reading = [str(c.get("expression")) for c in conditions if _READS_NAMESPACE.search(json.dumps(c))]
    return _Hook(name, guarded, model, conditions, probing, everywhere, by_namespace, _named(reading))


#: A namespace read compared with a literal (``request.namespace == 'prod'``, ``'prod' != object.metadata.namespace``)
#: or a list of literals (``request.namespace in ['a', 'b']``).
_NAMESPACE_READ = r"(?:request\.namespace|(?:old)?[oO]bject\.metadata\.namespace)"
_LITERAL = r"(?:'[a-z0-9.-]*'|\"[a-z0-9.-]*\")"
_COMPARED = re.compile(
    rf"{_NAMESPACE_READ}\s*(?:==|!=)\s*{_LITERAL}|{_LITERAL}\s*(?:==|!=)\s*{_NAMESPACE_READ}"
    rf"|{_NAMESPACE_READ}\s+in\s*\[\s*(?:{_LITERAL}\s*,\s*)*{_LITERAL}?\s*\]"
)


def _named(expressions: list[str]) -> frozenset[str] | None:
    """The namespaces conditions can tell from any other, when every namespace they read is only compared with
    plain literal names (``==``, ``!=``, ``in [...]``): every other namespace fares as PROBE_NAMESPACE does.
    None (probe every namespace) for any other use: a function, ``+``, a comparison with another field."""
    text = " ".join(expressions)
    if _READS_NAMESPACE.search(_COMPARED.sub(" true ", text)) or re.search(r"\+|['\"]\s*\.", text):
        return None  # a namespace read elsewhere, or a literal built or changed (``'a' + x``, ``'A'.lowerAscii()``)
    literals = re.findall(r"'([a-z0-9.-]*)'|\"([a-z0-9.-]*)\"", " ".join(_COMPARED.findall(text)))
    return frozenset(single or double for single, double in literals)


_SKIPPED = "its failurePolicy is Ignore"  # a gap where the guard is called but may be skipped


def _fixed_gap(hook: Mapping[str, Any] | None, guarded: imageguard.GuardedKind, setup: Setup) -> str | None:
    """Why ``hook`` is never called for ``guarded`` in any namespace (or is called elsewhere, or may be skipped),
    or None. A webhook the operator itself writes fail-open (Kopf-managed, ``operator_managed``) is as designed."""
    if hook is None:
        return "missing from the configuration"
    if not _covers(hook.get("rules") or [], guarded):
        resource = guarded.plural + (f"/{guarded.subresource}" if guarded.subresource else "")
        return f"its rules do not name {resource} {'/'.join(guarded.operations)}"
    objects = hook.get("objectSelector") or {}  # Kopf writes null; empty selects every object
    if objects.get("matchLabels") or objects.get("matchExpressions"):
        return "it has an objectSelector, so objects without those labels skip it"
    designed_open = setup.operator_managed and guarded.fails_open_when_operator_managed
    if hook.get("failurePolicy") == "Ignore" and not designed_open:  # absent: Fail (admissionregistration/v1)
        return (
            f"{_SKIPPED}, so the API server admits a change unjudged whenever the guard does not answer in time "
            "(the operator restarting, unreachable or slow)"
        )
    return _elsewhere(hook.get("clientConfig") or {}, guarded, setup.served_at)


def _elsewhere(client: Mapping[str, Any], guarded: imageguard.GuardedKind, served_at: str | None) -> str | None:
    """Why a webhook's ``clientConfig`` sends the guard's reviews somewhere other than the operator's guard, or None.

    ``served_at``: the host the API server reaches the operator's webhooks by (``webhook_public_host``); a
    ``<service>.<namespace>.svc`` name also names the Service. None: only the path is checked.
    """
    if client.get("url"):
        url = urllib.parse.urlsplit(str(client["url"]))
        if served_at and _host(url.hostname or "") != _host(served_at):
            return f"it calls {client['url']}, not the operator at {served_at}"
        called_path = url.path or "/"
    elif service := client.get("service") or {}:
        labels = _host(served_at or "").split(".")
        expected = (labels[1], labels[0]) if len(labels) >= 3 and labels[2] == "svc" else None
        called = (str(service.get("namespace")), str(service.get("name")))
        if expected is not None and called != expected:
            return f"it calls service {'/'.join(called)}, not the operator's {'/'.join(expected)}"
        called_path = str(service.get("path") or "/")
    else:
        return None
    path = f"/{guarded.webhook_id}"
    return None if called_path == path else f"it calls path {called_path}, not the guard's {path}"


def _host(name: str) -> str:
    """A host name as DNS compares it (in any case); a Service's ``.svc.cluster.local`` (the default cluster
    domain, a SAN of the chart's certificate) as its ``.svc``."""
    name = name.lower()
    return name.removesuffix(".cluster.local") if name.endswith(".svc.cluster.local") else name


def _hooks(config: Mapping[str, Any] | None, probing: Probing, setup: Setup) -> tuple[list[str], list[_Hook]]:
    """(``webhook: why`` for the guard webhooks never called anywhere, or not the operator's, the others)."""
    hooks = {str(h.get("name")): h for h in (config or {}).get("webhooks") or []}
    fixed: list[str] = []
    called: list[_Hook] = []
    for guarded in imageguard.GUARDED:
        name = _hook_name(guarded)
        hook = hooks.get(name)
        why = _fixed_gap(hook, guarded, setup)
        if why is not None or hook is None:
            fixed.append(f"{name}: {why}")
        else:
            called.append(_hook(name, hook, guarded, probing))
    return fixed, called


@dataclasses.dataclass(frozen=True)
class Coverage:
    """Where the guard is not called (namespace -> ``webhook: why``), and which webhooks' conditions Lockgate
    cannot evaluate (``webhook: why``, with the namespace when only there)."""

    not_called: dict[str, list[str]]
    unverifiable: list[str]
    pending: int = 0
    """Namespaces whose probing is left for a later call (``budget``): judge again soon."""


def judge(
    config: Mapping[str, Any] | None,
    namespaces: Mapping[str, Mapping[str, str]],
    setup: Setup = Setup(),
    budget: int | None = None,
) -> Coverage:
    """The guard's coverage of ``namespaces``. ``config`` is the ValidatingWebhookConfiguration ``lockgate.dev``
    (None: it does not exist). Conditions are judged on ``probes`` (as the operator's break-glass groups too, and
    changing each of its image annotations: ``setup``). A webhook that may be skipped (``failurePolicy: Ignore``,
    but where the operator writes it so) or that calls another host, Service or path than the operator's guard
    (``_elsewhere``) is a gap too.

    ``budget``: at most this many namespaces are probed anew for conditions that read the namespace (each costs
    ~2-3 ms on the event loop; the verdicts are kept, so the next call goes on where this one stopped); the rest
    count as ``pending`` and as unverifiable until then.
    """
    probing = Probing(tuple(sorted(set(setup.break_glass_groups))), tuple(sorted(set(setup.image_annotations))))
    fixed, called = _hooks(config, probing, setup)
    found: dict[str, list[str]] = {}
    unverified = {f"{h.name}: {h.everywhere.unverifiable}" for h in called if h.everywhere.unverifiable}
    left, pending = None if budget is None else [budget], collections.Counter[str]()
    for namespace, labels in namespaces.items():
        with_name = {**labels, NAME_LABEL: namespace}
        gaps = list(fixed)
        for hook in called:
            if hook.selector is not None and not policies.selects(hook.selector, with_name):
                gaps.append(f"{hook.name}: its namespaceSelector does not select this namespace")
                continue
            judged = hook.judged(namespace, left)
            if judged is None:
                pending[hook.name] += 1
            elif judged.skips is not None:
                gaps.append(f"{hook.name}: {judged.skips}")
            elif judged.unverifiable and judged is not hook.everywhere:
                unverified.add(f"{hook.name}: {judged.unverifiable} in namespace {namespace}")
        if gaps:
            found[namespace] = gaps
    for hook in called:
        hook.forget_all_but(namespaces)
    for name, count in pending.items():
        unverified.add(f"{name}: its matchConditions read the namespace; {count} namespace(s) not probed yet")
    return Coverage(found, sorted(unverified), sum(pending.values()))


def not_called(
    config: Mapping[str, Any] | None, namespaces: Mapping[str, Mapping[str, str]], setup: Setup = Setup()
) -> dict[str, list[str]]:
    """Namespace -> ``webhook: why`` for each guard webhook the API server would not call there (``judge``)."""
    return judge(config, namespaces, setup).not_called


def unverifiable(
    config: Mapping[str, Any] | None,
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    setup: Setup = Setup(),
) -> list[str]:
    """``webhook: why`` for each guard webhook whose conditions Lockgate's CEL cannot evaluate (``judge``): the API
    server may skip it (``failurePolicy: Ignore``) or refuse requests (``Fail``) where Lockgate cannot tell."""
    return judge(config, namespaces or {}, setup).unverifiable


def gated_but_not_guarded(
    config: Mapping[str, Any] | None,
    namespaces: Mapping[str, Mapping[str, str]],
    gate_policies: Iterable[gatepolicy.GatePolicy],
    setup: Setup = Setup(),
    budget: int | None = None,
) -> Coverage:
    """``judge`` for the namespaces some GatePolicy gates: where a direct image change would pass."""
    chosen = list(gate_policies)
    gated = {ns: labels for ns, labels in namespaces.items() if policies.matching(chosen, labels)}
    return judge(config, gated, setup, budget)


def message(namespaces: Mapping[str, list[str]], limit: int = 5, setup: Setup = Setup()) -> str:
    """What is wrong and what to do, for a status condition or a log line; with no gap, what the guard's
    configuration allows by design (``setup``)."""
    if not namespaces:
        called = "the image guard is called in every namespace this policy gates"
        if not setup.operator_managed:
            return called
        open_by_design = ", ".join(_hook_name(g) for g in imageguard.GUARDED if g.fails_open_when_operator_managed)
        return (
            f"{called}; the operator writes its webhook configuration itself (webhook.operatorManaged), where "
            f"{open_by_design} fail open (failurePolicy Ignore): a change they judge passes unjudged while the "
            "operator does not answer. Prefer the chart's configurations in production"
        )
    shown = sorted(namespaces)[:limit]
    more = f" (and {len(namespaces) - limit} more)" if len(namespaces) > limit else ""
    gaps = " ".join(gap for found in namespaces.values() for gap in found)
    advice = [text for cause, text in _ADVICE if cause in gaps]

    def some_webhook_not_called(namespace: str) -> bool:
        return any(_SKIPPED not in gap for gap in namespaces[namespace])

    # Called, but failing open (``failurePolicy: Ignore``) only: it "may be skipped"; else the example shown is a
    # namespace where some webhook is not called at all.
    example = next((ns for ns in sorted(namespaces) if some_webhook_not_called(ns)), None)
    verb, would = ("may be skipped", "could") if example is None else ("is not called", "would")
    example = example or shown[0]
    first = namespaces[example]
    why = "; ".join(first[:3]) + (f"; and {len(first) - 3} more webhooks" if len(first) > 3 else "")
    return (
        f"the image guard {verb} in gated namespace(s) {', '.join(shown)}{more}, so a direct image change there "
        f"(kubectl set image, apply) {would} pass unjudged: {example}: {why}. {'; '.join(advice)}"
    )


def unverified_message(unverified: list[str]) -> str:
    """What ``unverifiable`` found, and what to do, for a status condition or a log line."""
    return (
        f"the image guard's matchConditions cannot all be checked by Lockgate, so it cannot tell whether the API "
        f"server calls the guard for every change in the namespaces this policy gates: {'; '.join(unverified[:3])}"
        f"{f'; and {len(unverified) - 3} more' if len(unverified) > 3 else ''}. Restore the webhooks' "
        "matchConditions as the chart renders them, or check these conditions by hand"
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
        _SKIPPED,
        "Set the guard webhooks' failurePolicy to Fail (the chart's webhook.failurePolicy, Fail by default)",
    ),
    (
        "it calls",
        "Point the webhook's clientConfig back at the operator's guard as the chart renders it (re-apply the chart), "
        "and find who changed it in the API server's audit log",
    ),
    (
        "namespaceSelector",
        "Label the namespace so the guard's namespaceSelector selects it (the chart's default: "
        "lockgate.dev/environment=<env>), or widen the chart's webhook.guardNamespaceSelector to select every "
        "namespace a GatePolicy gates",
    ),
)
