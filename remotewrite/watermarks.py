"""Per-destination, per-series high-water marks: what makes forwarding lossless and duplicate-free.

A Prometheus receiver accepts only samples newer than a series' newest one (an exact
repeat of the newest is a no-op; anything older fails the whole request), so each
destination keeps, per series, the timestamp of the newest sample it has acknowledged.

Contract:

- ``pending(key, samples)`` returns the samples strictly newer than the mark, in order;
- ``acknowledge(key, ts)`` moves the mark forward only (never back), after a 2xx;
- ``stale_markers(seen, at_ms)`` names every marked series not in ``seen`` (the whole live
  set) whose mark is older than ``at_ms``; ``vanished(gone, at_ms=, quiet_until_ms=)`` names
  the same from the other side, for a caller that is told which series went away
  (``gone``) rather than which are live: every marked series in ``gone``, or silent since
  ``quiet_until_ms`` (its mark at or before it), whose mark is older than ``at_ms``. Each
  gets one staleness marker at ``at_ms`` and, once that is acknowledged, is forgotten
  (``forget``), so a series that comes back starts afresh;
- a destination that was down keeps its old marks, so the next cycle sends it everything
  since, bounded by the collection window (the caller's ``max_backfill``).
"""

from __future__ import annotations

from collections.abc import Container, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["SeriesKey", "Watermarks", "WatermarksStatistics"]

SeriesKey = tuple[tuple[str, str], ...]
"""A series' final label set, sorted by name: the identity the receiver sees."""

_K = TypeVar("_K", bound=Hashable)


@dataclass(frozen=True, slots=True, kw_only=True)
class WatermarksStatistics:
    """A snapshot for status and metrics."""

    series: int
    newest_ms: int | None
    oldest_ms: int | None


class Watermarks(Generic[_K]):
    """The marks of one destination, by any value that names a series exactly.

    A ``SeriesKey``, or the pipeline's ``SeriesOutput`` (the series' encoded labels and hash).
    """

    def __init__(self) -> None:
        self._marks: dict[_K, int] = {}

    def __len__(self) -> int:
        return len(self._marks)

    def mark(self, key: _K) -> int | None:
        """The newest acknowledged timestamp of ``key``, or None when never sent."""
        return self._marks.get(key)

    def pending(self, key: _K, samples: Sequence[tuple[int, float]]) -> Sequence[tuple[int, float]]:
        """The samples of ``key`` not yet delivered: strictly newer than its mark, in order.

        ``samples`` itself when all of them are (the common case: no copy).
        """
        mark = self._marks.get(key)
        if mark is None or not samples or samples[0][0] > mark:
            return samples
        return [sample for sample in samples if sample[0] > mark]

    def acknowledge(self, key: _K, timestamp_ms: int) -> None:
        """Record that the destination has every sample of ``key`` up to ``timestamp_ms``."""
        current = self._marks.get(key)
        if current is None or timestamp_ms > current:
            self._marks[key] = timestamp_ms

    def acknowledge_all(self, marks: Iterable[tuple[_K, int]]) -> None:
        """``acknowledge`` each (key, timestamp) pair."""
        current = self._marks
        for key, timestamp_ms in marks:
            if current.get(key, timestamp_ms - 1) < timestamp_ms:
                current[key] = timestamp_ms

    def stale_markers(self, seen: Iterable[_K], at_ms: int) -> list[_K]:
        """Marked series absent from ``seen`` that need a staleness marker at ``at_ms``."""
        present = set(seen)
        return [key for key, mark in self._marks.items() if key not in present and mark < at_ms]

    def vanished(self, gone: Container[_K], *, at_ms: int, quiet_until_ms: int) -> list[_K]:
        """Marked series in ``gone`` or silent since ``quiet_until_ms`` that need a staleness marker at ``at_ms``."""
        return [key for key, mark in self._marks.items() if mark < at_ms and (mark <= quiet_until_ms or key in gone)]

    def items(self) -> list[tuple[_K, int]]:
        """Every (key, mark), copied."""
        return list(self._marks.items())

    def forget(self, key: _K) -> None:
        """Drop a series after its staleness marker was delivered."""
        self._marks.pop(key, None)

    def statistics(self) -> WatermarksStatistics:
        """Counts and extremes of the marks."""
        values = self._marks.values()
        return WatermarksStatistics(
            series=len(self._marks),
            newest_ms=max(values) if self._marks else None,
            oldest_ms=min(values) if self._marks else None,
        )
