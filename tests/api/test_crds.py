import copy
import pathlib
from collections.abc import Iterator
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import typer
import yaml
from typer import testing

from lockgate.api import crdgen, samples
from lockgate.cli import crds as crds_cli

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _schema(kind: str) -> dict[str, Any]:
    for crd in crdgen.all_crds().values():
        if crd["spec"]["names"]["kind"] == kind:
            schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(kind)


def _errors(kind: str, obj: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(_schema(kind))
    return sorted(".".join(str(p) for p in error.absolute_path) for error in validator.iter_errors(obj))


def test_committed_crds_match_the_models() -> None:
    assert crds_cli.differences(REPO / "crds") == [], "run `lockgate crds --write` and commit crds/"


def test_differences_notices_an_edited_file(tmp_path: pathlib.Path) -> None:
    crds_cli.write(tmp_path)
    assert crds_cli.differences(tmp_path) == []
    path = tmp_path / "lockgate.dev_approvals.yaml"
    path.write_text(path.read_text().replace("appr", "ap"))
    assert crds_cli.differences(tmp_path) == ["lockgate.dev_approvals.yaml"]


def test_crds_command_writes_and_checks(tmp_path: pathlib.Path) -> None:
    app = typer.Typer()
    crds_cli.register(app)
    app.command("other")(lambda: None)  # a second command keeps typer in group mode, as in main
    runner = testing.CliRunner()
    assert runner.invoke(app, ["crds", "--check", "--dir", str(tmp_path)]).exit_code == 1
    assert runner.invoke(app, ["crds", "--write", "--dir", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["crds", "--check", "--dir", str(tmp_path)]).exit_code == 0


@pytest.mark.parametrize("name", sorted(crdgen.all_crds()))
def test_crds_are_valid_apiextensions_v1_objects(name: str) -> None:
    kubernetes_validate.validate(crdgen.all_crds()[name], "1.37.0", strict=True)


def _walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for prop, sub in node.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{prop}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", ["Promotion", "Approval", "GatePolicy"])
def test_schemas_are_structural(kind: str) -> None:
    for path, node in _walk(_schema(kind), kind):
        assert "type" in node, f"{path} has no type"
        assert not {"$ref", "anyOf", "oneOf", "allOf", "title"} & node.keys(), path
        assert node.get("additionalProperties") is not False, path
        assert not ("properties" in node and "additionalProperties" in node), path
        if node["type"] == "object" and "properties" not in node and path != f"{kind}.metadata":
            assert "additionalProperties" in node or node.get("x-kubernetes-preserve-unknown-fields"), path


def test_crd_names_and_columns() -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in crdgen.all_crds().values()}
    assert {k: (c["spec"]["names"]["shortNames"], c["spec"]["scope"]) for k, c in crds.items()} == {
        "Promotion": (["promo"], "Namespaced"),
        "Approval": (["appr"], "Namespaced"),
        "GatePolicy": (["gp"], "Cluster"),
    }
    for crd in crds.values():
        assert crd["spec"]["group"] == "lockgate.dev"
        assert crd["spec"]["names"]["categories"] == ["lockgate"]
        version = crd["spec"]["versions"][0]
        assert version["name"] == "v1alpha1"
        assert version["subresources"] == {"status": {}}
        schema = version["schema"]["openAPIV3Schema"]
        for column in version["additionalPrinterColumns"]:
            if column["jsonPath"] == ".metadata.creationTimestamp":
                continue
            node = schema
            for part in column["jsonPath"].strip(".").split("."):
                node = node["properties"][part]
            assert node["type"] == column["type"], column
    columns = {
        kind: [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
        for kind, crd in crds.items()
    }
    assert columns["Promotion"][:4] == ["Target", "Image", "Phase", "Approvals"]
    assert columns["Approval"][:4] == ["Promotion", "Decision", "Approver", "Counted"]
    assert columns["GatePolicy"] == ["Required", "Age"]


def test_ready_condition_is_in_status_schema() -> None:
    conditions = _schema("Promotion")["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) >= {"type", "status"}


def test_approval_spec_is_immutable_in_schema() -> None:
    spec = _schema("Approval")["properties"]["spec"]
    rule = {"rule": "self == oldSelf", "message": "Approval spec is immutable; create a new Approval"}
    assert rule in spec["x-kubernetes-validations"]


@pytest.mark.parametrize("path", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_examples_validate_against_their_crd(path: str) -> None:
    for doc in yaml.safe_load_all((EXAMPLES / path).read_text()):
        if doc["apiVersion"].startswith("lockgate.dev/"):
            assert _errors(doc["kind"], doc) == []


def test_samples_validate_against_their_crd() -> None:
    assert _errors("Promotion", samples.promotion_dict()) == []
    assert _errors("Approval", samples.approval_dict()) == []
    assert _errors("GatePolicy", samples.gate_policy_dict()) == []


@pytest.mark.parametrize(
    ("kind", "edit", "field"),
    [
        ("Promotion", lambda o: o["spec"].update(image="registry.example/web"), "spec.image"),
        ("Promotion", lambda o: o["spec"]["target"].update(kind="CronJob"), "spec.target.kind"),
        ("Promotion", lambda o: o["spec"].pop("target"), "spec"),
        (
            "Promotion",
            lambda o: o["spec"].update(source={"namespace": "s", "name": "w", "minSoak": "30"}),
            "spec.source.minSoak",
        ),
        ("Approval", lambda o: o["spec"].update(decision="Maybe"), "spec.decision"),
        ("Approval", lambda o: o["spec"].update(specHash="sha256:abc"), "spec.specHash"),
        ("GatePolicy", lambda o: o["spec"]["approvals"].update(maxAge="1 day"), "spec.approvals.maxAge"),
        (
            "GatePolicy",
            lambda o: o["spec"].update(changeWindows={"allow": [{"start": "25:00"}]}),
            "spec.changeWindows.allow.0.start",
        ),
    ],
)
def test_malformed_objects_fail_naming_the_field(kind: str, edit: Any, field: str) -> None:
    factory = {
        "Promotion": samples.promotion_dict,
        "Approval": samples.approval_dict,
        "GatePolicy": samples.gate_policy_dict,
    }[kind]
    obj = copy.deepcopy(factory())
    edit(obj)
    assert field in _errors(kind, obj)
