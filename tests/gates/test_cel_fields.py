"""A policy rule that reads a field no Promotion has is refused at admission, naming the field and the fields
there are (the CEL library checks syntax only: such a rule would fail every Promotion with "no such key")."""

from __future__ import annotations

import pytest

from lockgate.api import samples
from lockgate.gates import celfields, policies

DEFAULT_RULES = [rule["expression"] for rule in samples.gate_policy_dict()["spec"]["rules"]]


@pytest.mark.parametrize(
    "expression",
    [
        *DEFAULT_RULES,
        "promotion.spec.evidence.sbom.licenses.exists(l, l in ['GPL-3.0'])",  # a list: a macro follows
        "promotion.metadata.labels.team == 'payments'",  # a map: a key follows
        "promotion.spec.target.kind.startsWith('Deploy')",  # a string: a method follows
        "has(promotion.spec.emergency) || promotion.spec.risk == 'Low'",
        "source.healthy && source.availableSince < now - duration('1h')",
        "promotion.requestedBy.username != promotion.spec.change.author",
        "'promotion.spec.nothing' != promotion.spec.image",  # in a string literal: not a selection
        "// TODO: promotion.spec.evidence.sbom.spdx once CI sends it\npromotion.spec.risk != 'High'",  # a comment
        "source.image.endsWith(r'\\') && promotion.metadata.labels['source.x/y'] == 'a'",  # a raw string
        "promotion.spec.verification.http.all(source, source.url.startsWith('https://'))",  # a macro's variable
    ],
)
def test_fields_a_promotion_has_pass(expression: str) -> None:
    assert celfields.unknown_fields(expression) == []


@pytest.mark.parametrize(
    ("expression", "named", "listed"),
    [
        ("promotion.spec.evidence.securityScan.critcal == 0", "securityScan.critcal", "critical, high"),
        ("has(promotion.spec.evidnce.sbom)", "promotion.spec.evidnce", "evidence, image"),
        ("source.imag == promotion.spec.image", "source.imag", "availableSince, healthy, image, imageId"),
        ("promotion.requestedBy.user == 'x'", "requestedBy.user", "groups, username"),
        ("promotion.spec.verification.rollback", "verification.rollback", "http, rollbackOnFailure, timeout"),
        ("// don't\npromotion.spec.imag != ''", "promotion.spec.imag", "image"),  # a quote in a comment
        ("'a // b' == promotion.spec.imag", "promotion.spec.imag", "image"),  # a // in a string
    ],
)
def test_a_field_no_promotion_has_is_named_with_the_fields_there_are(expression: str, named: str, listed: str) -> None:
    [problem] = celfields.unknown_fields(expression)
    assert named in problem and "no such field" in problem and listed in problem


def test_a_policy_with_such_a_rule_or_threshold_is_invalid_naming_where() -> None:
    policy = samples.gate_policy(
        rules=[{"name": "typo", "expression": "promotion.spec.evidence.securityScan.critcal == 0", "message": "m"}],
        riskThresholds=[{"name": "big", "when": "promotion.spec.rsk == 'High'", "counts": {"technical": 2}}],
    )
    problems = policies.validate_policy(policy)
    assert any(
        p.startswith("rules[typo].expression reads promotion.spec.evidence.securityScan.critcal") for p in problems
    )
    assert any(p.startswith("riskThresholds[big].when reads promotion.spec.rsk") for p in problems)
    assert all("kubectl explain promotion.spec" in p for p in problems)
    assert policies.validate_policy(samples.gate_policy()) == []


def test_a_variable_rules_are_not_given_is_named() -> None:
    policy = samples.gate_policy(
        rules=[{"name": "plural", "expression": "promotions.spec.risk != 'High' && [1].all(x, x > 0)", "message": "m"}]
    )
    [problem] = policies.validate_policy(policy)
    assert problem == (
        "rules[plural].expression reads promotions, which is not a variable: rules see promotion, source and now"
    )
