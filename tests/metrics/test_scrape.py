"""``/metrics`` after a scenario: gate latency, outcomes, rollbacks, approvals, audit writes, live gauges."""

from __future__ import annotations

import pathlib
import shutil
import socket
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import parser

from lockgate import settings
from lockgate.devcluster import server, world
from lockgate.handlers import testing
from tests.lifecycle import manifests

REPO = pathlib.Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def operator_settings(port: int) -> settings.OperatorSettings:
    return settings.OperatorSettings(
        standalone=True,
        metrics_port=port,
        metrics_host="127.0.0.1",
        health_port=0,
        webhook_port=0,
        webhook_host="127.0.0.1",
        webhook_public_host="127.0.0.1",
    )


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in parser.text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every sample of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def lockgate(port: int) -> Iterator[testing.Stack]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH: these tests apply manifests with the real kubectl")
    with testing.stack(settings=operator_settings(port)) as running:
        running.kubectl("apply", "-f", str(REPO / "examples" / "gatepolicy-production.yaml"))
        yield running


def approve(stack: testing.Stack, promotion: str, *users: str) -> None:
    for user in users:
        stack.apply(manifests.approval(f"{promotion}-{user}", promotion), context=user)


def test_a_scenario_shows_up_in_the_metrics(lockgate: testing.Stack, port: int) -> None:
    lockgate.apply(manifests.promotion("web-2"), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    approve(lockgate, "web-2", "alice", "bob", "carol")  # alice's does not count
    lockgate.wait_phase("web-2", "Succeeded")
    lockgate.apply(manifests.promotion("web-3", image="registry.example/web:2.0-broken"), context="alice")
    lockgate.wait_phase("web-3", "AwaitingApproval")
    approve(lockgate, "web-3", "bob", "carol")
    lockgate.wait_phase("web-3", "RolledBack", timeout=40)
    lockgate.apply(manifests.promotion("web-4"), context="alice")
    lockgate.wait_phase("web-4", "AwaitingApproval")

    samples = scrape(port)

    assert value(samples, "lockgate_gate_latency_seconds_count", namespace="production") == 2
    assert value(samples, "lockgate_gate_latency_seconds_bucket", namespace="production", le="+Inf") == 2
    assert 0 < value(samples, "lockgate_gate_latency_seconds_sum") < 60
    assert value(samples, "lockgate_promotions_total", namespace="production", outcome="Succeeded") == 1
    assert value(samples, "lockgate_promotions_total", namespace="production", outcome="RolledBack") == 1
    assert value(samples, "lockgate_promotion_duration_seconds_count", outcome="Succeeded") == 1
    assert value(samples, "lockgate_rollbacks_total") == 1
    assert value(samples, "lockgate_approvals_total", decision="Approve", counted="true") == 4
    assert value(samples, "lockgate_approvals_total", decision="Approve", counted="false") == 1
    assert value(samples, "lockgate_approvals_not_counted_total", reason="SelfApproval") == 1
    assert value(samples, "lockgate_promotions_awaiting_approval", namespace="production") == 1
    assert value(samples, "lockgate_oldest_awaiting_approval_seconds") >= 0
    assert value(samples, "lockgate_audit_writes_total", result="success") >= 4
    assert value(samples, "lockgate_audit_writes_total", result="failure") == 0


def test_live_gauges_are_rebuilt_after_an_operator_restart(lockgate: testing.Stack, port: int) -> None:
    lockgate.apply(manifests.promotion("web-2"), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    before = scrape(port)
    assert value(before, "lockgate_promotions_awaiting_approval", namespace="production") == 1

    lockgate.stop_operator()
    lockgate.start_operator(settings=operator_settings(port))

    def rebuilt() -> Samples | None:
        samples = scrape(port)
        return samples if value(samples, "lockgate_promotions_awaiting_approval", namespace="production") else None

    after = lockgate.wait_for(rebuilt, message="the awaiting gauge after the restart")
    assert value(after, "lockgate_promotions_awaiting_approval", namespace="production") == 1
    assert value(after, "lockgate_oldest_awaiting_approval_seconds") >= value(
        before, "lockgate_oldest_awaiting_approval_seconds"
    )
    assert value(after, "lockgate_gate_latency_seconds_count") == 0  # counters start again; gauges do not


def test_a_watch_the_api_refuses_shows_as_down_until_it_is_back(port: int) -> None:
    mode = {"now": "cut"}

    def policies_watch(record: server.RequestRecord) -> server.Fault | None:
        if record.user != world.OPERATOR_USERNAME or record.resource != "gatepolicies" or record.verb != "watch":
            return None
        if mode["now"] == "cut":  # every stream ends after 1.5 s, without a clean end: it resumes at once
            return server.Fault(drop_watch_after=1.5)
        if mode["now"] == "refused":  # RBAC lost for GatePolicies, say
            return server.Fault(code=403, reason="Forbidden", message="injected")
        return None

    def up(resource: str) -> float:
        return value(scrape(port), "lockgate_watch_up", resource=resource)

    every = ("promotions", "approvals", "gatepolicies", "namespaces", "deployments", "statefulsets", "daemonsets")
    with testing.stack(operator=False) as stack:
        stack.cluster.cluster.fault_hook = policies_watch
        stack.start_operator(settings=operator_settings(port))
        stack.wait_for(lambda: all(up(r) == 1 for r in every), message="every watch up")
        assert up("validatingwebhookconfigurations") == 1

        mode["now"] = "refused"
        stack.wait_for(lambda: up("gatepolicies") == 0, message="the GatePolicy watch down", timeout=30)
        assert up("promotions") == 1

        mode["now"] = "served"
        stack.wait_for(lambda: up("gatepolicies") == 1, message="the GatePolicy watch back", timeout=30)
