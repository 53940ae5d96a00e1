"""Object metadata, 409 Conflict / AlreadyExists, 404 NotFound shapes, the status subresource, finalizers."""

from __future__ import annotations

import pytest

from lockgate.devcluster import runner, testing

WIDGETS = "/apis/test.lockgate.dev/v1/namespaces/staging/widgets"
MERGE = "application/merge-patch+json"


def widget(name: str = "w1") -> dict[str, object]:
    return {
        "apiVersion": "test.lockgate.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"image": "registry.example/w:1"},
    }


def test_metadata_is_stamped_and_resource_versions_grow(devcluster: runner.RunningCluster) -> None:
    _, first = testing.api(devcluster, "POST", WIDGETS, widget("a"))
    _, second = testing.api(devcluster, "POST", WIDGETS, widget("b"))
    meta = first["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    assert int(second["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    _, listing = testing.api(devcluster, "GET", WIDGETS)
    assert listing["kind"] == "WidgetList" and listing["apiVersion"] == "test.lockgate.dev/v1"
    assert int(listing["metadata"]["resourceVersion"]) >= int(second["metadata"]["resourceVersion"])


def test_stale_update_is_409_conflict(devcluster: runner.RunningCluster) -> None:
    _, created = testing.api(devcluster, "POST", WIDGETS, widget())
    stale = created["metadata"]["resourceVersion"]
    testing.api(devcluster, "PATCH", WIDGETS + "/w1", {"spec": {"color": "red"}}, content_type=MERGE)
    created["spec"]["color"] = "blue"
    status, body = testing.api(devcluster, "PUT", WIDGETS + "/w1", created)
    assert status == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on widgets.test.lockgate.dev "w1": the object has '
        "been modified; please apply your changes to the latest version and try again"
    )
    status, _ = testing.api(
        devcluster,
        "PATCH",
        WIDGETS + "/w1",
        {"metadata": {"resourceVersion": stale}, "spec": {"size": 3}},
        content_type=MERGE,
    )
    assert status == 409


def test_create_existing_is_409_already_exists(devcluster: runner.RunningCluster) -> None:
    testing.api(devcluster, "POST", WIDGETS, widget())
    status, body = testing.api(devcluster, "POST", WIDGETS, widget())
    assert (status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'widgets.test.lockgate.dev "w1" already exists'


def test_not_found_shape(devcluster: runner.RunningCluster) -> None:
    status, body = testing.api(devcluster, "GET", WIDGETS + "/nope")
    assert status == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'widgets.test.lockgate.dev "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "test.lockgate.dev", "kind": "widgets"},
        "code": 404,
    }


def test_status_subresource_semantics_and_generation(devcluster: runner.RunningCluster) -> None:
    _, created = testing.api(devcluster, "POST", WIDGETS, {**widget(), "status": {"phase": "Ignored"}})
    assert "status" not in created  # status on create is dropped when the subresource is enabled

    status, body = testing.api(
        devcluster,
        "PATCH",
        WIDGETS + "/w1/status",
        {"status": {"phase": "Running"}, "spec": {"size": 9}},
        content_type=MERGE,
    )
    assert status == 200
    assert body["status"] == {"phase": "Running"}
    assert body["spec"]["size"] == 1  # the status endpoint changes status only
    assert body["metadata"]["generation"] == 1  # and never bumps generation

    _, body = testing.api(
        devcluster,
        "PATCH",
        WIDGETS + "/w1",
        {"status": {"phase": "Hacked"}, "spec": {"size": 2}},
        content_type=MERGE,
    )
    assert body["status"] == {"phase": "Running"}  # the main resource ignores status
    assert body["metadata"]["generation"] == 2

    _, body = testing.api(
        devcluster, "PATCH", WIDGETS + "/w1", {"metadata": {"labels": {"a": "b"}}}, content_type=MERGE
    )
    assert body["metadata"]["generation"] == 2  # metadata changes do not bump generation


def test_finalizers_hold_deletion_until_removed(devcluster: runner.RunningCluster) -> None:
    obj = widget()
    obj["metadata"] = {"name": "w1", "finalizers": ["test.lockgate.dev/hold"]}
    testing.api(devcluster, "POST", WIDGETS, obj)
    status, body = testing.api(devcluster, "DELETE", WIDGETS + "/w1")
    assert status == 200
    assert body["metadata"]["deletionTimestamp"]
    status, body = testing.api(devcluster, "GET", WIDGETS + "/w1")
    assert status == 200 and body["metadata"]["deletionTimestamp"]

    status, _ = testing.api(
        devcluster, "PATCH", WIDGETS + "/w1", {"metadata": {"finalizers": None}}, content_type=MERGE
    )
    assert status == 200
    status, _ = testing.api(devcluster, "GET", WIDGETS + "/w1")
    assert status == 404


def test_dry_run_stores_nothing(devcluster: runner.RunningCluster) -> None:
    status, body = testing.api(devcluster, "POST", WIDGETS + "?dryRun=All", widget())
    assert status == 201 and body["spec"]["size"] == 1
    assert testing.api(devcluster, "GET", WIDGETS + "/w1")[0] == 404


@pytest.mark.kubectl
@pytest.mark.usefixtures("kubectl_available")
def test_kubectl_wait_for_condition(devcluster: runner.RunningCluster) -> None:
    testing.api(devcluster, "POST", WIDGETS, widget())
    condition = {
        "type": "Ready",
        "status": "True",
        "reason": "Done",
        "message": "",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }
    testing.api(
        devcluster,
        "PATCH",
        WIDGETS + "/w1/status",
        {"status": {"conditions": [condition]}},
        content_type=MERGE,
    )
    result = testing.kubectl(
        devcluster, "wait", "--for=condition=Ready", "wd/w1", "-n", "staging", "--timeout=10s"
    )
    assert result.returncode == 0, result.stderr
    assert "widget.test.lockgate.dev/w1 condition met" in result.stdout
