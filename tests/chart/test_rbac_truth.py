"""RBAC truth: the chart grants the operator exactly what the lifecycle needs.

The chart's ServiceAccount, roles and bindings are loaded into ``lockgate dev --empty`` (no sample
RBAC), the operator runs as that ServiceAccount with the chart's settings, and the lifecycle scenario
passes without a single refused request; with any one of the operator's rules removed, it fails.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.chart import installed, rendering, scenario

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="drives the real kubectl")

SCOPED = installed.chart_values(rbac={**installed.USER_VALUES["rbac"], "workloadNamespaces": ["production"]})
RULES = installed.operator_rules(rendering.render(SCOPED))
STEP_TIMEOUT = 8.0  # a missing rule shows as a refusal within a second or two; this only bounds a stall


def _matches(rule: dict[str, Any], verb: str, group: str, resource: str, name: str) -> bool:
    return (
        verb in rule["verbs"]
        and group in rule["apiGroups"]
        and resource in rule["resources"]
        and (not rule.get("resourceNames") or name in rule["resourceNames"])
    )


@pytest.mark.parametrize("values", [installed.chart_values(), SCOPED], ids=["cluster-wide", "scoped-to-production"])
def test_the_lifecycle_passes_with_the_charts_permissions_and_uses_every_rule(values: dict[str, Any]) -> None:
    objects = rendering.render(values)
    refs = installed.operator_rules(objects)
    with installed.installed(objects) as s:
        scenario.lifecycle(s)
        assert scenario.refused(s) == []
        calls = {
            (r.verb, r.api_group, r.resource + (f"/{r.subresource}" if r.subresource else ""), r.name)
            for r in list(s.cluster.cluster.requests)
            if r.user == rendering.IDENTITY and r.resource
        }
    unused = [ref.id for ref in refs if not any(_matches(ref.rule, *call) for call in calls)]
    assert not unused, f"rules the operator never used: {unused}"


@pytest.mark.parametrize("ref", RULES, ids=[ref.id for ref in RULES])
def test_removing_any_one_rule_breaks_the_lifecycle(ref: installed.RuleRef) -> None:
    objects = installed.without(rendering.render(SCOPED), ref)
    denied: list[str] = []
    with (
        pytest.raises((AssertionError, RuntimeError, TimeoutError)) as failure,
        installed.installed(objects, start_timeout=STEP_TIMEOUT) as s,
    ):
        try:
            scenario.lifecycle(s, timeout=STEP_TIMEOUT)
        finally:
            denied = scenario.refused(s)
    # The failure is the API refusing the operator (without its key the operator does not even start).
    assert denied or "the API refused it: ['" in str(failure.value), failure.value
