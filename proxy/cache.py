"""A response cache with a byte budget, keyed so no policy ever reads another's entry.

Keys are (policy digest, backend request) built by the caller from the *rewritten*
request, so two tenants with different policies never share an entry, and two with the
same policy may. Only answers that cannot change are cached: the caller decides
(``BackendRequest.cacheable``: an explicit ``time``/``end`` in the past). Entries expire
after ``ttl_s`` and the least recently used go first when the byte budget is exceeded.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import trio

__all__ = ["CacheStatistics", "ResponseCache"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStatistics:
    """Counters and size."""

    hits: int
    misses: int
    evictions: int
    entries: int
    bytes: int


class ResponseCache:
    """LRU of (status, content type, body) by key, bounded by total body bytes."""

    def __init__(self, *, max_bytes: int, ttl_s: float) -> None:
        if max_bytes <= 0 or ttl_s <= 0:
            raise ValueError("max_bytes/ttl_s: must be positive")
        self._max_bytes = max_bytes
        self._ttl_s = ttl_s
        self._entries: OrderedDict[tuple[object, ...], tuple[float, int, str, bytes]] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = self._evictions = 0

    def get(self, key: tuple[object, ...]) -> tuple[int, str, bytes] | None:
        """A fresh entry, or None."""
        entry = self._entries.get(key)
        if entry is None or entry[0] < trio.current_time():
            if entry is not None:
                self._drop(key)
            self._misses += 1
            return None
        self._entries.move_to_end(key)
        self._hits += 1
        return entry[1], entry[2], entry[3]

    def put(self, key: tuple[object, ...], status: int, content_type: str, body: bytes) -> None:
        """Store an answer (bodies larger than the whole budget are not stored)."""
        if len(body) > self._max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (trio.current_time() + self._ttl_s, status, content_type, body)
        self._bytes += len(body)
        while self._bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self._evictions += 1

    def _drop(self, key: tuple[object, ...]) -> None:
        entry = self._entries.pop(key)
        self._bytes -= len(entry[3])

    def statistics(self) -> CacheStatistics:
        """A snapshot."""
        return CacheStatistics(
            hits=self._hits,
            misses=self._misses,
            evictions=self._evictions,
            entries=len(self._entries),
            bytes=self._bytes,
        )
