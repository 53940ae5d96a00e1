"""Schema validation (422 Invalid naming the field), defaults, pruning, CEL rules: CRDs and built-ins."""

from __future__ import annotations

import pytest

from lockgate.devcluster import runner, testing

WIDGETS = "/apis/test.lockgate.dev/v1/namespaces/staging/widgets"


def widget(name: str = "w1", **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "test.lockgate.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"image": "registry.example/w:1", **spec},
    }


def test_invalid_custom_object_is_422_naming_the_field(devcluster: runner.RunningCluster) -> None:
    status, body = testing.api(devcluster, "POST", WIDGETS, widget(color="purple"))
    assert status == 422
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "spec.color"
    assert body["message"] == (
        'Widget.test.lockgate.dev "w1" is invalid: spec.color: Unsupported value: '
        '"purple": supported values: "red", "green", "blue"'
    )


def test_required_and_type_errors(devcluster: runner.RunningCluster) -> None:
    obj = widget(size="big")
    del obj["spec"]["image"]  # type: ignore[attr-defined]
    status, body = testing.api(devcluster, "POST", WIDGETS, obj)
    assert status == 422
    fields = {cause["field"]: cause["reason"] for cause in body["details"]["causes"]}
    assert fields == {"spec.image": "FieldValueRequired", "spec.size": "FieldValueTypeInvalid"}


def test_defaults_and_pruning(devcluster: runner.RunningCluster) -> None:
    obj = widget(unknown="dropped", extra={"kept": {"deep": 1}})
    status, body = testing.api(devcluster, "POST", WIDGETS, obj)
    assert status == 201, body
    assert body["spec"]["size"] == 1
    assert "unknown" not in body["spec"]
    assert body["spec"]["extra"] == {"kept": {"deep": 1}}


def test_strict_field_validation_rejects_unknown_fields(devcluster: runner.RunningCluster) -> None:
    status, body = testing.api(devcluster, "POST", WIDGETS + "?fieldValidation=Strict", widget(unknown=1))
    assert status == 400
    assert 'unknown field "spec.unknown"' in body["message"]


def test_cel_rules_immutability_and_comparison(devcluster: runner.RunningCluster) -> None:
    status, body = testing.api(devcluster, "POST", WIDGETS, widget(size=2, minSize=3))
    assert status == 422
    assert "minSize must not exceed size" in body["message"]

    status, _ = testing.api(devcluster, "POST", WIDGETS, widget(owner="me"))
    assert status == 201
    patch = {"spec": {"owner": "you"}}
    status, body = testing.api(
        devcluster, "PATCH", WIDGETS + "/w1", patch, content_type="application/merge-patch+json"
    )
    assert status == 422
    assert body["details"]["causes"][0]["field"] == "spec.owner"
    assert "owner is immutable" in body["message"]
    status, _ = testing.api(
        devcluster,
        "PATCH",
        WIDGETS + "/w1",
        {"spec": {"color": "green"}},
        content_type="application/merge-patch+json",
    )
    assert status == 200


def test_builtin_kinds_validated_with_official_schemas(devcluster: runner.RunningCluster) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bad"},
        "spec": {
            "replicas": "two",
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"image": "x"}]}},
        },
    }
    status, body = testing.api(devcluster, "POST", "/apis/apps/v1/namespaces/staging/deployments", deployment)
    assert status == 422
    fields = {cause["field"] for cause in body["details"]["causes"]}
    assert fields == {"spec.replicas", "spec.template.spec.containers[0].name"}


def test_deployment_defaults(devcluster: runner.RunningCluster) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "api", "image": "x:1"}]},
            },
        },
    }
    status, body = testing.api(devcluster, "POST", "/apis/apps/v1/namespaces/staging/deployments", deployment)
    assert status == 201
    assert body["spec"]["replicas"] == 1
    assert body["spec"]["progressDeadlineSeconds"] == 600
    assert body["spec"]["strategy"]["type"] == "RollingUpdate"


@pytest.mark.kubectl
@pytest.mark.usefixtures("kubectl_available")
def test_kubectl_shows_the_invalid_field(devcluster: runner.RunningCluster) -> None:
    manifest = (
        "apiVersion: test.lockgate.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {image: 'UPPER CASE'}\n"
    )
    result = testing.kubectl(devcluster, "apply", "-n", "staging", "-f", "-", input=manifest)
    assert result.returncode == 1
    assert 'The Widget "w" is invalid: spec.image: Invalid value: "UPPER CASE"' in result.stderr
