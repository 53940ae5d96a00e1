"""An audit record carries who, what, when and why, deterministically and canonically."""

from __future__ import annotations

import datetime
import json
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies

from lockgate.audit import chain, record
from tests.audit.conftest import Samples


def test_record_carries_the_change_its_people_and_its_retention(samples: Any) -> None:
    promo = samples.promotion(uid="u-1")
    rec = samples.make("deploying", promo)
    assert rec.stream == "DEPLOY#production"
    assert rec.promotion.uid == "u-1" and rec.promotion.spec_hash == "sha256:c1"
    assert rec.image == samples.IMAGE and rec.digest == "sha256:" + "ab" * 32
    assert rec.previous_image == "registry.example/web@sha256:" + "00" * 32
    assert rec.requester is not None and rec.requester.username == "carol"
    assert rec.author == "dave"
    assert [(a.username, a.rule) for a in rec.approvers] == [("alice", "technical"), ("sam", "security")]
    assert rec.approvers[0].at == datetime.datetime(2026, 3, 2, 8, 50, tzinfo=datetime.UTC)
    assert rec.change.ticket == "CHG-1234"
    assert rec.evidence["securityScan"]["status"] == "passed"
    assert rec.retention_until == datetime.datetime(2033, 3, 2, 9, 0, tzinfo=datetime.UTC)


def test_same_decision_same_id_other_decision_other_id(samples: Any) -> None:
    promo = samples.promotion(uid="u-1")
    assert samples.make("deploying", promo).id == samples.make("deploying", promo, minutes=5).id
    assert samples.make("deploying", promo).id != samples.make("deployed", promo).id
    new_cycle = samples.promotion(uid="u-1", spec_hash="sha256:c2")
    assert samples.make("deploying", promo).id != samples.make("deploying", new_cycle).id
    assert (
        samples.make("approval-withdrawn", promo, key="a1").id
        != samples.make("approval-withdrawn", promo, key="a2").id
    )


def test_canonical_json_is_sorted_compact_utf8(samples: Any) -> None:
    assert record.canonical_json({"b": 1, "a": "é", "c": [1, {"z": 0, "y": None}]}) == (
        '{"a":"é","b":1,"c":[1,{"y":null,"z":0}]}'.encode()
    )
    rec = samples.make("approved", samples.promotion())
    text = rec.canonical()
    assert record.canonical_json(json.loads(text)) == text
    assert b'"specHash":"sha256:c1"' in text and b'"at":"2026-03-02T09:00:00.000000Z"' in text


def test_environment_names_the_stream_and_policy_retention_applies(samples: Any) -> None:
    rec = samples.make("approved", samples.promotion(), environment="prod-us-gov", retention="3y")
    assert rec.stream == "DEPLOY#prod-us-gov"
    assert rec.retention_until == samples.T0.replace(year=2029)


@pytest.mark.parametrize("missing", ["uid", "specHash"])
def test_unattributable_promotion_is_refused(missing: str, samples: Any) -> None:
    promo = samples.promotion()
    if missing == "uid":
        del promo["metadata"]["uid"]
    else:
        del promo["status"]["specHash"]
    with pytest.raises(ValueError, match="cannot audit"):
        samples.make("approved", promo)


def test_unknown_event_and_bad_retention_are_refused(samples: Any) -> None:
    with pytest.raises(ValueError, match="unknown audit event"):
        samples.make("shipped", samples.promotion())
    with pytest.raises(ValueError, match="invalid retention"):
        samples.make("approved", samples.promotion(), retention="forever")


@hypothesis.settings(max_examples=100, deadline=None)
@hypothesis.given(
    event=strategies.sampled_from(sorted(record.EVENTS)),
    previous=strategies.one_of(strategies.none(), strategies.text(min_size=1, max_size=40)),
    minutes=strategies.integers(0, 10_000),
)
def test_a_sibling_is_the_record_build_makes(event: str, previous: str | None, minutes: int) -> None:
    """The second record of a decision is copied from the first, never different from building it."""
    promo = Samples.promotion(uid="u-sibling")
    first = Samples.make("approved", promo, minutes, previous_image="registry.example/web:1.0")
    built = Samples.make(event, promo, minutes, previous_image=previous or "registry.example/web:1.0")
    assert record.sibling(first, event, previous_image=previous) == built


@hypothesis.settings(max_examples=50, deadline=None)
@hypothesis.given(event=strategies.sampled_from(sorted(record.EVENTS)), seq=strategies.integers(0, 1_000))
def test_the_stored_text_of_a_linked_record_is_its_canonical_json(event: str, seq: int) -> None:
    head = chain.ChainHead(stream="DEPLOY#production", seq=seq, hash="sha256:" + "1" * 64) if seq else None
    linked, text = chain.link_text(Samples.make(event, Samples.promotion()), head)
    assert text == linked.canonical().decode("utf-8")
    assert linked == chain.link(Samples.make(event, Samples.promotion(uid=linked.promotion.uid)), head)
    assert record.parse(text) == linked


_json_values = strategies.recursive(
    strategies.none() | strategies.booleans() | strategies.integers() | strategies.text(max_size=8),
    lambda inner: strategies.lists(inner, max_size=3) | strategies.dictionaries(strategies.text(max_size=6), inner),
    max_leaves=12,
)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    document=strategies.dictionaries(
        strategies.sampled_from(["", "a", "hasg", "hash", "hashes", "hi", "prevHash", "zz", "é"]) | strategies.text(),
        _json_values,
    )
)
def test_sealing_a_document_gives_its_content_hash_and_the_canonical_json_that_carries_it(
    document: dict[str, Any],
) -> None:
    digest, text = record.sealed(document)
    assert digest == record.content_hash(document)
    assert text == record.canonical_json({**document, "hash": digest})
