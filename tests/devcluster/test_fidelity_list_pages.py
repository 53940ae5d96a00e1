"""Lists in pages (``limit`` and ``continue``), as client-go's pager, kubectl and Kopf's chunked listing ask."""

from __future__ import annotations

from typing import Any

from lockgate.devcluster import runner, testing

PAGED = "/api/v1/namespaces/paged/configmaps"


def configmaps(cluster: runner.RunningCluster, names: list[str]) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "paged"}}
    status, answer = testing.api(cluster, "POST", "/api/v1/namespaces", namespace)
    assert status in (201, 409), answer
    for name in names:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
        status, answer = testing.api(cluster, "POST", PAGED, body)
        assert status == 201, answer


def pages(cluster: runner.RunningCluster, query: str) -> list[dict[str, Any]]:
    answers, token = [], ""
    while True:
        status, listing = testing.api(cluster, "GET", f"{PAGED}?{query}" + (f"&continue={token}" if token else ""))
        assert status == 200, listing
        answers.append(listing)
        token = listing["metadata"].get("continue", "")
        if not token:
            return answers


def test_a_list_comes_in_pages_of_limit_in_key_order_at_one_resource_version(
    devcluster: runner.RunningCluster,
) -> None:
    configmaps(devcluster, [f"cm-{i}" for i in (3, 1, 4, 0, 2)])
    answers = pages(devcluster, "limit=2")
    assert [[i["metadata"]["name"] for i in a["items"]] for a in answers] == [
        ["cm-0", "cm-1"],
        ["cm-2", "cm-3"],
        ["cm-4"],
    ]
    assert len({a["metadata"]["resourceVersion"] for a in answers}) == 1  # a watch from it misses nothing


def test_a_change_between_pages_is_not_lost_by_a_watch_from_the_list(devcluster: runner.RunningCluster) -> None:
    configmaps(devcluster, ["a", "b"])
    status, first = testing.api(devcluster, "GET", f"{PAGED}?limit=1")
    assert status == 200 and first["metadata"]["continue"]
    configmaps(devcluster, ["c"])  # created after the first page
    status, rest = testing.api(devcluster, "GET", f"{PAGED}?limit=5&continue={first['metadata']['continue']}")
    assert [i["metadata"]["name"] for i in rest["items"]] == ["b", "c"]
    assert "continue" not in rest["metadata"]
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    created = int(rest["items"][1]["metadata"]["resourceVersion"])
    assert created > int(rest["metadata"]["resourceVersion"])  # so a watch from the list's version sees it


def test_without_a_limit_a_list_is_whole_and_a_bad_token_is_refused(devcluster: runner.RunningCluster) -> None:
    configmaps(devcluster, ["x", "y", "z"])
    (whole,) = pages(devcluster, "limit=0")
    assert [i["metadata"]["name"] for i in whole["items"]] == ["x", "y", "z"]
    status, answer = testing.api(devcluster, "GET", f"{PAGED}?limit=1&continue=not-a-token")
    assert status == 400, answer
