"""CEL for policy rules and risk thresholds: compiled once per expression text, evaluated over
``promotion``, ``source`` and ``now``.

Library: ``common-expression-language`` (Rust ``cel`` bindings). Executing a compiled program costs
about 1 µs; building the variables costs more (about 25 µs to convert a Promotion), so the
``promotion`` value is converted once per (spec hash, name, namespace, labels, requester) and kept in
a small LRU; ``source`` and ``now`` are set per evaluation. Results of expressions that read neither
``now`` nor ``source`` are memoised with it (a rule is a pure function of its variables).

Referencing ``promotion`` costs about 9 µs per execution whatever the expression does, so all of a
policy's expressions run as one batch program ``[(e1), (e2), ...]`` (each expression compiles on its
own first, so wrapping cannot change its meaning). When the batch raises, the expressions run one
by one to attribute the error to the rule that caused it.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import functools
import threading
from collections.abc import Mapping
from typing import Any

from lockgate.api import promotion
from lockgate.gates import facts
from lockgate.gates.celimport import cel

_CONTEXT_CACHE_SIZE = 256


@dataclasses.dataclass(frozen=True)
class Compiled:
    """A compiled expression, or why it did not compile."""

    expression: str
    program: Any | None
    error: str | None


@functools.lru_cache(maxsize=4096)
def compile_expression(expression: str) -> Compiled:
    """Compile once per expression text (policy updates with the same text reuse the program)."""
    try:
        return Compiled(expression, cel.compile(expression), None)
    except Exception as exc:  # the binding raises ValueError; be safe with anything it raises
        return Compiled(expression, None, _one_line(str(exc)))


@functools.lru_cache(maxsize=1024)
def compile_batch(expressions: tuple[str, ...]) -> Compiled:
    """One program evaluating every (individually compiling) expression into a list."""
    source = "[" + ", ".join(f"({e})" for e in expressions) + "]"
    return compile_expression(source)


@functools.lru_cache(maxsize=4096)
def static(expression: str) -> bool:
    """Whether the expression compiles and reads neither ``now`` nor ``source``."""
    compiled = compile_expression(expression)
    if compiled.program is None:
        return False
    names = set(compiled.program.variables())
    return "now" not in names and "source" not in names


def _one_line(text: str) -> str:
    return " ".join(text.split())


def promotion_view(obj: promotion.Promotion, requester: facts.Identity | None) -> dict[str, Any]:
    """``promotion`` as rules see it: ``{metadata: {name, namespace, labels}, spec, requestedBy}``."""
    view: dict[str, Any] = {
        "metadata": {
            "name": obj.metadata.name,
            "namespace": obj.metadata.namespace or "",
            "labels": dict(obj.metadata.labels),
        },
        "spec": obj.spec.to_k8s(),
    }
    if requester is not None:
        view["requestedBy"] = {"username": requester.username, "groups": list(requester.groups)}
    return view


def source_view(source: facts.SourceState | None) -> dict[str, Any] | None:
    """``source`` as rules see it (null when there is none)."""
    if source is None:
        return None
    out: dict[str, Any] = {"image": source.image, "healthy": source.healthy}
    if source.image_id is not None:
        out["imageId"] = source.image_id
    if source.available_since is not None:
        out["availableSince"] = source.available_since
    return out


class Scope:
    """The variables for one evaluation; ``run`` executes compiled programs against them."""

    def __init__(self, context: Any, lock: threading.Lock, memo: dict[str, tuple[bool, str]]) -> None:
        self._context = context
        self._lock = lock
        self._memo = memo

    def run(
        self, compiled: Compiled, now: datetime.datetime, source: Mapping[str, Any] | None
    ) -> tuple[bool, str]:
        """(passed, error): a compile error, an evaluation error or a non-bool result fails with the error."""
        if compiled.program is None:
            return False, f"does not compile: {compiled.error}"
        with self._lock:
            self._context.add_variable("now", now)
            self._context.add_variable("source", source)
            try:
                result = compiled.program.execute(self._context)
            except Exception as exc:  # evaluation errors (missing field, type mismatch) deny
                return False, f"evaluation error: {type(exc).__name__}: {_one_line(str(exc))}"
        if not isinstance(result, bool):
            return False, f"evaluation error: must be true or false, got {type(result).__name__} {result!r}"
        return result, ""

    def run_all(
        self, expressions: tuple[str, ...], now: datetime.datetime, source: Mapping[str, Any] | None
    ) -> list[tuple[bool, str]]:
        """``run`` for each expression, in order.

        Results of expressions that read neither ``now`` nor ``source`` depend only on the
        ``promotion`` value this scope was built for, so they are memoised in the scope.
        """
        pending = tuple(e for e in dict.fromkeys(expressions) if not (e in self._memo and static(e)))
        fresh = dict(zip(pending, self._run_batch(pending, now, source), strict=True))
        with self._lock:
            for expression, result in fresh.items():
                if static(expression):
                    self._memo[expression] = result
        return [fresh[e] if e in fresh else self._memo[e] for e in expressions]

    def _run_batch(
        self, expressions: tuple[str, ...], now: datetime.datetime, source: Mapping[str, Any] | None
    ) -> list[tuple[bool, str]]:
        if not expressions:
            return []
        compiled = [compile_expression(e) for e in expressions]
        good = tuple(c.expression for c in compiled if c.program is not None)
        batch = compile_batch(good) if good else None
        values: list[Any] | None = None
        if batch is not None and batch.program is not None:
            with self._lock:
                self._context.add_variable("now", now)
                self._context.add_variable("source", source)
                try:
                    values = list(batch.program.execute(self._context))
                except Exception:  # attribute the error to its rule below
                    values = None
        if values is None or len(values) != len(good):
            return [self.run(c, now, source) for c in compiled]
        results: list[tuple[bool, str]] = []
        it = iter(values)
        for c in compiled:
            if c.program is None:
                results.append((False, f"does not compile: {c.error}"))
                continue
            value = next(it)
            if isinstance(value, bool):
                results.append((value, ""))
            else:
                results.append(
                    (False, f"evaluation error: must be true or false, got {type(value).__name__} {value!r}")
                )
        return results


_Entry = tuple[Any, threading.Lock, dict[str, tuple[bool, str]]]
_contexts: collections.OrderedDict[tuple[Any, ...], _Entry] = collections.OrderedDict()
_contexts_lock = threading.Lock()


def scope(obj: promotion.Promotion, spec_hash: str, requester: facts.Identity | None) -> Scope:
    """The evaluation scope for this Promotion (the converted ``promotion`` value is cached)."""
    key = (
        spec_hash,
        obj.metadata.name,
        obj.metadata.namespace,
        tuple(sorted(obj.metadata.labels.items())),
        requester,
    )
    with _contexts_lock:
        entry = _contexts.get(key)
        if entry is not None:
            _contexts.move_to_end(key)
    if entry is None:
        context = cel.Context({"promotion": promotion_view(obj, requester)})
        entry = (context, threading.Lock(), {})
        with _contexts_lock:
            _contexts[key] = entry
            while len(_contexts) > _CONTEXT_CACHE_SIZE:
                _contexts.popitem(last=False)
    return Scope(*entry)
