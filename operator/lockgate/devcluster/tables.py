"""``meta.k8s.io/v1`` Table rendering: the server-side printing ``kubectl get`` shows (printer columns)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

from lockgate.devcluster import resources

TABLE_MEDIA = "as=Table"

Cell = Callable[[dict[str, Any]], Any]


def wants_table(accept: str) -> bool:
    return any(TABLE_MEDIA in part and "meta.k8s.io" in part for part in accept.split(","))


def age(timestamp: str | None, now: datetime.datetime | None = None) -> str:
    """kubectl's short human duration: 5s, 3m, 2h, 4d, 1y."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    seconds = int(((now or datetime.datetime.now(datetime.UTC)) - then).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


_TOKEN = re.compile(
    r"\.([A-Za-z0-9_\-/]+)|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]|\[(\d+|\*)\]"
)


def jsonpath(obj: Any, path: str) -> Any:
    """The subset of JSONPath printer columns use: ``.a.b``, ``[0]``, ``[*]``, ``[?(@.type=="Ready")]``."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    values: list[Any] = [obj]
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if not match:
            return None
        pos = match.end()
        key, filter_key, filter_value, index = match.groups()
        next_values: list[Any] = []
        for value in values:
            if key is not None and isinstance(value, dict) and key in value:
                next_values.append(value[key])
            elif filter_key is not None and isinstance(value, list):
                next_values += [
                    item
                    for item in value
                    if isinstance(item, dict) and str(jsonpath(item, "." + filter_key)) == filter_value
                ]
            elif index == "*" and isinstance(value, list):
                next_values += value
            elif index is not None and index != "*" and isinstance(value, list) and int(index) < len(value):
                next_values.append(value[int(index)])
        values = next_values
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _format(value: Any, column_type: str) -> Any:
    if value is None:
        return "<none>" if column_type not in ("integer", "number") else None
    if column_type == "date":
        return age(str(value))
    if isinstance(value, list | dict):
        import json

        return json.dumps(value)
    if column_type == "string":
        return str(value) if not isinstance(value, bool) else str(value).lower()
    return value


def _ready(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    return f"{status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 0)}"


def _status(key: str, default: Any = 0) -> Cell:
    return lambda obj: (obj.get("status") or {}).get(key, default)


_BUILTIN: dict[str, list[tuple[dict[str, Any], Cell]]] = {
    "deployments": [
        ({"name": "Ready", "type": "string"}, _ready),
        ({"name": "Up-to-date", "type": "integer"}, _status("updatedReplicas")),
        ({"name": "Available", "type": "integer"}, _status("availableReplicas")),
    ],
    "statefulsets": [({"name": "Ready", "type": "string"}, _ready)],
    "daemonsets": [
        ({"name": "Desired", "type": "integer"}, _status("desiredNumberScheduled")),
        ({"name": "Current", "type": "integer"}, _status("currentNumberScheduled")),
        ({"name": "Ready", "type": "integer"}, _status("numberReady")),
        ({"name": "Up-to-date", "type": "integer"}, _status("updatedNumberScheduled")),
        ({"name": "Available", "type": "integer"}, _status("numberAvailable")),
    ],
    "namespaces": [({"name": "Status", "type": "string"}, _status("phase", "Active"))],
    "configmaps": [
        (
            {"name": "Data", "type": "integer"},
            lambda obj: len(obj.get("data") or {}) + len(obj.get("binaryData") or {}),
        )
    ],
    "secrets": [
        ({"name": "Type", "type": "string"}, lambda obj: obj.get("type", "Opaque")),
        ({"name": "Data", "type": "integer"}, lambda obj: len(obj.get("data") or {})),
    ],
    "serviceaccounts": [],
    "leases": [
        ({"name": "Holder", "type": "string"}, lambda obj: (obj.get("spec") or {}).get("holderIdentity", ""))
    ],
    "customresourcedefinitions": [
        ({"name": "Created At", "type": "date"}, lambda obj: obj.get("metadata", {}).get("creationTimestamp"))
    ],
}


def _columns(rtype: resources.ResourceType) -> list[tuple[dict[str, Any], Cell]]:
    name_column: tuple[dict[str, Any], Cell] = (
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": "Name must be unique within a namespace.",
        },
        lambda obj: obj.get("metadata", {}).get("name", ""),
    )
    age_column: tuple[dict[str, Any], Cell] = (
        {
            "name": "Age",
            "type": "string",
            "description": "CreationTimestamp is a timestamp representing the server time when this object "
            "was created.",
        },
        lambda obj: age(obj.get("metadata", {}).get("creationTimestamp")),
    )
    if rtype.builtin:
        middle = _BUILTIN.get(rtype.plural, [])
        if rtype.plural == "customresourcedefinitions":
            return [name_column, *middle]
        return [name_column, *middle, age_column]
    columns: list[tuple[dict[str, Any], Cell]] = [name_column]
    printer = rtype.printer_columns
    for column in printer:
        definition = {
            "name": column["name"],
            "type": column.get("type", "string"),
            "format": column.get("format", ""),
            "description": column.get("description", ""),
            "priority": column.get("priority", 0),
        }
        json_path = column.get("jsonPath", "")
        columns.append((definition, _cell(json_path, definition["type"])))
    if not any(column.get("jsonPath") == ".metadata.creationTimestamp" for column in printer):
        columns.append(age_column)
    return columns


def _cell(json_path: str, column_type: str) -> Cell:
    return lambda obj: _format(jsonpath(obj, json_path), column_type)


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def render(
    rtype: resources.ResourceType,
    objects: list[dict[str, Any]],
    *,
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
    with_definitions: bool = True,
) -> dict[str, Any]:
    """A ``Table`` of the objects with the type's columns."""
    columns = _columns(rtype)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [cell(obj) for _, cell in columns]}
        row_object = _row_object(obj, include_object)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    table: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": ({"resourceVersion": resource_version} if resource_version else {})
        | ({"continue": continue_token} if continue_token else {}),
        "columnDefinitions": [definition for definition, _ in columns] if with_definitions else [],
        "rows": rows,
    }
    return table
