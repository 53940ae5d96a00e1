"""Objects kept packed in memory: compact JSON, deflated against the text its kind has in common.

The view holds every Approval and workload of the cluster (tens of thousands); a parsed one is a
dozen small dicts (~1.6-2.2 KB in CPython), its compact JSON ~0.6-0.9 KB, and most of that JSON is
the same in every object of a kind: keys, API versions, reasons, messages, the policy's rule names.
Deflate with a preset dictionary (zlib's ``zdict``) made from a typical object of the kind codes
those as back-references: ~0.15-0.3 KB per object. Packing costs ~10 us and a read (inflate, then
JSON decode) ~10 us; reads are few per pass (a Promotion's Approvals, its target).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Hashable, Iterator, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# Raw deflate (no header or checksum: the bytes never leave this process), a 4 KB window (enough for
# the dictionary and a typical object; larger objects still pack, only less), a small state.
_WBITS, _MEM_LEVEL, _LEVEL = -12, 5, 6


def dictionary(*typical: Mapping[str, Any]) -> bytes:
    """A preset dictionary from typical objects of a kind (their compact JSON, most common last)."""
    return b"".join(_encode(obj) for obj in typical)[-(1 << -_WBITS) + 256 :]


def _encode(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class Packed(Mapping[K, dict[str, Any]], Generic[K]):
    """A mapping whose values are stored packed and decoded on each read (a fresh dict each time)."""

    def __init__(self, zdict: bytes = b"") -> None:
        self._zdict = zdict
        self._packed: dict[K, bytes] = {}

    def _pack(self, obj: Mapping[str, Any]) -> bytes:
        packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, _MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, self._zdict)
        return packer.compress(_encode(obj)) + packer.flush()

    def _unpack(self, packed: bytes) -> dict[str, Any]:
        unpacker = zlib.decompressobj(_WBITS, self._zdict)
        value: dict[str, Any] = json.loads(unpacker.decompress(packed) + unpacker.flush())
        return value

    def __getitem__(self, key: K) -> dict[str, Any]:
        return self._unpack(self._packed[key])

    def __contains__(self, key: object) -> bool:
        return key in self._packed

    def __iter__(self) -> Iterator[K]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)

    def put(self, key: K, obj: Mapping[str, Any]) -> None:
        self._packed[key] = self._pack(obj)

    def pop(self, key: K) -> dict[str, Any] | None:
        raw = self._packed.pop(key, None)
        return None if raw is None else self._unpack(raw)

    def remove(self, key: K) -> None:
        """Forget ``key`` if present (without decoding it)."""
        self._packed.pop(key, None)

    def packed_bytes(self) -> int:
        """The packed size of every value (for the memory benchmark)."""
        return sum(len(v) for v in self._packed.values())
