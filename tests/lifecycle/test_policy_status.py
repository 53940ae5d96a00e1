"""GatePolicy statuses (``lifecycle/policystatus.py``): the guard's coverage only once the view is whole, each
change written once, and an API that refuses the write tried again less and less often."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import yaml

from lockgate.admission import coverage
from lockgate.handlers import testing
from lockgate.kube import client as kclient
from lockgate.lifecycle import policystatus, statuses, view
from tests.chart import rendering
from tests.conftest import REPO

POLICY = yaml.safe_load((REPO / "examples" / "gatepolicy-production.yaml").read_text())


class RecordingApi:
    """Stands in for the API client: records status patches, answers them as the API would, or refuses."""

    def __init__(self, refuse: bool = False) -> None:
        self.patches: list[dict[str, Any]] = []
        self.refuse = refuse

    async def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(body["status"])
        if self.refuse:
            raise kclient.ApiError(403, "Forbidden", f"{path} is forbidden")
        return {}


def _cluster() -> view.ClusterView:
    cluster = view.ClusterView()
    cluster.put_policy(copy.deepcopy(POLICY))
    cluster.put_namespace({"metadata": {"name": "production", "labels": {"lockgate.dev/environment": "production"}}})
    config = rendering.one(rendering.render(), "ValidatingWebhookConfiguration")
    for hook in config["webhooks"]:  # the guard's selector wants another label: production is not guarded
        if hook["name"].startswith("guard-"):
            hook["namespaceSelector"] = {"matchLabels": {"guarded": "yes"}}
    cluster.put_guard_configuration(config)
    return cluster


def test_coverage_is_judged_only_once_the_view_is_whole_and_each_change_is_written_once() -> None:
    async def scenario() -> None:
        api, primed = RecordingApi(), asyncio.Event()
        statuses = policystatus.PolicyStatuses(api, _cluster(), primed=primed)  # type: ignore[arg-type]
        await statuses.publish(POLICY)
        assert "conditions" not in api.patches[-1]  # namespaces may still be arriving: no claim either way
        primed.set()
        await statuses.publish(POLICY)
        written = api.patches[-1]
        assert written["unguardedNamespaces"] == ["production"]
        condition = written["conditions"][0]
        assert (condition["type"], condition["status"], condition["reason"]) == (
            "ImageGuardCalled",
            "False",
            "GuardNotCalled",
        )
        count = len(api.patches)
        await statuses.publish({**POLICY, "status": written})  # as the watch brings it back: nothing to write
        assert len(api.patches) == count
        await statuses.publish({**POLICY, "status": {**written, "conditions": []}})
        assert len(api.patches) == count + 1

    asyncio.run(scenario())


def test_a_refused_write_is_retried_less_and_less_often() -> None:
    async def scenario() -> None:
        api = RecordingApi(refuse=True)
        cluster = _cluster()
        statuses = policystatus.PolicyStatuses(api, cluster, every=0.01)  # type: ignore[arg-type]
        statuses.start()
        statuses.changed()
        await asyncio.sleep(0.5)  # 0.02 + 0.04 + 0.08 + 0.16 + 0.32: about five tries, not fifty
        await statuses.stop()
        assert 3 <= len(api.patches) <= 7

    asyncio.run(scenario())


def test_conditions_lockgate_cannot_evaluate_make_the_guard_call_unknown_not_false() -> None:
    """A guard webhook condition in Kubernetes-only CEL (``authorizer``): whether the guard is called cannot be
    told, so the policy says Unknown and what to check, and no namespace is listed as unguarded."""

    async def scenario() -> None:
        api = RecordingApi()
        cluster = view.ClusterView()
        cluster.put_policy(copy.deepcopy(POLICY))
        labels = {"lockgate.dev/environment": "production"}
        cluster.put_namespace({"metadata": {"name": "production", "labels": labels}})
        config = rendering.one(rendering.render(), "ValidatingWebhookConfiguration")
        for hook in config["webhooks"]:
            if hook["name"] == "guard-statefulsets.lockgate.dev":
                hook["matchConditions"] = [
                    {"name": "authz", "expression": "authorizer.path('/x').check('get').allowed()"}
                ]
        cluster.put_guard_configuration(config)
        await policystatus.PolicyStatuses(api, cluster).publish(POLICY)  # type: ignore[arg-type]
        written = api.patches[-1]
        assert written["unguardedNamespaces"] == []
        condition = written["conditions"][0]
        assert (condition["status"], condition["reason"]) == ("Unknown", "GuardConditionsUnverified")
        assert "guard-statefulsets.lockgate.dev: its matchCondition authz cannot be evaluated" in condition["message"]
        assert "Restore the webhooks' matchConditions as the chart renders them" in condition["message"]
        cluster.put_guard_configuration(rendering.one(rendering.render(), "ValidatingWebhookConfiguration"))
        await policystatus.PolicyStatuses(api, cluster).publish({**POLICY, "status": written})  # type: ignore[arg-type]
        assert api.patches[-1]["conditions"][0]["status"] == "True"

    asyncio.run(scenario())


def test_a_coverage_judged_in_parts_is_republished_until_the_last_part_is_written() -> None:
    """450 gated namespaces and a guard condition that reads the namespace through a function: probed 100 a
    pass, each pass published, until the status names every namespace where the guard is skipped."""

    async def scenario() -> None:
        api = RecordingApi()
        cluster = view.ClusterView()
        cluster.put_policy(copy.deepcopy(POLICY))
        for i in range(450):
            labels = {"lockgate.dev/environment": "production"}  # gated by the production policy
            cluster.put_namespace({"metadata": {"name": f"team-{i}", "labels": labels}})
        config = rendering.one(rendering.render(), "ValidatingWebhookConfiguration")
        for hook in config["webhooks"]:
            if hook["name"] == "guard-pods.lockgate.dev":
                hook["matchConditions"].append({"name": "p", "expression": "!request.namespace.startsWith('team-44')"})
        cluster.put_guard_configuration(config)
        statuses = policystatus.PolicyStatuses(api, cluster, every=0.01)  # type: ignore[arg-type]
        statuses.start()
        statuses.changed()
        expected = ["team-44", *(f"team-44{i}" for i in range(10))]
        for _ in range(500):  # bounded: 5 passes of 100 namespaces, then the last write
            await asyncio.sleep(0.02)
            if api.patches and sorted(api.patches[-1]["unguardedNamespaces"]) == sorted(expected):
                break
        await statuses.stop()
        final = api.patches[-1]
        assert sorted(final["unguardedNamespaces"]) == sorted(expected)
        assert final["conditions"][0]["status"] == "False"
        assert api.patches[0]["unguardedNamespaces"] == ["team-44"]  # the first pass probed team-0 to team-99

    asyncio.run(scenario())


def test_a_policy_stored_with_forbid_self_approval_false_says_in_its_status_that_the_value_is_refused() -> None:
    """Admission refuses it now; one stored before is judged as true, and its status says so."""
    stored = copy.deepcopy(POLICY)
    stored["spec"]["approvals"]["forbidSelfApproval"] = False
    [problem] = statuses.policy_status(stored)["problems"]
    assert problem.startswith("approvals.forbidSelfApproval cannot be false") and "separation of duties" in problem
    assert statuses.policy_status(POLICY)["problems"] == []


def test_the_configuration_the_operator_writes_itself_calls_its_guard_in_every_gated_namespace(
    lockgate: testing.Stack,
) -> None:
    """Where Kopf writes the webhook configuration (``manage_webhooks``, as in ``lockgate dev``), the guards that fail
    open there by design (Pods, ReplicaSets, Jobs, the Scale guards) are not reported as gaps: the policy says the
    guard is called."""

    def called() -> dict[str, Any] | None:
        policy = json.loads(lockgate.kubectl("get", "gatepolicy", "production", "-o", "json").stdout)
        found = [c for c in (policy.get("status") or {}).get("conditions") or [] if c["type"] == "ImageGuardCalled"]
        return found[0] if found else None

    namespace = json.loads(lockgate.kubectl("get", "namespace", "production", "-o", "json").stdout)
    assert namespace["metadata"]["labels"].get("lockgate.dev/environment") == "production"  # the policy gates it
    condition = lockgate.wait_for(called, message="the policy's ImageGuardCalled condition")
    assert (condition["status"], condition["reason"]) == ("True", "Called"), condition
    assert "guard-pods.lockgate.dev" in condition["message"] and "fail open" in condition["message"]  # said, though
    written = json.loads(
        lockgate.kubectl("get", "validatingwebhookconfiguration", coverage.CONFIGURATION, "-o", "json").stdout
    )
    open_by_design = {h["name"] for h in written["webhooks"] if h.get("failurePolicy") == "Ignore"}
    assert "guard-pods.lockgate.dev" in open_by_design and "guard-replicasets-scale.lockgate.dev" in open_by_design
