"""JSON merge patch (RFC 7386) as the API server applies it: null deletes a key, a list is replaced whole."""

from __future__ import annotations

import json

import pytest

from lockgate.devcluster import runner, testing

DEPLOY = "/apis/apps/v1/namespaces/staging/deployments/web"
WIDGETS = "/apis/test.lockgate.dev/v1/namespaces/staging/widgets"
MERGE = "application/merge-patch+json"


def test_merge_patch_null_removes_the_key(devcluster: runner.RunningCluster) -> None:
    widget = {
        "apiVersion": "test.lockgate.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "labels": {"keep": "1", "drop": "1"}},
        "spec": {"image": "registry.example/w:1", "color": "red"},
    }
    assert testing.api(devcluster, "POST", WIDGETS, widget)[0] == 201
    patch = {"metadata": {"labels": {"drop": None}}, "spec": {"color": None}}
    status, body = testing.api(devcluster, "PATCH", WIDGETS + "/w1", patch, content_type=MERGE)
    assert status == 200, body
    assert body["metadata"]["labels"] == {"keep": "1"}
    assert "color" not in body["spec"]
    assert "color" not in testing.api(devcluster, "GET", WIDGETS + "/w1")[1]["spec"]


def test_merge_patch_replaces_lists_even_for_built_in_kinds(devcluster: runner.RunningCluster) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "other", "image": "registry.example/o:1"}]}}}}
    status, body = testing.api(devcluster, "PATCH", DEPLOY, patch, content_type=MERGE)
    assert status == 200, body
    assert [c["name"] for c in body["spec"]["template"]["spec"]["containers"]] == ["other"]


@pytest.mark.kubectl
@pytest.mark.usefixtures("kubectl_available")
def test_kubectl_label_removal_and_patch_type_merge(devcluster: runner.RunningCluster) -> None:
    added = testing.kubectl(devcluster, "label", "deployment/web", "-n", "staging", "tier=front")
    assert added.returncode == 0, added.stderr
    removed = testing.kubectl(devcluster, "label", "deployment/web", "-n", "staging", "tier-")
    assert removed.returncode == 0 and "unlabeled" in removed.stdout, removed.stderr
    labels = testing.kubectl(devcluster, "get", "deployment/web", "-n", "staging", "-o", "jsonpath={.metadata.labels}")
    assert "tier" not in json.loads(labels.stdout)

    containers = '{"spec":{"template":{"spec":{"containers":[{"name":"other","image":"registry.example/o:1"}]}}}}'
    patched = testing.kubectl(devcluster, "patch", "deployment/web", "-n", "staging", "--type=merge", "-p", containers)
    assert patched.returncode == 0, patched.stderr
    names = testing.kubectl(
        devcluster, "get", "deployment/web", "-n", "staging", "-o", "jsonpath={.spec.template.spec.containers[*].name}"
    )
    assert names.stdout.split() == ["other"]
