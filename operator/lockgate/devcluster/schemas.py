"""Object validation: CRD structural schemas (prune, default, validate, CEL rules), built-in kinds' schemas.

Failures are returned as Kubernetes ``causes`` (``reason``, ``message``, ``field``) for a 422 ``Invalid``.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

import jsonschema
import referencing
from kubernetes_validate import utils as kv_utils

from lockgate.gates.celimport import cel

Cause = dict[str, str]

SCHEMA_VERSION = "1.32.0"
_ROOT_KEYS = ("apiVersion", "kind", "metadata")


# ---------------------------------------------------------------------------------------------------------
# CRD structural schemas


def prune(value: Any, schema: dict[str, Any], *, root: bool = False) -> Any:
    """Drop fields the schema does not declare, unless ``x-kubernetes-preserve-unknown-fields``."""
    if isinstance(value, dict) and (schema.get("type") == "object" or "properties" in schema or root):
        properties: dict[str, Any] = schema.get("properties", {}) or {}
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        result: dict[str, Any] = {}
        for key, item in value.items():
            if root and key in _ROOT_KEYS:
                result[key] = item
            elif key in properties:
                result[key] = prune(item, properties[key])
            elif isinstance(additional, dict):
                result[key] = prune(item, additional)
            elif additional is True or preserve:
                result[key] = item
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"]) for item in value]
    return value


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Fill in ``default`` values of absent properties, recursively, as the apiserver does."""
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {}) or {}
        for key, subschema in properties.items():
            if key not in value and "default" in subschema:
                value[key] = copy.deepcopy(subschema["default"])
            if key in value:
                value[key] = apply_defaults(value[key], subschema)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in list(value):
                if key not in properties:
                    value[key] = apply_defaults(value[key], additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict | list):
        return f'"{_type_name(value)}"'
    return json.dumps(value)


def _type_ok(value: Any, expected: str) -> bool:
    actual = _type_name(value)
    if expected == "number":
        return actual in ("number", "integer")
    return actual == expected


def _field(path: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def validate_structural(
    value: Any,
    old: Any,
    schema: dict[str, Any],
    path: str = "",
    *,
    root: bool = False,
) -> list[Cause]:
    """Validate ``value`` against a CRD's structural schema; ``old`` is the stored value (for CEL oldSelf)."""
    causes: list[Cause] = []
    if value is None and (schema.get("nullable") or root):
        return causes
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            causes.append(
                _invalid(
                    path,
                    value,
                    f'{path} in body must be of type int-or-string: "{_type_name(value)}"',
                    "FieldValueTypeInvalid",
                )
            )
            return causes
    elif expected and not _type_ok(value, expected):
        causes.append(
            {
                "reason": "FieldValueTypeInvalid",
                "message": f'Invalid value: "{_type_name(value)}": {path} in body must be of type '
                f'{expected}: "{_type_name(value)}"',
                "field": path,
            }
        )
        return causes

    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_quote(item) for item in schema["enum"])
        causes.append(
            {
                "reason": "FieldValueNotSupported",
                "message": f"Unsupported value: {_quote(value)}: supported values: {supported}",
                "field": path,
            }
        )
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            causes.append(_invalid(path, value, f"{path} in body should match '{schema['pattern']}'"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(
                _invalid(path, value, f"{path} in body should be at least {schema['minLength']} chars long")
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(
                {
                    "reason": "FieldValueTooLong",
                    "message": f"Too long: may not be more than {schema['maxLength']} bytes",
                    "field": path,
                }
            )
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            causes.append(
                _invalid(
                    path, value, f"{path} in body should be greater than or equal to {schema['minimum']}"
                )
            )
        if "maximum" in schema and value > schema["maximum"]:
            causes.append(
                _invalid(path, value, f"{path} in body should be less than or equal to {schema['maximum']}")
            )
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(
                _invalid(path, value, f"{path} in body should have at least {schema['minItems']} items")
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(
                {
                    "reason": "FieldValueTooMany",
                    "message": f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                    "field": path,
                }
            )
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                causes += validate_structural(item, None, items, f"{path}[{index}]")
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {}) or {}
        for required in schema.get("required", []) or []:
            if required not in value:
                causes.append(
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value",
                        "field": _field(path, required),
                    }
                )
        old_dict = old if isinstance(old, dict) else {}
        for key, item in value.items():
            if root and key in _ROOT_KEYS:
                continue
            if key in properties:
                causes += validate_structural(item, old_dict.get(key), properties[key], _field(path, key))
            elif isinstance(schema.get("additionalProperties"), dict):
                causes += validate_structural(
                    item, old_dict.get(key), schema["additionalProperties"], _field(path, key)
                )
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            causes.append(
                _invalid(
                    path, value, f"{path} in body should have at least {schema['minProperties']} properties"
                )
            )
    for sub in schema.get("allOf", []) or []:
        causes += validate_structural(value, old, {**sub, "type": sub.get("type")}, path)
    if schema.get("oneOf") or schema.get("anyOf"):
        options = schema.get("oneOf") or schema.get("anyOf") or []
        matches = [
            not validate_structural(value, old, {**sub, "type": sub.get("type")}, path) for sub in options
        ]
        if not any(matches):
            causes.append(_invalid(path, value, f"{path} in body must match one of the alternatives"))
    if not causes:
        causes += _cel_rules(value, old, schema, path)
    return causes


def _invalid(path: str, value: Any, detail: str, reason: str = "FieldValueInvalid") -> Cause:
    return {"reason": reason, "message": f"Invalid value: {_quote(value)}: {detail}", "field": path}


def _cel_rules(value: Any, old: Any, schema: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for rule in schema.get("x-kubernetes-validations", []) or []:
        expression: str = rule.get("rule", "")
        uses_old = "oldSelf" in expression
        if uses_old and old is None and not rule.get("optionalOldSelf"):
            continue  # transition rules apply to updates only
        context: dict[str, Any] = {"self": value}
        if uses_old:
            context["oldSelf"] = old
        try:
            passed = compile_cel(expression).execute(context)
        except Exception as exc:  # CEL evaluation errors fail closed, as the apiserver does
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": f"Invalid value: {_quote(value)}: rule evaluation error: {exc}",
                    "field": path,
                }
            )
            continue
        if passed is not True:
            message = rule.get("message") or f"failed rule: {expression}"
            field = path
            if rule.get("fieldPath"):
                field = f"{path}{rule['fieldPath']}" if path else str(rule["fieldPath"]).lstrip(".")
            causes.append(
                {
                    "reason": _cel_reason(rule.get("reason")),
                    "message": f"Invalid value: {_quote(value)}: {message}",
                    "field": field,
                }
            )
    return causes


def _cel_reason(reason: str | None) -> str:
    return {
        "FieldValueForbidden": "FieldValueForbidden",
        "FieldValueRequired": "FieldValueRequired",
        "FieldValueDuplicate": "FieldValueDuplicate",
    }.get(reason or "", "FieldValueInvalid")


@functools.lru_cache(maxsize=512)
def compile_cel(expression: str) -> Any:
    """A compiled CEL program (cached): CRD validation rules, webhooks' match conditions."""
    return cel.compile(expression)


# ---------------------------------------------------------------------------------------------------------
# Built-in kinds: the official JSON schemas shipped by kubernetes-validate


@functools.lru_cache(maxsize=128)
def _builtin_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    schema_dir = f"v{SCHEMA_VERSION}-local"
    gv = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv_utils.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{gv}.json", SCHEMA_VERSION
        )
    except (FileNotFoundError, kv_utils.VersionNotSupportedError):
        return None
    definitions = _definitions(schema_dir)
    registry: referencing.Registry[Any] = referencing.Registry()
    registry = referencing.Resource.from_contents(schema) @ registry
    registry = definitions @ registry
    validator: jsonschema.protocols.Validator = jsonschema.validators.Draft202012Validator(
        schema, registry=registry
    )
    return validator


@functools.lru_cache(maxsize=2)
def _definitions(schema_dir: str) -> referencing.Resource[Any]:
    contents = kv_utils.schema_contents(
        f"kubernetes-json-schema/{schema_dir}/_definitions.json", SCHEMA_VERSION
    )
    return referencing.Resource.from_contents(contents)


def validate_builtin(obj: dict[str, Any]) -> list[Cause]:
    """Validate a built-in object against its official schema; unknown kinds pass."""
    validator = _builtin_validator(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if validator is None:
        return []
    causes: list[Cause] = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        path = ""
        for part in error.absolute_path:
            path = f"{path}[{part}]" if isinstance(part, int) else _field(path, str(part))
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            field = _field(path, missing[0]) if missing else path
            causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": field})
        elif error.validator == "type":
            causes.append(
                {
                    "reason": "FieldValueTypeInvalid",
                    "message": f'Invalid value: "{_type_name(error.instance)}": {path} in body must be '
                    f"of type {_expected(error.validator_value)}",
                    "field": path,
                }
            )
        else:
            causes.append(_invalid(path, error.instance, error.message))
        if len(causes) >= 10:
            break
    return causes


def _expected(value: Any) -> str:
    if isinstance(value, list):
        names = [str(item) for item in value if item != "null"]
        return names[0] if len(names) == 1 else ", ".join(names)
    return str(value)
