"""Which fields a policy's CEL expression reads that a Promotion (or its source workload) cannot have. Pure.

The CEL library checks syntax only, so ``promotion.spec.evidence.securityScan.critcal == 0`` compiles, and
then every Promotion fails the rule with "no such key". The selection chains an expression reads from
``promotion`` and ``source`` are walked through the API's models instead: a name that is not a field of an
object with fixed fields is reported, with the fields it has. Maps (labels), lists and scalars end the walk
(what follows is a key, a macro or a method), and so does anything inside a string literal.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable
from typing import Any

import pydantic

from lockgate.api import promotion

# String literals (raw ones first: a backslash in them escapes nothing) and line comments, in one pass, so a
# quote inside a comment or a // inside a string is read as what it is.
_LITERALS = re.compile(
    "|".join(
        (
            r"[rR]'''.*?'''",  # raw triple-quoted
            r'[rR]""".*?"""',
            r"'''(?:\\.|.)*?'''",  # triple-quoted
            r'"""(?:\\.|.)*?"""',
            r"[rR]'[^'\n]*'",  # raw
            r'[rR]"[^"\n]*"',
            r"'(?:\\.|[^'\\\n])*'",
            r'"(?:\\.|[^"\\\n])*"',
            r"//[^\n]*",  # a line comment
        )
    ),
    re.S,
)
_CHAIN = re.compile(r"(?<![\w.])(promotion|source)((?:\s*\.\s*[A-Za-z_]\w*)+)")
_BOUND = re.compile(r"\.\s*(?:all|exists_one|exists|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
VARIABLES = frozenset({"promotion", "source", "now"})  # what rules and risk thresholds are given

# A node of the shape rules see: a model class (its fields by camelCase name), a dict of names to nodes, or
# None (a map, list or scalar: the walk ends).
Node = type[pydantic.BaseModel] | dict[str, Any] | None

ROOTS: dict[str, Node] = {
    "promotion": {
        "metadata": {"name": None, "namespace": None, "labels": None},
        "spec": promotion.PromotionSpec,
        "requestedBy": {"username": None, "groups": None},
    },
    "source": {"image": None, "healthy": None, "imageId": None, "availableSince": None},
}


def unknown_fields(expression: str) -> list[str]:
    """Each selection of ``expression`` that names no field, as ``path (X has: a, b, c)``, in order, once."""
    code = _code(expression)
    bound = set(_BOUND.findall(code))  # a macro's variable may shadow promotion or source
    found: list[str] = []
    for match in _CHAIN.finditer(code):
        if match.group(1) in bound:
            continue
        node: Node = ROOTS[match.group(1)]
        path = match.group(1)
        for name in re.findall(r"[A-Za-z_]\w*", match.group(2)):
            fields = _fields(node)
            if fields is None:
                break
            if name not in fields:
                problem = f"{path}.{name} (no such field; {path} has: {', '.join(sorted(fields))})"
                if problem not in found:
                    found.append(problem)
                break
            node, path = fields[name], f"{path}.{name}"
    return found


def unknown_variables(expression: str, variables: Iterable[str]) -> list[str]:
    """The names ``expression`` reads as variables (``variables``: what CEL's parser found) that rules are not
    given, and no macro binds: ``promotions.spec.image`` fails every Promotion with "undeclared reference"."""
    bound = set(_BOUND.findall(_code(expression)))
    return sorted(set(variables) - VARIABLES - bound)


def _code(expression: str) -> str:
    """``expression`` with its string literals emptied and its comments removed."""
    return _LITERALS.sub(lambda m: " " if m.group(0).startswith("//") else "''", expression)


def _fields(node: Node) -> dict[str, Node] | None:
    if isinstance(node, dict):
        return node
    if isinstance(node, type) and issubclass(node, pydantic.BaseModel):
        return {(info.alias or name): _node(info.annotation) for name, info in node.model_fields.items()}
    return None


def _node(annotation: Any) -> Node:
    """The model class an annotation holds (``X | None`` included), else None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [_node(a) for a in typing.get_args(annotation) if a is not type(None)]
        return models[0] if len(models) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    return None
