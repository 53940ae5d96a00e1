"""Watches: ordered events with resourceVersions, resuming from a resourceVersion, bookmarks, selectors."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest

from lockgate.devcluster import runner, testing

CMS = "/api/v1/namespaces/staging/configmaps"


def configmap(name: str, **labels: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


def watch(cluster: runner.RunningCluster, query: str, timeout: float = 5) -> list[dict[str, object]]:
    request = urllib.request.Request(f"{cluster.url}{CMS}?watch=true&{query}")
    request.add_header("Authorization", f"Bearer {cluster.users['admin'].token}")
    with urllib.request.urlopen(request, timeout=timeout, context=testing.ssl_context(cluster)) as response:
        return [json.loads(line) for line in response.read().splitlines() if line.strip()]


def test_watch_replays_ordered_events_after_a_resource_version(devcluster: runner.RunningCluster) -> None:
    _, listing = testing.api(devcluster, "GET", CMS)
    start = listing["metadata"]["resourceVersion"]
    testing.api(devcluster, "POST", CMS, configmap("a"))
    testing.api(
        devcluster, "PATCH", CMS + "/a", {"data": {"k": "v"}}, content_type="application/merge-patch+json"
    )
    testing.api(devcluster, "DELETE", CMS + "/a")
    events = watch(devcluster, f"resourceVersion={start}&timeoutSeconds=1")
    assert [event["type"] for event in events] == ["ADDED", "MODIFIED", "DELETED"]
    versions = [int(event["object"]["metadata"]["resourceVersion"]) for event in events]  # type: ignore[index]
    assert versions == sorted(versions) and len(set(versions)) == 3 and versions[0] > int(start)


def test_watch_without_version_starts_with_current_objects(devcluster: runner.RunningCluster) -> None:
    testing.api(devcluster, "POST", CMS, configmap("a"))
    events = watch(devcluster, "timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]  # type: ignore[index]


def test_watch_selectors_and_bookmarks(devcluster: runner.RunningCluster) -> None:
    _, listing = testing.api(devcluster, "GET", CMS)
    start = listing["metadata"]["resourceVersion"]
    testing.api(devcluster, "POST", CMS, configmap("a", tier="front"))
    testing.api(devcluster, "POST", CMS, configmap("b", tier="back"))
    by_label = watch(devcluster, f"resourceVersion={start}&timeoutSeconds=1&labelSelector=tier%3Dback")
    assert [e["object"]["metadata"]["name"] for e in by_label] == ["b"]  # type: ignore[index]
    by_field = watch(devcluster, f"resourceVersion={start}&timeoutSeconds=1&fieldSelector=metadata.name%3Da")
    assert [e["object"]["metadata"]["name"] for e in by_field] == ["a"]  # type: ignore[index]
    with_bookmarks = watch(devcluster, f"resourceVersion={start}&timeoutSeconds=2&allowWatchBookmarks=true")
    bookmarks = [e for e in with_bookmarks if e["type"] == "BOOKMARK"]
    assert bookmarks and bookmarks[0]["object"]["kind"] == "ConfigMap"  # type: ignore[index]


@pytest.mark.kubectl
@pytest.mark.usefixtures("kubectl_available")
def test_kubectl_get_watch_prints_new_rows(devcluster: runner.RunningCluster) -> None:
    import os
    import shutil

    binary = shutil.which("kubectl")
    assert binary
    env = dict(os.environ, KUBECONFIG=str(devcluster.kubeconfig))
    proc = subprocess.Popen(
        [binary, "get", "wd", "-n", "staging", "-w"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        widget = {
            "apiVersion": "test.lockgate.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "late"},
            "spec": {"image": "registry.example/w:2"},
        }
        testing.api(devcluster, "POST", "/apis/test.lockgate.dev/v1/namespaces/staging/widgets", widget)
        time.sleep(1.0)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["NAME", "IMAGE"], (out, err)
    assert any(line.split()[:2] == ["late", "registry.example/w:2"] for line in lines[1:]), (out, err)
