"""Decoding the Kubernetes protobuf request bodies kubectl sends for a few built-in kinds (access reviews).

kubectl's typed clients POST ``application/vnd.kubernetes.protobuf``: a ``k8s\\0`` magic, then a
``runtime.Unknown`` envelope (typeMeta, raw). Only the kinds listed in ``_KINDS`` are understood; the
answer is JSON, which every client also accepts.
"""

from __future__ import annotations

from typing import Any, Union

from lockgate.devcluster import errors

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

Schema = dict[int, tuple[str, "FieldType"]]
FieldType = Union[str, "Schema", tuple[str, Any]]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> list[tuple[int, int, Any]]:
    """The raw (field number, wire type, value) triples of one message."""
    result: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value = data[pos : pos + length]
            pos += length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        result.append((number, wire, value))
    return result


def decode(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, _, value in fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if isinstance(kind, tuple) and kind[0] == "repeated":
            out.setdefault(name, []).append(_scalar(value, kind[1]))
        elif isinstance(kind, tuple) and kind[0] == "map":
            entry = decode(value, {1: ("key", "string"), 2: ("value", kind[1])})
            out.setdefault(name, {})[entry.get("key", "")] = entry.get("value")
        else:
            out[name] = _scalar(value, kind)
    return out


def _scalar(value: Any, kind: Any) -> Any:
    if kind == "string":
        return bytes(value).decode()
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if isinstance(kind, dict):
        return decode(bytes(value), kind)
    raise ValueError(f"unsupported field kind {kind!r}")


_META: Schema = {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string")}
_RESOURCE_ATTRS: Schema = {
    1: ("namespace", "string"),
    2: ("verb", "string"),
    3: ("group", "string"),
    4: ("version", "string"),
    5: ("resource", "string"),
    6: ("subresource", "string"),
    7: ("name", "string"),
}
_NON_RESOURCE_ATTRS: Schema = {1: ("path", "string"), 2: ("verb", "string")}
_EXTRA_VALUE: Schema = {1: ("items", ("repeated", "string"))}
_SAR_SPEC: Schema = {
    1: ("resourceAttributes", _RESOURCE_ATTRS),
    2: ("nonResourceAttributes", _NON_RESOURCE_ATTRS),
    3: ("user", "string"),
    4: ("groups", ("repeated", "string")),
    5: ("extra", ("map", _EXTRA_VALUE)),
    6: ("uid", "string"),
}
_SSAR_SPEC: Schema = {
    1: ("resourceAttributes", _RESOURCE_ATTRS),
    2: ("nonResourceAttributes", _NON_RESOURCE_ATTRS),
}
_SSRR_SPEC: Schema = {1: ("namespace", "string")}

_KINDS: dict[str, Schema] = {
    "SubjectAccessReview": {1: ("metadata", _META), 2: ("spec", _SAR_SPEC)},
    "LocalSubjectAccessReview": {1: ("metadata", _META), 2: ("spec", _SAR_SPEC)},
    "SelfSubjectAccessReview": {1: ("metadata", _META), 2: ("spec", _SSAR_SPEC)},
    "SelfSubjectRulesReview": {1: ("metadata", _META), 2: ("spec", _SSRR_SPEC)},
}


def decode_object(body: bytes) -> dict[str, Any]:
    """A JSON-shaped object from a Kubernetes protobuf body; 415 for kinds this server cannot decode."""
    if not body.startswith(_MAGIC):
        raise errors.bad_request("the protobuf body does not start with the Kubernetes magic number")
    envelope = decode(
        body[len(_MAGIC) :], {1: ("typeMeta", {1: ("apiVersion", "string"), 2: ("kind", "string")})}
    )
    raw = next((value for number, _, value in fields(body[len(_MAGIC) :]) if number == 2), b"")
    type_meta = envelope.get("typeMeta", {})
    kind = type_meta.get("kind", "")
    schema = _KINDS.get(kind)
    if schema is None:
        raise errors.ApiError(
            415,
            "UnsupportedMediaType",
            f"the embedded API cannot decode {kind or 'this kind'} from protobuf; "
            "send JSON (Content-Type: application/json)",
        )
    obj = decode(bytes(raw), schema)
    extra = obj.get("spec", {}).get("extra")
    if isinstance(extra, dict):
        obj["spec"]["extra"] = {key: (value or {}).get("items", []) for key, value in extra.items()}
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj}
