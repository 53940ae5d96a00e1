"""RBAC truth: the chart grants the operator exactly what the lifecycle needs.

The chart's ServiceAccount, roles and bindings are loaded into ``lockgate dev --empty`` (no sample
RBAC), the operator runs as that ServiceAccount with the chart's settings, and the lifecycle scenario
passes without a single refused request; with any one of the operator's rules removed, it fails.
"""

from __future__ import annotations

import asyncio
import pathlib
import shutil
from typing import Any

import pytest

from lockgate.kube import client as kclient
from lockgate.kube import config, freshreads
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


@pytest.mark.parametrize("values", [installed.chart_values(), SCOPED], ids=["cluster-wide", "scoped-to-production"])
def test_the_chart_permits_what_is_read_afresh_while_a_watch_is_not_streaming(values: dict[str, Any]) -> None:
    """At every stream renewal, and while a watch is down, the decision to deploy and the image guard read the
    GatePolicies, a Namespace and a Promotion's Approvals from the API: the chart's RBAC must allow those reads
    (the scenario above rarely meets such a moment, so they are made here as the operator makes them)."""

    async def read(kubeconfig: pathlib.Path) -> tuple[int, dict[str, str], int]:
        async with kclient.Client(config.load(kubeconfig, installed.OPERATOR_CONTEXT)) as api:
            reads = freshreads.FreshReads(api)
            policies, labels = await reads.policies("production", {})
            return len(policies), labels, len(await reads.approvals("production", "web-2"))

    with installed.installed(rendering.render(values)) as s:
        s.kubectl("apply", "-f", str(rendering.REPO / "examples" / "gatepolicy-production.yaml"))
        policies, labels, approvals = asyncio.run(read(s.workdir / "operator-kubeconfig"))
        assert (policies, labels.get("lockgate.dev/environment"), approvals) == (1, "production", 0)
        assert scenario.refused(s) == []


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
