"""Field selectors on ``metadata.namespace`` (and ``metadata.name``) for cluster-wide lists and watches."""

from __future__ import annotations

import json
import urllib.request

import pytest

from lockgate.devcluster import runner, testing

ALL_CMS = "/api/v1/configmaps"


def configmap(cluster: runner.RunningCluster, namespace: str, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    status, answer = testing.api(cluster, "POST", f"/api/v1/namespaces/{namespace}/configmaps", body)
    assert status == 201, answer


def watch_all(cluster: runner.RunningCluster, query: str) -> list[dict[str, object]]:
    request = urllib.request.Request(f"{cluster.url}{ALL_CMS}?watch=true&timeoutSeconds=1&{query}")
    request.add_header("Authorization", f"Bearer {cluster.users['admin'].token}")
    with urllib.request.urlopen(request, timeout=10, context=testing.ssl_context(cluster)) as response:
        return [json.loads(line) for line in response.read().splitlines() if line.strip()]


def placed(items: list[dict[str, object]]) -> set[tuple[str, str]]:
    return {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items}  # type: ignore[index]


def test_cluster_wide_watch_filters_by_namespace_field(devcluster: runner.RunningCluster) -> None:
    _, listing = testing.api(devcluster, "GET", ALL_CMS)
    start = listing["metadata"]["resourceVersion"]
    configmap(devcluster, "staging", "here")
    configmap(devcluster, "production", "there")
    events = watch_all(devcluster, f"resourceVersion={start}&fieldSelector=metadata.namespace%3Dstaging")
    assert placed([e["object"] for e in events]) == {("staging", "here")}  # type: ignore[misc]
    events = watch_all(devcluster, f"resourceVersion={start}&fieldSelector=metadata.namespace%21%3Dstaging")
    assert placed([e["object"] for e in events]) == {("production", "there")}  # type: ignore[misc]


def test_cluster_wide_list_filters_by_namespace_and_name_fields(devcluster: runner.RunningCluster) -> None:
    configmap(devcluster, "staging", "same")
    configmap(devcluster, "production", "same")
    status, listing = testing.api(devcluster, "GET", ALL_CMS + "?fieldSelector=metadata.namespace%3Dproduction")
    assert status == 200
    assert ("production", "same") in placed(listing["items"])
    assert {ns for ns, _ in placed(listing["items"])} == {"production"}
    query = "?fieldSelector=metadata.namespace%3Dstaging,metadata.name%3Dsame"
    assert placed(testing.api(devcluster, "GET", ALL_CMS + query)[1]["items"]) == {("staging", "same")}


@pytest.mark.kubectl
@pytest.mark.usefixtures("kubectl_available")
def test_kubectl_field_selector_on_namespace(devcluster: runner.RunningCluster) -> None:
    configmap(devcluster, "staging", "mine")
    configmap(devcluster, "production", "mine")
    result = testing.kubectl(
        devcluster,
        "get",
        "configmaps",
        "-A",
        "--field-selector",
        "metadata.namespace=staging,metadata.name=mine",
        "-o",
        "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{'\\n'}{end}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["staging/mine"]
