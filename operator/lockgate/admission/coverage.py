"""Where the image guard is not called: a gated namespace that the guard's webhook configuration (as the API
server has it) leaves out, so an image change there would pass unjudged.

The API server calls a webhook only for the namespaces its ``namespaceSelector`` selects, the objects its
``objectSelector`` selects and the resources and operations its ``rules`` name; a GatePolicy selects
namespaces by labels of its own. Nothing ties the two together but the labels people put on namespaces:
the chart's default guard selector is ``lockgate.dev/environment`` exists, while a policy may select
``team: payments``. This finds where they disagree (pure: the configuration and the namespaces in,
the gaps out).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lockgate.admission import imageguard
from lockgate.api import gatepolicy
from lockgate.gates import policies

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
    """Whether the rules, together, name the guarded resource with every operation its guard judges."""
    operations: set[str] = set()
    for rule in rules:
        groups, resources = rule.get("apiGroups") or [], rule.get("resources") or []
        if {"*", guarded.group} & set(groups) and any(_names(str(r), guarded) for r in resources):
            operations |= set(rule.get("operations") or [])
    return "*" in operations or set(guarded.operations) <= operations


def _fixed_gap(hook: Mapping[str, Any] | None, guarded: imageguard.GuardedKind) -> str | None:
    """Why ``hook`` is never called for ``guarded`` in any namespace, or None."""
    if hook is None:
        return "missing from the configuration"
    if not _covers(hook.get("rules") or [], guarded):
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
    selected: list[tuple[str, gatepolicy.LabelSelector]] = []
    for guarded in imageguard.GUARDED:
        name = _hook_name(guarded)
        hook = hooks.get(name)
        why = _fixed_gap(hook, guarded)
        if why is not None:
            fixed.append(f"{name}: {why}")
        elif hook is not None and hook.get("namespaceSelector"):
            selected.append((name, gatepolicy.LabelSelector.model_validate(hook["namespaceSelector"])))
    found: dict[str, list[str]] = {}
    for namespace, labels in namespaces.items():
        with_name = {**labels, NAME_LABEL: namespace}
        gaps = fixed + [
            f"{name}: its namespaceSelector does not select this namespace"
            for name, selector in selected
            if not policies.selects(selector, with_name)
        ]
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
    ("objectSelector", "Remove the webhook's objectSelector"),
    (
        "namespaceSelector",
        "Label the namespace so the guard's namespaceSelector selects it (the chart's default: "
        "lockgate.dev/environment=<env>), or widen the chart's webhook.guardNamespaceSelector to select every "
        "namespace a GatePolicy gates",
    ),
)
