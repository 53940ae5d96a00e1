"""Fuzzing: generated GatePolicies, Promotions and Approvals, driven through the API over HTTPS.

Each object is refused at admission with a 4xx and a message (never a 5xx), or the operator gives
the Promotion a phase and a Ready condition that says why. The operator never dies, never logs an
unhandled exception, never hammers the API for one object, and never deploys without an approval.
"""

from __future__ import annotations

import logging
import string
import time
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from lockgate.devcluster import world
from tests.reliability import harness, invariants

NAMESPACE = "fuzz"
PROMOTIONS = f"{harness.API}/namespaces/{NAMESPACE}/promotions"
APPROVALS = f"{harness.API}/namespaces/{NAMESPACE}/approvals"
CI_EXAMPLES, LONG_EXAMPLES = 100, 10_000
MAX_REQUESTS_PER_OBJECT = 60  # operator requests naming one Promotion while it settles and idles


class Errors(logging.Handler):
    """Collects error records with a traceback from the operator's loggers (unhandled exceptions)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@pytest.fixture(scope="module")
def gate() -> Iterator[harness.Lockgate]:
    with harness.lockgate(workload_delay=0.05) as running:
        running.ok("DELETE", f"{harness.API}/gatepolicies/reliability")
        running.ok(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": {"fuzz": "yes"}}},
        )
        body = world.web_deployment(NAMESPACE)
        running.ok("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", body)
        yield running


names = st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=12)
durations = st.sampled_from(["24h", "1s", "0", "10m", "-1h", "forever", "", "1h30m", "9999999h"])
groups = st.lists(st.sampled_from(["engineering-leads", "security-leads", "oncall-leads", "engineers", ""]), max_size=3)
expressions = st.sampled_from(
    [
        "true",
        "false",
        "promotion.spec.image.contains('@sha256:')",
        "promotion.spec.evidence.securityScan.critical == 0",
        "promotion.spec.nope.nope == 1",
        "1 / 0 == 1",
        "this is not CEL",
        "now > timestamp('2020-01-01T00:00:00Z')",
        "",
    ]
)


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    approvals: dict[str, Any] = {
        "rules": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"name": names, "groups": groups, "count": st.integers(-2, 25)},
                    optional={"users": st.lists(st.sampled_from(["bob", "carol", "alice", "x"]), max_size=2)},
                ),
                max_size=3,
            )
        ),
    }
    if draw(st.booleans()):
        approvals["forbidSelfApproval"] = draw(st.booleans())
    if draw(st.booleans()):
        approvals["maxAge"] = draw(durations)
    spec: dict[str, Any] = {
        "namespaceSelector": draw(st.sampled_from([{"matchLabels": {"fuzz": "yes"}}, {}, {"matchLabels": {"x": "y"}}])),
        "approvals": approvals,
    }
    if draw(st.booleans()):
        spec["rules"] = draw(st.lists(st.fixed_dictionaries({"name": names, "expression": expressions}), max_size=2))
    if draw(st.booleans()):
        spec["waitTimer"] = draw(durations)
    if draw(st.booleans()):
        spec["emergency"] = {"groups": draw(groups), "required": draw(st.integers(-1, 3))}
    return {"apiVersion": "lockgate.dev/v1alpha1", "kind": "GatePolicy", "metadata": {"name": "fuzz"}, "spec": spec}


images = st.one_of(
    st.sampled_from(
        [
            "registry.example/web:2.0",
            "registry.example/web:2.1",
            "registry.example/web:2.0-broken",
            "registry.example/web@sha256:" + "a" * 64,
            "registry.example/web:3@sha256:" + "b" * 64,
            "registry.example/web",
            "UPPER/case:1",
            "",
            "web:1@sha256:short",
        ]
    ),
    st.text(max_size=30),
)


@st.composite
def promotions(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "target": draw(
            st.fixed_dictionaries(
                {
                    "kind": st.sampled_from(["Deployment"] * 6 + ["StatefulSet", "DaemonSet", "Pod", ""]),
                    "name": st.sampled_from(["web"] * 8 + ["missing", ""]),
                },
                optional={"container": st.sampled_from(["web"] * 4 + ["sidecar", ""])},
            )
        ),
        "image": draw(images),
    }
    if draw(st.booleans()):
        spec["change"] = {"description": draw(st.text(max_size=20)), "author": draw(st.sampled_from(["bob", "dave"]))}
    if draw(st.booleans()):
        spec["evidence"] = {
            "securityScan": {
                "status": draw(st.sampled_from(["Passed", "Failed", "Unknown", "bogus"])),
                "critical": draw(st.integers(-1, 3)),
            }
        }
    if draw(st.booleans()):
        spec["verification"] = {"timeout": draw(durations), "rollbackOnFailure": draw(st.booleans())}
    if draw(st.booleans()):
        spec["emergency"] = {"justification": draw(st.text(max_size=20))}
    return {"apiVersion": "lockgate.dev/v1alpha1", "kind": "Promotion", "metadata": {"name": "p"}, "spec": spec}


decisions = st.lists(
    st.tuples(
        st.sampled_from(["bob", "carol", "alice", "mallory", "dan"]),
        st.sampled_from(["Approve", "Reject", "RetroReview", "maybe"]),
        st.sampled_from([None, "sha256:" + "0" * 64, "garbage"]),
    ),
    max_size=3,
)


def refused_clearly(code: int, body: Any, what: str) -> bool:
    """201 (admitted) or a 4xx Status with a message; a 5xx is a failure of the API or a webhook."""
    assert code < 500, f"{what}: {code} {body}"
    if code >= 400:
        assert isinstance(body, dict) and body.get("message"), f"{what}: {code} without a message: {body}"
        return True
    return False


def cleanup(gate: harness.Lockgate) -> None:
    for path in (PROMOTIONS, APPROVALS):
        gate.api("DELETE", path)
    gate.api("DELETE", f"{harness.API}/gatepolicies/fuzz")
    gate.wait_for(
        lambda: not gate.ok("GET", PROMOTIONS)["items"], timeout=10, message="the fuzz Promotions to be deleted"
    )


@pytest.mark.timeout(4 * 3600)  # 10,000 examples with --long take far longer than the default 120 s
def test_generated_objects_are_refused_or_handled(gate: harness.Lockgate, long: bool) -> None:
    errors = Errors()
    for name in ("lockgate", "kopf"):
        logging.getLogger(name).addHandler(errors)
    counter = iter(range(1 << 30))
    admitted: list[str] = []

    @hypothesis.settings(
        max_examples=LONG_EXAMPLES if long else CI_EXAMPLES,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        database=None,
    )
    @hypothesis.given(policy=policies(), promotion=promotions(), approvals=decisions)
    def example(policy: dict[str, Any], promotion: dict[str, Any], approvals: list[tuple[str, str, Any]]) -> None:
        name = f"p-{next(counter)}"
        promotion["metadata"] = {"name": name, "namespace": NAMESPACE}
        started = time.time()
        try:
            refused_clearly(*gate.api("POST", f"{harness.API}/gatepolicies", policy), "GatePolicy")
            code, body = gate.retrying("POST", PROMOTIONS, promotion, user="alice")
            if refused_clearly(code, body, "Promotion"):
                return
            admitted.append(name)
            for index, (user, decision, spec_hash) in enumerate(approvals):
                spec = {"promotion": name, "decision": decision} | ({"specHash": spec_hash} if spec_hash else {})
                approval = {
                    "apiVersion": "lockgate.dev/v1alpha1",
                    "kind": "Approval",
                    "metadata": {"name": f"{name}-{index}", "namespace": NAMESPACE},
                    "spec": spec,
                }
                refused_clearly(*gate.retrying("POST", APPROVALS, approval, user=user), "Approval")

            def explained() -> dict[str, Any] | None:
                status = gate.ok("GET", f"{PROMOTIONS}/{name}").get("status") or {}
                ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
                return status if status.get("phase") and ready and ready["reason"] and ready["message"] else None

            gate.wait_for(explained, timeout=10, message=f"{name} to get a phase and a Ready condition")
            time.sleep(0.2)  # idle: a hot loop shows as requests piling up
            mine = [
                r
                for r in list(gate.cluster.requests)
                if r.time >= started and r.user == world.OPERATOR_USERNAME and name in r.path + r.user_agent
            ]
            assert len(mine) <= MAX_REQUESTS_PER_OBJECT, f"{len(mine)} operator requests for {name}"
            snap = harness.snapshot(gate, NAMESPACE)  # judged while this example's Approvals still exist:
            agent = f"promotion={NAMESPACE}/{name} "  # only its own patches (earlier ones' were cleaned up)
            snap.requests = [r for r in snap.requests if r.time >= started and agent in r.user_agent]
            problems = invariants.every_deploy_was_approved(snap) + invariants.one_rollout_per_cycle(snap)
            assert not problems, problems
        finally:
            cleanup(gate)
            assert gate.operator is not None and harness.alive(gate.operator), "the operator died"
            assert not errors.records, [errors.format(r) for r in errors.records]

    try:
        example()
        examples = next(counter)
        assert len(admitted) >= examples // 10, f"only {len(admitted)} of {examples} Promotions were admitted"
    finally:
        for name in ("lockgate", "kopf"):
            logging.getLogger(name).removeHandler(errors)
