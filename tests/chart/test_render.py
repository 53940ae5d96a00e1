"""The chart renders, lints, and every object it renders is valid Kubernetes (official schemas)."""

from __future__ import annotations

import copy
import json
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.chart import rendering

KUBERNETES = "1.33.0"  # a recent release kubernetes-validate ships strict schemas for
THIRD_PARTY = {"monitoring.coreos.com/v1", "cert-manager.io/v1"}  # CRDs not in the official schemas

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "everything": rendering.EVERYTHING,
    "single-replica-text-logs": {
        "replicaCount": 1,
        "leaderElection": {"enabled": False},
        "operator": {"logFormat": "text"},
        "audit": {"sqlite": {"persistence": {"enabled": False}}},
        "networkPolicy": {"enabled": False},
        "rbac": {"userRoles": {"create": False}},
    },
    "existing-secret-operator-managed": {
        "webhook": {
            "operatorManaged": True,
            "certificate": {"source": "existingSecret", "existingSecret": "my-tls", "caBundle": "Zm9v"},
        },
        "stampKey": {"create": False, "secretName": "my-key"},
    },
}


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for crd in rendering.crds():
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_rendered_object_is_valid_against_the_official_schemas(variant: str) -> None:
    values = VARIANTS[variant]
    objects = rendering.render(values)
    assert objects
    crd_schemas = _crd_schemas()
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"] in THIRD_PARTY:
            assert obj["metadata"]["name"] and obj["spec"], name
            continue
        if (obj["apiVersion"], obj["kind"]) in crd_schemas:
            jsonschema.validate(obj, crd_schemas[(obj["apiVersion"], obj["kind"])])
            continue
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_values_are_valid_against_values_schema_json(variant: str) -> None:
    schema = json.loads((rendering.CHART / "values.schema.json").read_text())
    with helm_python.Chart.load(rendering.CHART) as chart:
        merged = chart.merge_values(VARIANTS[variant])
        chart.validate_schema(VARIANTS[variant])
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(merged, schema)


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"replicaCount": 0}, "replicaCount"),
        ({"audit": {"sinks": ["postgres"]}}, "sinks"),
        ({"webhook": {"failurePolicy": "Maybe"}}, "failurePolicy"),
        ({"image": {"digest": "latest"}}, "digest"),
        ({"audit": {"retention": "forever"}}, "retention"),
        ({"unknownKey": True}, "unknownKey"),
    ],
)
def test_bad_values_are_refused_by_the_schema(values: dict[str, Any], where: str) -> None:
    with helm_python.Chart.load(rendering.CHART) as chart, pytest.raises(helm_python.HelmValuesError) as err:
        chart.validate_schema(values)
    assert where in str(err.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"leaderElection": {"enabled": False}}, "leaderElection.enabled"),
        ({"audit": {"sinks": ["dynamodb"]}}, "audit.dynamodb.table"),
        ({"audit": {"sinks": ["s3"]}}, "audit.s3.bucket"),
        ({"webhook": {"certificate": {"source": "existingSecret"}}}, "existingSecret"),
    ],
)
def test_inconsistent_values_fail_with_a_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmError) as err:
        rendering.render(values)
    assert message in str(err.value)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_chart_lints_clean(variant: str) -> None:
    report = helm_python.lint(
        rendering.CHART, copy.deepcopy(VARIANTS[variant]), strict=True, namespace="lockgate-system"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report


def test_the_chart_carries_the_repository_crds_unchanged() -> None:
    chart_dir = rendering.CHART / "crds"
    for source in sorted((rendering.REPO / "crds").glob("*.yaml")):
        copy_ = chart_dir / source.name
        assert copy_.exists(), f"charts/lockgate/crds/{source.name} is missing: copy crds/ into the chart"
        assert copy_.read_text() == source.read_text(), f"charts/lockgate/crds/{source.name} differs from crds/"
    names = {crd["metadata"]["name"] for crd in rendering.crds()}
    assert names == {f"{plural}.lockgate.dev" for plural in ("promotions", "approvals", "gatepolicies")}
    for crd in rendering.crds():
        kubernetes_validate.validate(crd, KUBERNETES, strict=True)


def test_monitoring_toggles_render_the_alerts_and_the_dashboard() -> None:
    assert not rendering.of_kind(rendering.render(), "ServiceMonitor", "PrometheusRule", "ConfigMap")
    objects = rendering.render(rendering.EVERYTHING)
    monitor = rendering.one(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    rules = rendering.one(objects, "PrometheusRule")["spec"]["groups"][0]["rules"]
    exprs = " ".join(r["expr"] for r in rules)
    for metric in (
        "lockgate_oldest_awaiting_approval_seconds",
        'lockgate_audit_writes_total{result="failure"}',
        "lockgate_retro_reviews_overdue",
        "lockgate_rollbacks_total",
        "lockgate_paused_deployments",
        "lockgate_unguarded_webhooks",
        "lockgate_unverified_guard_conditions",
        "lockgate_watch_up",
    ):
        assert metric in exprs
    assert "> 3600" in exprs
    dashboard = rendering.one(objects, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["lockgate.json"])
    assert "lockgate_gate_latency_seconds_bucket" in json.dumps(board)


def test_notes_tell_the_next_steps() -> None:
    text = rendering.notes()
    assert "rollout status deployment/lockgate" in text
    assert "lockgate.dev/environment" in text and "lockgate-approver" in text
    assert "ReadWriteOnce" in text  # two replicas on a RWO sqlite volume is called out


def test_dumps_are_stable_yaml() -> None:
    # Every rendered document is one mapping with apiVersion, kind and a name (no empty or list docs).
    for obj in rendering.render(rendering.EVERYTHING):
        assert isinstance(obj, dict) and obj["apiVersion"] and obj["kind"] and obj["metadata"]["name"]
        yaml.safe_dump(obj)


def test_a_new_trail_is_accepted_only_when_a_reason_is_given() -> None:
    def audit_env(values: dict[str, Any]) -> dict[str, str]:
        deployment = rendering.one(rendering.render(values), "Deployment")
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        return {e["name"]: e.get("value", "") for e in env if e["name"].startswith("LOCKGATE_AUDIT_")}

    assert "LOCKGATE_AUDIT_NEW_TRAIL" not in audit_env({})
    reason = "CHG-77: the trail moved to the encrypted volume"
    assert audit_env({"audit": {"newTrail": reason}})["LOCKGATE_AUDIT_NEW_TRAIL"] == reason
