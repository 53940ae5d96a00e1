"""The spec hash: ``sha256:<hex>`` over the canonical JSON of a Promotion spec; Approvals bind to it.

Canonical JSON: the spec as the models normalise it (camelCase keys, defaults filled in, absent
optional fields left out), keys sorted, no whitespace, UTF-8. Normalising through the model first
means the hash does not depend on whether the API server or the client applied a default.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import pydantic

from lockgate.api import promotion

MEMO_SIZE = 50_000
_memo: dict[Hashable, str] = {}


def remembered(identity: Hashable | None, compute: Callable[[], str]) -> str:
    """``compute()``, memoised by ``identity``: one that names a single spec (a stored object's uid with its
    generation or resourceVersion; not an object under admission, whose UPDATE still carries the old generation).
    ``None``: not memoised. Bounded: emptied when full."""
    if identity is None:
        return compute()
    found = _memo.get(identity)
    if found is None:
        if len(_memo) >= MEMO_SIZE:
            _memo.clear()
        found = _memo[identity] = compute()
    return found


def canonical(spec: Mapping[str, Any]) -> bytes:
    """The canonical JSON bytes of a (camelCase) spec dict."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute(spec: Mapping[str, Any]) -> str:
    """``sha256:<64 hex>`` of a spec dict exactly as given (callers normally use ``of_promotion``)."""
    return "sha256:" + hashlib.sha256(canonical(spec)).hexdigest()


def of_spec(spec: promotion.PromotionSpec) -> str:
    """The hash of a Promotion spec model, normalised first."""
    return compute(spec.to_k8s())


def of_promotion(obj: promotion.Promotion) -> str:
    """The hash the operator writes to ``status.specHash`` and Approvals must name."""
    return of_spec(obj.spec)


def of_object(obj: Mapping[str, Any]) -> str:
    """The hash of a raw Promotion's spec (a dict, or Kopf's body), normalised through the spec model; as
    written when the model rejects it (our CRD schema would not have admitted it).

    Only the spec is read: neither the status nor the metadata can change which hash an Approval binds to.
    """
    spec = obj.get("spec") or {}
    try:
        return of_spec(promotion.PromotionSpec.model_validate(dict(spec)))
    except pydantic.ValidationError:
        return compute(spec)
