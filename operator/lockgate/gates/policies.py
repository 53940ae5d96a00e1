"""GatePolicy selection by namespace labels, and validation of a policy (used at admission)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lockgate.api import durations, gatepolicy
from lockgate.gates import celfields, celrules, windows


def selects(selector: gatepolicy.LabelSelector, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: every matchLabels pair and every expression must hold."""
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        present = req.key in labels
        if req.operator == "In" and not (present and labels[req.key] in req.values):
            return False
        if req.operator == "NotIn" and present and labels[req.key] in req.values:
            return False
        if req.operator == "Exists" and not present:
            return False
        if req.operator == "DoesNotExist" and present:
            return False
    return True


def matching(
    policies: Iterable[gatepolicy.GatePolicy], namespace_labels: Mapping[str, str]
) -> list[gatepolicy.GatePolicy]:
    """The policies that gate a namespace with these labels, sorted by name (a gated namespace has one)."""
    return sorted(
        (p for p in policies if selects(p.spec.namespace_selector, namespace_labels)),
        key=lambda p: p.metadata.name,
    )


def _expression_problems(where: str, expression: str) -> list[str]:
    """Why a CEL expression cannot work: it does not compile, reads a variable rules are not given, or reads a
    field no Promotion (or source workload) has; every Promotion would fail it ("undeclared reference", "no
    such key")."""
    compiled = celrules.compile_expression(expression)
    if compiled.program is None:
        return [f"{where} does not compile: {compiled.error}"]
    problems = [
        f"{where} reads {name}, which is not a variable: rules see promotion, source and now"
        for name in celfields.unknown_variables(expression, compiled.program.variables())
    ]
    for unknown in celfields.unknown_fields(expression):
        hint = " (kubectl explain promotion.spec)" if unknown.startswith("promotion.spec.") else ""
        problems.append(f"{where} reads {unknown}: check the name{hint}")
    return problems


def validate_policy(policy: gatepolicy.GatePolicy | gatepolicy.GatePolicySpec) -> list[str]:
    """Problems that make a policy unusable, each naming the field; empty when valid."""
    spec = policy.spec if isinstance(policy, gatepolicy.GatePolicy) else policy
    problems: list[str] = []
    if not spec.approvals.forbid_self_approval:
        problems.append(gatepolicy.SEPARATION_OF_DUTIES)
    rule_names = [r.name for r in spec.approvals.rules]
    for name in sorted({n for n in rule_names if rule_names.count(n) > 1}):
        problems.append(f"approvals.rules: duplicate rule name {name!r}")
    for rule in spec.approvals.rules:
        if rule.count > 0 and not rule.groups and not rule.users:
            problems.append(f"approvals.rules[{rule.name}]: count {rule.count} but no groups or users can fill it")
    names = [r.name for r in spec.rules]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"rules: duplicate rule name {name!r}")
    for cel_rule in spec.rules:
        problems.extend(_expression_problems(f"rules[{cel_rule.name}].expression", cel_rule.expression))
    for threshold in spec.risk_thresholds:
        problems.extend(_expression_problems(f"riskThresholds[{threshold.name}].when", threshold.when))
        for rule_name, count in sorted(threshold.counts.items()):
            if rule_name not in rule_names:
                problems.append(f"riskThresholds[{threshold.name}].counts: no approval rule named {rule_name!r}")
            if count < 0:
                problems.append(f"riskThresholds[{threshold.name}].counts[{rule_name}] must not be negative")
    if spec.change_windows is not None:
        try:
            windows.zone(spec.change_windows.timezone)
        except ValueError as exc:
            problems.append(f"changeWindows.timezone: {exc}")
        for i, freeze in enumerate(spec.change_windows.freeze):
            if freeze.end <= freeze.start:
                problems.append(f"changeWindows.freeze[{i}]: end must be after start")
            if freeze.start.tzinfo is None or freeze.end.tzinfo is None:
                problems.append(f"changeWindows.freeze[{i}]: times need a UTC offset (RFC 3339)")
    for field, value in (
        ("approvals.maxAge", spec.approvals.max_age),
        ("waitTimer", spec.wait_timer),
        ("audit.retention", spec.audit.retention),
        ("emergency.retroReviewWithin", spec.emergency.retro_review_within if spec.emergency else None),
    ):
        if value is not None:
            try:
                durations.parse(value)
            except ValueError as exc:
                problems.append(f"{field}: {exc}")
    return problems
