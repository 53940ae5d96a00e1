"""kubectl apply/get/describe/delete of custom and built-in objects, with printer columns."""

from __future__ import annotations

import pytest

from lockgate.devcluster import runner, testing

pytestmark = [pytest.mark.kubectl, pytest.mark.usefixtures("kubectl_available")]

WIDGET = """
apiVersion: test.lockgate.dev/v1
kind: Widget
metadata: {name: w1}
spec: {image: "registry.example/w:1", color: red, owner: me}
"""


def test_apply_get_describe_delete_custom_object(devcluster: runner.RunningCluster) -> None:
    created = testing.kubectl(devcluster, "apply", "-n", "staging", "-f", "-", input=WIDGET)
    assert created.returncode == 0, created.stderr
    assert "widget.test.lockgate.dev/w1 created" in created.stdout

    again = testing.kubectl(
        devcluster, "apply", "-n", "staging", "-f", "-", input=WIDGET.replace("red", "blue")
    )
    assert "widget.test.lockgate.dev/w1 configured" in again.stdout, again.stderr

    got = testing.kubectl(devcluster, "get", "wd", "w1", "-n", "staging", "-o", "jsonpath={.spec.color}")
    assert got.stdout == "blue"

    described = testing.kubectl(devcluster, "describe", "widget", "w1", "-n", "staging")
    assert described.returncode == 0, described.stderr
    assert "Image:  registry.example/w:1" in described.stdout

    deleted = testing.kubectl(devcluster, "delete", "wd", "w1", "-n", "staging")
    assert 'widget.test.lockgate.dev "w1" deleted' in deleted.stdout
    gone = testing.kubectl(devcluster, "get", "wd", "w1", "-n", "staging")
    assert gone.returncode == 1
    assert 'widgets.test.lockgate.dev "w1" not found' in gone.stderr


def test_get_prints_crd_printer_columns(devcluster: runner.RunningCluster) -> None:
    testing.kubectl(devcluster, "apply", "-n", "staging", "-f", "-", input=WIDGET)
    table = testing.kubectl(devcluster, "get", "wd", "-n", "staging")
    header, row = table.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "IMAGE", "SIZE", "PHASE", "READY", "AGE"]
    assert row.split()[:3] == ["w1", "registry.example/w:1", "1"]  # SIZE defaulted by the schema


def test_get_by_category_and_all_namespaces(devcluster: runner.RunningCluster) -> None:
    testing.kubectl(devcluster, "apply", "-n", "production", "-f", "-", input=WIDGET)
    table = testing.kubectl(devcluster, "get", "lockgate-test", "-A")
    assert table.stdout.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert "production" in table.stdout


def test_builtin_objects_and_deployment_columns(devcluster: runner.RunningCluster) -> None:
    configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1}\ndata: {a: '1', b: '2'}\n"
    created = testing.kubectl(devcluster, "apply", "-n", "staging", "-f", "-", input=configmap)
    assert "configmap/c1 created" in created.stdout, created.stderr
    assert testing.kubectl(devcluster, "get", "cm", "c1", "-n", "staging").stdout.split()[-3:-1] == [
        "c1",
        "2",
    ]

    deployments = testing.kubectl(devcluster, "get", "deploy", "-n", "production")
    header, row = deployments.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert row.split()[:4] == ["web", "2/2", "2", "2"]

    described = testing.kubectl(devcluster, "describe", "deploy", "web", "-n", "production")
    assert "Replicas:               2 desired | 2 updated | 2 total | 2 available" in described.stdout
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in described.stdout  # defaults

    assert "deleted" in testing.kubectl(devcluster, "delete", "cm", "c1", "-n", "staging").stdout


def test_missing_namespace_is_not_found(devcluster: runner.RunningCluster) -> None:
    result = testing.kubectl(devcluster, "apply", "-n", "nowhere", "-f", "-", input=WIDGET)
    assert result.returncode == 1
    assert 'namespaces "nowhere" not found' in result.stderr


def test_label_selectors_on_list(devcluster: runner.RunningCluster) -> None:
    for name, tier in (("a", "front"), ("b", "back"), ("c", "")):
        labels = f"labels: {{tier: {tier}}}" if tier else ""
        manifest = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  {labels}\n"
        testing.kubectl(devcluster, "apply", "-n", "staging", "-f", "-", input=manifest)

    def names(selector: str) -> set[str]:
        out = testing.kubectl(devcluster, "get", "cm", "-n", "staging", "-l", selector, "-o", "name").stdout
        return {line.split("/")[-1] for line in out.split()}

    assert names("tier=front") == {"a"}
    assert names("tier!=front") == {"b", "c"}
    assert names("tier in (front,back)") == {"a", "b"}
    assert names("tier notin (front)") == {"b", "c"}
    assert names("tier") == {"a", "b"}
    assert names("!tier") == {"c"}
