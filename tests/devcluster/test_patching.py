"""Patch types: strategic merge (kubectl set image), JSON patch, merge patch, 415 for strategic on CRDs."""

from __future__ import annotations

import pytest

from lockgate.devcluster import runner, testing

DEPLOY = "/apis/apps/v1/namespaces/staging/deployments/web"


def test_strategic_merge_patch_merges_containers_by_name(devcluster: runner.RunningCluster) -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "registry.example/sidecar:1"},
                        {"name": "web", "env": [{"name": "A", "value": "1"}]},
                    ]
                }
            }
        }
    }
    status, body = testing.api(
        devcluster, "PATCH", DEPLOY, patch, content_type="application/strategic-merge-patch+json"
    )
    assert status == 200, body
    containers = {c["name"]: c for c in body["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"web", "sidecar"}
    assert containers["web"]["image"] == "registry.example/web:1.0"  # kept: merged by name, not replaced
    assert containers["web"]["env"] == [{"name": "A", "value": "1"}]
    assert body["metadata"]["generation"] == 2


def test_json_patch_and_merge_patch(devcluster: runner.RunningCluster) -> None:
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 3}]
    status, body = testing.api(devcluster, "PATCH", DEPLOY, ops, content_type="application/json-patch+json")
    assert (status, body["spec"]["replicas"]) == (200, 3)
    status, body = testing.api(
        devcluster,
        "PATCH",
        DEPLOY,
        {"metadata": {"labels": {"x": "y"}}},
        content_type="application/merge-patch+json",
    )
    assert body["metadata"]["labels"] == {"app": "web", "x": "y"}
    status, body = testing.api(
        devcluster,
        "PATCH",
        DEPLOY,
        [{"op": "test", "path": "/spec/replicas", "value": 9}],
        content_type="application/json-patch+json",
    )
    assert status == 422


def test_strategic_merge_patch_on_custom_resource_is_415(devcluster: runner.RunningCluster) -> None:
    widgets = "/apis/test.lockgate.dev/v1/namespaces/staging/widgets"
    widget = {
        "apiVersion": "test.lockgate.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"image": "registry.example/w:1"},
    }
    testing.api(devcluster, "POST", widgets, widget)
    status, body = testing.api(
        devcluster,
        "PATCH",
        widgets + "/w1",
        {"spec": {"size": 2}},
        content_type="application/strategic-merge-patch+json",
    )
    assert (status, body["reason"]) == (415, "UnsupportedMediaType")


@pytest.mark.kubectl
@pytest.mark.usefixtures("kubectl_available")
def test_kubectl_set_image_scale_and_apply(devcluster: runner.RunningCluster) -> None:
    result = testing.kubectl(
        devcluster, "set", "image", "deployment/web", "web=registry.example/web:2", "-n", "staging"
    )
    assert "deployment.apps/web image updated" in result.stdout, result.stderr
    rollout = testing.kubectl(
        devcluster, "rollout", "status", "deployment/web", "-n", "staging", "--timeout=20s"
    )
    assert 'deployment "web" successfully rolled out' in rollout.stdout, rollout.stderr
    _, body = testing.api(devcluster, "GET", DEPLOY)
    assert [c["image"] for c in body["spec"]["template"]["spec"]["containers"]] == ["registry.example/web:2"]
    assert [p["containerPort"] for p in body["spec"]["template"]["spec"]["containers"][0]["ports"]] == [8080]

    assert (
        "scaled" in testing.kubectl(devcluster, "scale", "deploy/web", "-n", "staging", "--replicas=4").stdout
    )
    assert testing.api(devcluster, "GET", DEPLOY)[1]["spec"]["replicas"] == 4

    manifest = testing.kubectl(devcluster, "get", "deploy", "web", "-n", "staging", "-o", "yaml").stdout
    applied = testing.kubectl(
        devcluster, "apply", "-f", "-", input=manifest.replace("replicas: 4", "replicas: 5")
    )
    assert applied.returncode == 0, applied.stderr
    assert testing.api(devcluster, "GET", DEPLOY)[1]["spec"]["replicas"] == 5
