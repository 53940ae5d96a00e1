"""CEL policy rules, including the seed's evidence rules."""

import pytest

from lockgate.api import phases
from lockgate.gates import celrules


def _approved(world) -> None:
    world.approve("bob", "engineering-leads")
    world.approve("carol", "security-leads")


@pytest.mark.parametrize(
    ("evidence", "rule"),
    [
        ({"securityScan": {"status": "Failed", "critical": 1, "high": 0}}, "no-critical-vulnerabilities"),
        ({"securityScan": {"status": "Passed", "critical": 0, "high": 6}}, "few-high-vulnerabilities"),
        ({"integrationTests": {"status": "Failed"}}, "integration-tests-passed"),
        ({"sbom": {"licenses": ["MIT", "AGPL-3.0"]}}, "no-banned-licenses"),
        ({"sbom": {"licenses": ["GPL-3.0"]}}, "no-banned-licenses"),
    ],
)
def test_default_evidence_rules_deny(world, find, evidence, rule) -> None:
    spec = world.promotion.to_k8s()["spec"]["evidence"]
    spec.update(evidence)
    world.change(evidence=spec)
    _approved(world)
    d = world.evaluate()
    assert d.phase is phases.Phase.PENDING
    failed = [g for g in d.gates if not g.passed]
    assert [g.name for g in failed] == [f"production/{rule}"]
    assert failed[0].reason == "RuleFailed"
    assert not d.policy_passed
    assert failed[0].message in d.summary


def test_default_evidence_rules_pass_on_good_evidence(world) -> None:
    _approved(world)
    d = world.evaluate()
    assert d.phase is phases.Phase.APPROVED
    assert [g.reason for g in d.gates if g.kind == "Rule"] == ["RulePassed"] * 4


def test_missing_evidence_is_an_evaluation_error_that_denies(world, find) -> None:
    world.change(evidence=None)
    d = world.evaluate()
    g = find.gate(d, "production/no-critical-vulnerabilities")
    assert (g.passed, g.reason) == (False, "RuleError")
    assert "evaluation error" in g.message
    assert d.phase is phases.Phase.PENDING


def test_rule_that_does_not_compile_denies_with_its_name(world, find) -> None:
    world.policy(rules=[{"name": "broken", "expression": "promotion.spec.image ==", "message": "m"}])
    d = world.evaluate()
    g = find.gate(d, "production/broken")
    assert (g.passed, g.reason) == (False, "RuleError")
    assert "does not compile" in g.message
    assert "production/broken" in d.summary


def test_non_boolean_result_denies(world, find) -> None:
    world.policy(rules=[{"name": "number", "expression": "1 + 1"}])
    g = find.gate(world.evaluate(), "production/number")
    assert (g.passed, g.reason) == (False, "RuleError")
    assert "must be true or false" in g.message


def test_rules_see_requester_source_and_now(world, find) -> None:
    from lockgate.gates import facts

    world.policy(
        rules=[
            {"name": "digest", "expression": "promotion.spec.image.contains('@sha256:')"},
            {"name": "requester", "expression": "promotion.requestedBy.username == 'alice'"},
            {"name": "no-source", "expression": "source == null"},
            {"name": "weekday", "expression": "now.getDayOfWeek() == 1"},
            {"name": "namespace", "expression": "promotion.metadata.namespace == 'production'"},
        ]
    )
    d = world.evaluate()
    assert [g.reason for g in d.gates if g.kind == "Rule"] == ["RulePassed"] * 5
    world.source = facts.SourceState(image="x", healthy=True)
    world.policies[0].spec.rules[2].expression = "source.healthy"
    assert find.gate(world.evaluate(), "production/no-source").passed


def test_expressions_compile_once() -> None:
    celrules.compile_expression.cache_clear()
    first = celrules.compile_expression("1 == 1")
    assert celrules.compile_expression("1 == 1") is first
    assert celrules.compile_expression.cache_info().hits == 1


def test_results_of_rules_that_read_now_are_not_memoised(world, find) -> None:
    import datetime

    world.policy(
        rules=[
            {"name": "monday", "expression": "now.getDayOfWeek() == 1"},
            {"name": "digest", "expression": "promotion.spec.image.contains('@sha256:')"},
        ]
    )
    assert find.gate(world.evaluate(), "production/monday").passed
    tuesday = world.evaluate(world.now + datetime.timedelta(days=1))
    assert not find.gate(tuesday, "production/monday").passed
    assert find.gate(tuesday, "production/digest").passed
    assert celrules.static("promotion.spec.image == 'x'")
    assert not celrules.static("now > timestamp('2025-01-01T00:00:00Z')")
    assert not celrules.static("source == null")


DIGEST_PINNED = {  # README, "Hardening": a tag can be moved after approval, a digest cannot
    "name": "digest-pinned",
    "expression": "promotion.spec.image.matches('@sha256:[0-9a-f]{64}$')",
    "message": "pin the image by digest (registry/name@sha256:...): a tag can point elsewhere after approval",
}


def test_a_policy_can_require_images_pinned_by_digest(world, find) -> None:
    world.policy(rules=[DIGEST_PINNED])
    world.change(image="registry.example/web:2.0")
    _approved(world)
    d = world.evaluate()
    assert d.phase is phases.Phase.PENDING
    gate = find.gate(d, "production/digest-pinned")
    assert not gate.passed and DIGEST_PINNED["message"] in gate.message
    world.change(image="registry.example/web:2.0@sha256:" + "ab" * 32)
    _approved(world)
    assert find.gate(world.evaluate(), "production/digest-pinned").passed
