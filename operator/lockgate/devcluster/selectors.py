"""Label selectors (``=``, ``==``, ``!=``, ``in``, ``notin``, exists, ``!key``) and field selectors."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lockgate.devcluster import errors

Predicate = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def label_selector(selector: str | None) -> Predicate:
    """Compile a labelSelector query parameter into a predicate over objects."""
    if not selector:
        return lambda obj: True
    checks: list[Callable[[dict[str, str]], bool]] = []
    for term in _split(selector):
        checks.append(_label_term(term))

    def predicate(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return predicate


def _label_term(term: str) -> Callable[[dict[str, str]], bool]:
    match = _SET_RE.match(term)
    if match:
        key, op, raw = match.groups()
        values = {value.strip() for value in raw.split(",") if value.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: key not in labels or labels[key] not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (part.strip() for part in term.split(op, 1))
            if not key:
                break
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    if re.fullmatch(r"[A-Za-z0-9./_-]+", term):
        return lambda labels: term in labels
    raise errors.bad_request(f"unable to parse requirement: invalid label selector: {term!r}")


_FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata.name": lambda obj: str(obj.get("metadata", {}).get("name", "")),
    "metadata.namespace": lambda obj: str(obj.get("metadata", {}).get("namespace", "")),
    "involvedObject.name": lambda obj: str((obj.get("involvedObject") or {}).get("name", "")),
    "involvedObject.uid": lambda obj: str((obj.get("involvedObject") or {}).get("uid", "")),
    "involvedObject.kind": lambda obj: str((obj.get("involvedObject") or {}).get("kind", "")),
    "involvedObject.namespace": lambda obj: str((obj.get("involvedObject") or {}).get("namespace", "")),
    "spec.nodeName": lambda obj: str((obj.get("spec") or {}).get("nodeName", "")),
    "status.phase": lambda obj: str((obj.get("status") or {}).get("phase", "")),
    "type": lambda obj: str(obj.get("type", "")),
}


def field_selector(selector: str | None) -> Predicate:
    """Compile a fieldSelector; unknown fields are 400 BadRequest as in Kubernetes."""
    if not selector:
        return lambda obj: True
    checks: list[Predicate] = []
    for term in _split(selector):
        for op in ("!=", "==", "="):
            if op in term:
                field, value = (part.strip() for part in term.split(op, 1))
                break
        else:
            raise errors.bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        getter = _FIELDS.get(field)
        if getter is None:
            raise errors.bad_request(f"field label not supported: {field}")
        checks.append(_field_check(getter, value, negate=op == "!="))
    return lambda obj: all(check(obj) for check in checks)


def _field_check(getter: Callable[[dict[str, Any]], str], value: str, *, negate: bool) -> Predicate:
    if negate:
        return lambda obj: getter(obj) != value
    return lambda obj: getter(obj) == value
