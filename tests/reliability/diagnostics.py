"""What a reliability trial prints when a wait times out: the object, the operator's log, its requests, its state.

``LogTail`` keeps the last log lines of the operator (``lockgate`` at DEBUG, Kopf at INFO) from the
moment it is installed; ``explain`` renders, for one Promotion: the object as the API has it now,
the log lines that name it, every request of the operator's user since a point in time, and the
live Reconciler's queue and view for that key (read on the operator's own loop).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from lockgate.devcluster import world
from lockgate.lifecycle import reconciler, statuses, view
from tests.reliability import harness

LOGGERS = {"lockgate": logging.DEBUG, "kopf": logging.INFO}


class LogTail(logging.Handler):
    def __init__(self, capacity: int = 20_000) -> None:
        super().__init__(logging.DEBUG)
        self.lines: collections.deque[tuple[float, str, str]] = collections.deque(maxlen=capacity)
        self._levels: dict[str, int] = {}
        self._lock_lines = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            ref = getattr(record, "k8s_ref", None) or {}
            about = f" <{ref.get('kind', '')} {ref.get('name', '')}>" if isinstance(ref, dict) and ref else ""
            text = f"{record.levelname} {record.name} [{record.threadName}]{about}: {record.getMessage()}"
        except Exception:  # never break the operator for a diagnostic
            return
        with self._lock_lines:
            self.lines.append((record.created, record.name, text))

    def install(self) -> LogTail:
        for name, level in LOGGERS.items():
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(level)
            logger.addHandler(self)
        return self

    def remove(self) -> None:
        for name, level in self._levels.items():
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            logger.setLevel(level)

    def matching(self, since: float, *texts: str, levels: tuple[str, ...] = ("WARNING ", "ERROR ")) -> list[str]:
        """Lines since ``since`` that contain one of ``texts`` or start with one of ``levels``, in order."""
        with self._lock_lines:
            lines = list(self.lines)
        return [
            f"{at - since:+8.3f} {line}"
            for at, _, line in lines
            if at >= since and (any(t in line for t in texts) or line.startswith(levels))
        ]


@contextlib.contextmanager
def tracing_the_view() -> Iterator[None]:
    """Log every ``ClusterView.put_promotion`` (who stored which version, accepted or ignored) at DEBUG."""
    original = view.ClusterView.put_promotion
    diag = logging.getLogger("lockgate.diag")

    def put_promotion(self: view.ClusterView, obj: dict[str, Any]) -> bool:
        accepted = original(self, obj)
        meta = obj.get("metadata", {})
        diag.debug(
            "put_promotion %s/%s rv=%s generation=%s phase=%s specHash=%s by %s -> %s",
            meta.get("namespace"),
            meta.get("name"),
            meta.get("resourceVersion"),
            meta.get("generation"),
            (obj.get("status") or {}).get("phase"),
            str((obj.get("status") or {}).get("specHash"))[7:19],
            sys._getframe(1).f_code.co_name,
            "stored" if accepted else "ignored",
        )
        return accepted

    view.ClusterView.put_promotion = put_promotion  # type: ignore[method-assign]
    try:
        yield
    finally:
        view.ClusterView.put_promotion = original  # type: ignore[method-assign]


def _reconciler_state(gate: harness.Lockgate, name: str) -> str:
    operator = gate.operator
    loop = operator.loop if operator is not None else None
    if loop is None or loop.is_closed():
        return "no running operator loop"
    key = (harness.NAMESPACE, name)

    async def read() -> str:
        mine = asyncio.all_tasks()
        engines = [
            obj
            for obj in gc.get_objects()
            if isinstance(obj, reconciler.Reconciler) and any(t in mine for t in obj.queue._tasks)
        ]
        out = [f"{len(engines)} live Reconciler(s) on the current loop"]
        for engine in engines:
            q = engine.queue
            obj = engine.view.promotions.get(key) or {}
            status = obj.get("status") or {}
            timer = q._timers.get(key)
            due = f"{timer[0] - asyncio.get_running_loop().time():.2f}s" if timer is not None else None
            out.append(
                f"primed={engine.primed.is_set()} active={q.active.is_set()} handled={q.handled} "
                f"ready={list(q._ready)} queued={key in q._queued} busy={sorted(q._busy)} dirty={sorted(q._dirty)} "
                f"timer={due}"
            )
            out.append(
                f"view: rv={obj.get('metadata', {}).get('resourceVersion')} "
                f"generation={obj.get('metadata', {}).get('generation')} image={obj.get('spec', {}).get('image')} "
                f"phase={status.get('phase')} specHash={str(status.get('specHash'))[:19]} "
                f"current={statuses.spec_hash(obj)[:19] if obj else None}"
            )
        busy = [t for t in mine if t.get_name().startswith("lockgate-worker")]
        for task in busy:
            frames = task.get_stack(limit=6)
            where = " <- ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in frames)
            if "reconcile" in where or "_pass" in where:
                out.append(f"task {task.get_name()}: {where}")
        return "\n".join(out)

    try:
        return asyncio.run_coroutine_threadsafe(read(), loop).result(5)
    except Exception as exc:  # the loop is stuck or gone: say so
        return f"could not read the operator's state: {exc!r}"


def explain(gate: harness.Lockgate, name: str, since: float, tail: LogTail | None) -> str:
    """Everything worth knowing about ``name`` when a wait for it timed out (``since``: time.time())."""
    parts: list[str] = []
    try:
        obj = gate.promotion(name)
        status = obj.get("status") or {}
        parts.append(
            f"API object: rv={obj['metadata'].get('resourceVersion')} generation={obj['metadata'].get('generation')} "
            f"image={obj['spec'].get('image')} phase={status.get('phase')} specHash={str(status.get('specHash'))[:19]} "
            f"current={statuses.spec_hash(obj)[:19]} observedGeneration={status.get('observedGeneration')} "
            f"message={status.get('message')!r}"
        )
        parts.append("status: " + json.dumps(status, default=str)[:3000])
    except Exception as exc:
        parts.append(f"reading the Promotion failed: {exc!r}")
    parts.append("operator state: " + _reconciler_state(gate, name))
    requests = [
        r
        for r in list(gate.cluster.requests)
        if r.time >= since and (r.user == world.OPERATOR_USERNAME or r.resource in ("promotions", "approvals"))
    ]
    parts.append(f"requests since t0 ({len(requests)}):")
    parts += [
        f"  {r.time - since:+8.3f} {r.user} {r.method} {r.verb} {r.resource}/{r.subresource}{r.name} -> {r.code}"
        for r in requests
        if r.verb != "watch" or r.user == world.OPERATOR_USERNAME
    ][-250:]
    if tail is not None:
        lines = tail.matching(since, name, "lockgate.handlers", "lockgate.lifecycle.reconciler")
        parts.append(f"log lines since t0 ({len(lines)}):")
        parts += lines[-300:]
    return "\n".join(parts)


def now() -> float:
    return time.time()


def to_dict(value: Any) -> Any:  # pragma: no cover - debugging helper
    return json.loads(json.dumps(value, default=str))
