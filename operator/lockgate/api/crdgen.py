"""Generate the CustomResourceDefinitions in ``crds/`` from the pydantic models (the one source of truth).

pydantic's JSON Schema is turned into a structural OpenAPI v3 schema: ``$ref`` inlined, ``Optional``
unwrapped, titles dropped, free-form maps marked ``x-kubernetes-preserve-unknown-fields``; constraints
(enums, patterns, lengths, bounds, defaults, ``x-kubernetes-validations``) are kept.
"""

from __future__ import annotations

import re
from typing import Any

import pydantic

from lockgate.api import approval, gatepolicy, meta, promotion

CATEGORY = "lockgate"

#: Keys kept from pydantic's JSON Schema, besides the ones handled explicitly.
_KEEP = frozenset(
    {
        "type",
        "format",
        "description",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "required",
        "default",
        "nullable",
    }
)


def _describe(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Turn one pydantic JSON Schema node into a structural schema node."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {node}")
        merged = {**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        return _structural(merged, defs)

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
        elif key == "description":
            out[key] = _describe(value)
        elif key == "default":
            if value is not None and value != [] and value != {}:
                out[key] = value
        elif key in _KEEP:
            out[key] = value
    if node.get("type") == "object" or "properties" in node:
        out["type"] = "object"
        if "properties" in node:
            out["properties"] = {name: _structural(sub, defs) for name, sub in node["properties"].items()}
        additional = node.get("additionalProperties")
        if isinstance(additional, dict) and additional:
            out["additionalProperties"] = _structural(additional, defs)
        elif "properties" not in node:
            out["x-kubernetes-preserve-unknown-fields"] = True
    if node.get("type") == "array":
        out["items"] = _structural(node.get("items", {"type": "string"}), defs)
    if node.get("type") == "integer":
        out["format"] = "int64"
    if node.get("type") == "number":
        out["format"] = "double"
    if "type" not in out:
        raise ValueError(f"untyped schema node (not structural): {node}")
    return out


def schema_of(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(raw, defs)


def _column(
    name: str, path: str, type_: str = "string", priority: int = 0, description: str = ""
) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        col["priority"] = priority
    if description:
        col["description"] = description
    return col


_AGE = _column("Age", ".metadata.creationTimestamp", "date")


def _crd(
    *,
    kind: str,
    plural: str,
    short: str,
    scope: str,
    spec: type[pydantic.BaseModel],
    status: type[pydantic.BaseModel],
    description: str,
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    schema = {
        "type": "object",
        "description": _describe(description),
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": schema_of(spec),
            "status": schema_of(status),
        },
        "required": ["spec"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{meta.GROUP}"},
        "spec": {
            "group": meta.GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": [CATEGORY],
            },
            "scope": scope,
            "versions": [
                {
                    "name": meta.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def promotion_crd() -> dict[str, Any]:
    """The Promotion CRD."""
    return _crd(
        kind="Promotion",
        plural="promotions",
        short="promo",
        scope="Namespaced",
        spec=promotion.PromotionSpec,
        status=promotion.PromotionStatus,
        description=promotion.Promotion.__doc__ or "",
        columns=[
            _column("Target", ".spec.target.name"),
            _column("Image", ".spec.image"),
            _column("Phase", ".status.phase"),
            _column("Approvals", ".status.approvalsSummary", description="counted/required"),
            _column("Emergency", ".status.emergency", "boolean", priority=1),
            _column("Message", ".status.message", priority=1),
            _AGE,
        ],
    )


def approval_crd() -> dict[str, Any]:
    """The Approval CRD."""
    return _crd(
        kind="Approval",
        plural="approvals",
        short="appr",
        scope="Namespaced",
        spec=approval.ApprovalSpec,
        status=approval.ApprovalStatus,
        description=approval.Approval.__doc__ or "",
        columns=[
            _column("Promotion", ".spec.promotion"),
            _column("Decision", ".spec.decision"),
            _column("Approver", ".spec.approver"),
            _column("Counted", ".status.counted", "boolean"),
            _column("Reason", ".status.reason", priority=1),
            _AGE,
        ],
    )


def gate_policy_crd() -> dict[str, Any]:
    """The GatePolicy CRD."""
    return _crd(
        kind="GatePolicy",
        plural="gatepolicies",
        short="gp",
        scope="Cluster",
        spec=gatepolicy.GatePolicySpec,
        status=gatepolicy.GatePolicyStatus,
        description=gatepolicy.GatePolicy.__doc__ or "",
        columns=[
            _column("Required", ".status.requiredApprovals", "integer"),
            _AGE,
        ],
    )


def all_crds() -> dict[str, dict[str, Any]]:
    """File name (as in ``crds/``) -> CRD object, for every kind."""
    crds = [promotion_crd(), approval_crd(), gate_policy_crd()]
    return {f"{meta.GROUP}_{crd['spec']['names']['plural']}.yaml": crd for crd in crds}
