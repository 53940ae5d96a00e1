"""The spec hash and the HMAC stamps."""

import datetime
import json

import pydantic
from hypothesis import given
from hypothesis import strategies as st

from lockgate.admission import stamping
from lockgate.api import promotion, samples
from lockgate.gates import spechash, stamps
from lockgate.lifecycle import statuses

KEY = b"k" * 32
AT = datetime.datetime(2025, 1, 6, 14, 0, tzinfo=datetime.UTC)


def test_spec_hash_is_canonical() -> None:
    raw = samples.promotion_dict()
    reordered = dict(reversed(list(raw["spec"].items())))
    with_defaults = json.loads(json.dumps(raw))
    del with_defaults["spec"]["target"]["kind"]  # the default Deployment
    hashes = {
        spechash.of_promotion(promotion.Promotion.from_k8s(raw)),
        spechash.of_promotion(promotion.Promotion.from_k8s({**raw, "spec": reordered})),
        spechash.of_promotion(promotion.Promotion.from_k8s(with_defaults)),
    }
    assert len(hashes) == 1
    (value,) = hashes
    assert value.startswith("sha256:") and len(value) == 71
    assert spechash.compute({"b": 1, "a": [1, 2]}) == spechash.compute({"a": [1, 2], "b": 1})
    assert spechash.canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_spec_hash_changes_with_the_spec() -> None:
    assert spechash.of_promotion(samples.promotion()) != spechash.of_promotion(
        samples.promotion(image="registry.example/web:1.4.3")
    )


def _signed_approval():
    item = samples.approval()
    item.spec.stamp.signature = stamps.sign(KEY, stamps.approval_payload("production", item.metadata.name, item.spec))
    return item


def test_approval_stamp_verifies_and_detects_tampering() -> None:
    item = _signed_approval()
    assert stamps.verify_approval(KEY, item)
    assert not stamps.verify_approval(b"other-key", item)
    for field, value in (
        ("approver", "mallory"),
        ("groups", ["security-leads"]),
        ("decision", "Reject"),
        ("spec_hash", "sha256:" + "1" * 64),
        ("purpose", "RetroReview"),
        ("promotion", "x"),
    ):
        tampered = item.model_copy(deep=True)
        setattr(tampered.spec, field, value)
        assert not stamps.verify_approval(KEY, tampered), field
    moved = item.model_copy(deep=True)
    moved.metadata.namespace = "staging"
    assert not stamps.verify_approval(KEY, moved)
    unstamped = item.model_copy(deep=True)
    unstamped.spec.stamp = None
    assert not stamps.verify_approval(KEY, unstamped)


def test_signature_format_matches_the_schema() -> None:
    import re

    from lockgate.api import approval

    assert re.match(approval.SIGNATURE_PATTERN, stamps.sign(KEY, b"x"))


def test_requester_annotation_round_trips_and_rejects_forgery() -> None:
    obj = samples.promotion()
    annotation = stamps.requester_annotation(KEY, "production", obj.metadata.name, "alice", ["dev"], AT)
    obj.metadata.annotations[promotion.REQUESTED_BY_ANNOTATION] = annotation
    identity = stamps.verified_requester(KEY, obj)
    assert identity is not None and (identity.username, identity.groups) == ("alice", ("dev",))
    forged = json.loads(annotation)
    forged["username"] = "bob"
    obj.metadata.annotations[promotion.REQUESTED_BY_ANNOTATION] = json.dumps(forged)
    assert stamps.verified_requester(KEY, obj) is None
    obj.metadata.annotations[promotion.REQUESTED_BY_ANNOTATION] = "not json"
    assert stamps.verified_requester(KEY, obj) is None
    del obj.metadata.annotations[promotion.REQUESTED_BY_ANNOTATION]
    assert stamps.verified_requester(KEY, obj) is None


def test_decision_status_fields_are_camel_case(world) -> None:
    world.approve("bob", "engineering-leads")
    fields = world.evaluate().status_fields()
    assert fields["approvalsSummary"] == "1/2"
    assert fields["specHash"] == world.spec_hash
    assert fields["approvals"][0]["approver"] == "bob"
    assert fields["approvals"][0]["at"].endswith("Z")
    assert set(fields["gates"][0]) == {"name", "kind", "passed", "reason", "message"}
    assert fields["nextCheckAt"].endswith("Z")


def test_the_spec_hash_of_a_stored_promotion_reads_its_spec_only() -> None:
    """What an Approval binds to cannot depend on the status or the metadata, even ones the model rejects."""
    good = samples.promotion_dict()
    expected = spechash.of_promotion(promotion.Promotion.from_k8s(good))
    odd_status = {**good, "status": {"phase": "NoSuchPhase", "approvals": "not a list"}}
    odd_metadata = {**good, "metadata": {"name": 7, "labels": ["x"]}}
    assert spechash.of_object(good) == spechash.of_object(odd_status) == spechash.of_object(odd_metadata) == expected
    rejected = {**good, "spec": {**good["spec"], "image": "no tag or digest"}}  # our CRD would not admit it
    assert spechash.of_object(rejected) == spechash.compute(rejected["spec"])


specs = st.fixed_dictionaries(
    {
        "target": st.fixed_dictionaries(
            {"name": st.sampled_from(["web", "api"])},
            optional={"kind": st.sampled_from(["Deployment", "StatefulSet"]), "container": st.just("web")},
        ),
        "image": st.sampled_from(
            ["registry.example/web:2.0", "registry.example/web@sha256:" + "a" * 64, "no tag or digest"]
        ),
    },
    optional={
        "change": st.fixed_dictionaries(
            {"description": st.text(min_size=1, max_size=8)}, optional={"author": st.just("dave")}
        ),
        "evidence": st.fixed_dictionaries(
            {}, optional={"securityScan": st.fixed_dictionaries({}, optional={"critical": st.integers(0, 3)})}
        ),
        "verification": st.fixed_dictionaries(
            {}, optional={"timeout": st.sampled_from(["20s", "10m"]), "rollbackOnFailure": st.booleans()}
        ),
        "risk": st.sampled_from(["Low", "High"]),
    },
)
statuses_as_stored = st.sampled_from(
    [None, {"phase": "Succeeded", "specHash": "sha256:" + "0" * 64}, {"phase": "NoSuchPhase"}, {"approvals": "x"}]
)


@given(specs, statuses_as_stored)
def test_every_reader_of_a_stored_promotions_spec_hash_agrees(
    spec: dict[str, object], status: dict[str, object] | None
) -> None:
    """The gate engine (on the model), the operator's view and the Approval webhook bind to one hash, whatever the
    status holds; a spec our CRD would not admit is hashed as written by all of them."""
    obj: dict[str, object] = {"apiVersion": "lockgate.dev/v1alpha1", "kind": "Promotion", "spec": spec}
    obj["metadata"] = {"name": "p", "namespace": "production"}  # no uid: never memoised
    try:
        engine = spechash.of_promotion(promotion.Promotion.from_k8s(obj))
    except pydantic.ValidationError:
        engine = spechash.compute(spec)
    stored = obj if status is None else {**obj, "status": status}
    assert statuses.spec_hash(stored) == stamping.current_spec_hash(stored) == spechash.of_object(stored) == engine
    remembered = {**stored, "metadata": {**obj["metadata"], "uid": f"uid-{engine}", "generation": 1}}
    assert statuses.spec_hash(remembered) == statuses.spec_hash(remembered) == engine  # memoised by uid, generation
    if engine != spechash.compute(spec):  # normalised: the spec as the API server would store it hashes the same
        normalised = promotion.Promotion.from_k8s(obj).spec.to_k8s()
        assert spechash.of_object({**stored, "spec": normalised}) == engine
