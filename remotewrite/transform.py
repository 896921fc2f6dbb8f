"""Source labels to the label set a destination receives: relabel, then extra labels.

Order as in the original: ``metricRelabelings`` first (Prometheus semantics, compiled
once per job), then ``extraLabels`` with ``honorLabels``. A series relabelling drops, or
one left without a ``__name__`` or with a label name ``labelmap`` made invalid (a
Prometheus receiver would silently skip either), is counted by reason and not sent.
Series are stable between cycles, so the outcome per
source label set and the encoded label block per output set are cached; the caches are
emptied when they outgrow ``max_cached`` (so memory follows the live series, not
history).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mtproxy.api import LABEL_NAME_RE
from mtproxy.remotewrite.encode import encode_labels
from mtproxy.remotewrite.job import RemoteWriteJob
from mtproxy.remotewrite.labels import merge_extra_labels
from mtproxy.remotewrite.relabel import apply, compile_rules
from mtproxy.remotewrite.watermarks import SeriesKey

__all__ = ["SeriesTransform", "TransformStatistics"]

_DROPPED = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class TransformStatistics:
    """What the transform dropped, and its cache size."""

    dropped_by_relabel: int
    dropped_without_name: int
    dropped_invalid_label_name: int
    cached_series: int


class SeriesTransform:
    """The transform of one job (its rules, extra labels and honorLabels)."""

    def __init__(self, job: RemoteWriteJob, *, max_cached: int = 1_000_000) -> None:
        self._rules = compile_rules(job.relabel)
        self._has_rules = bool(job.relabel)
        self._extra = dict(job.extra_labels)
        self._honor = job.honor_labels
        self._max_cached = max_cached
        self._outcomes: dict[SeriesKey, object] = {}
        self._blocks: dict[SeriesKey, bytes] = {}
        self._dropped_relabel = 0
        self._dropped_name = 0
        self._dropped_invalid = 0

    def output_key(self, labels: Mapping[str, str]) -> SeriesKey | None:
        """The label set sent for a source series (sorted pairs), or None when it is dropped."""
        source_key = tuple(sorted(labels.items()))
        cached = self._outcomes.get(source_key)
        if cached is not None:
            return None if cached is _DROPPED else cached  # type: ignore[return-value]
        result: object
        relabelled = apply(self._rules, labels) if self._has_rules else dict(labels)
        if relabelled is None:
            self._dropped_relabel += 1
            result = _DROPPED
        else:
            merged = merge_extra_labels(relabelled, self._extra, honor_labels=self._honor)
            if not merged.get("__name__"):
                self._dropped_name += 1
                result = _DROPPED
            elif not all(LABEL_NAME_RE.match(name) for name in merged):
                # labelmap can produce names Prometheus' receiver would skip silently
                self._dropped_invalid += 1
                result = _DROPPED
            else:
                output = tuple(sorted((k, v) for k, v in merged.items() if v))
                # the cache holds one tuple per series where nothing changed, not two equal ones
                result = source_key if output == source_key else output
        if len(self._outcomes) >= self._max_cached:
            self._outcomes.clear()
        self._outcomes[source_key] = result
        return None if result is _DROPPED else result  # type: ignore[return-value]

    def label_block(self, key: SeriesKey) -> bytes:
        """The encoded ``TimeSeries.labels`` of an output key (cached)."""
        block = self._blocks.get(key)
        if block is None:
            if len(self._blocks) >= self._max_cached:
                self._blocks.clear()
            block = self._blocks[key] = encode_labels(key)
        return block

    def statistics(self) -> TransformStatistics:
        """Counters."""
        return TransformStatistics(
            dropped_by_relabel=self._dropped_relabel,
            dropped_without_name=self._dropped_name,
            dropped_invalid_label_name=self._dropped_invalid,
            cached_series=len(self._outcomes),
        )
