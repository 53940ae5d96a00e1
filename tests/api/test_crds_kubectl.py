"""The generated CRDs served by the embedded API, driven with the real kubectl."""

import pathlib
import shutil

import pytest
import yaml

from lockgate.devcluster import testing

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH"),
]

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def cluster():
    with testing.running(crd_dir=testing.crd_dirs()) as running:
        yield running


@pytest.fixture(scope="module")
def applied(cluster):
    result = testing.kubectl(cluster, "apply", "-f", str(EXAMPLES))
    assert result.returncode == 0, result.stderr
    return result


def _promotion(**spec_changes) -> str:
    doc = yaml.safe_load((EXAMPLES / "promotion.yaml").read_text())
    doc["metadata"]["name"] = "bad"
    doc["spec"].update(spec_changes)
    return yaml.safe_dump(doc)


def test_examples_apply(applied) -> None:
    assert "promotion.lockgate.dev/web-1-4-2 created" in applied.stdout
    assert "approval.lockgate.dev/web-1-4-2-bob created" in applied.stdout
    assert "gatepolicy.lockgate.dev/production created" in applied.stdout


@pytest.mark.parametrize(
    ("manifest", "field"),
    [
        (_promotion(image="registry.example/web"), "spec.image"),
        (_promotion(target={"kind": "CronJob", "name": "web"}), "spec.target.kind"),
    ],
)
def test_malformed_promotion_is_refused_naming_the_field(cluster, applied, manifest, field) -> None:
    result = testing.kubectl(cluster, "apply", "-f", "-", input=manifest)
    assert result.returncode != 0
    assert field in result.stderr
    assert "Invalid" in result.stderr or "invalid" in result.stderr


def test_editing_an_approval_spec_is_refused(cluster, applied) -> None:
    doc = yaml.safe_load((EXAMPLES / "approval.yaml").read_text())
    doc["spec"]["decision"] = "Reject"
    result = testing.kubectl(cluster, "apply", "-f", "-", input=yaml.safe_dump(doc))
    assert result.returncode != 0
    assert "Approval spec is immutable" in result.stderr
    assert "spec" in result.stderr


def test_get_lockgate_lists_all_three_kinds_with_columns(cluster, applied) -> None:
    result = testing.kubectl(cluster, "get", "lockgate", "-n", "production")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        "promotion.lockgate.dev/web-1-4-2",
        "approval.lockgate.dev/web-1-4-2-bob",
        "gatepolicy.lockgate.dev/production",
        "TARGET",
        "PHASE",
        "APPROVALS",
        "DECISION",
        "APPROVER",
        "COUNTED",
        "REQUIRED",
    ):
        assert expected in out, out


def test_short_names(cluster, applied) -> None:
    for short in ("promo", "appr"):
        result = testing.kubectl(cluster, "get", short, "-n", "production", "-o", "name")
        assert result.returncode == 0 and result.stdout.strip(), result.stderr
    assert (
        testing.kubectl(cluster, "get", "gp", "-o", "name").stdout.strip()
        == "gatepolicy.lockgate.dev/production"
    )
