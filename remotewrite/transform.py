"""Source labels to the label set a destination receives: relabel, then extra labels.

Order as in the original: ``metricRelabelings`` first (Prometheus semantics, compiled
once per job), then ``extraLabels`` with ``honorLabels``. A series relabelling drops, or
one left without a ``__name__`` or with a label name ``labelmap`` made invalid (a
Prometheus receiver would silently skip either), is counted by reason and not sent.

Series are stable between cycles, so the outcome is cached per source series, keyed by its
*identity* (the raw JSON text of its labels in the source's answer, ``samples``/``scan``),
and kept as a :data:`SeriesOutput`: the encoded ``TimeSeries.labels`` block (which is
also the output series' identity from here on: equal label sets encode to equal bytes,
different ones to different bytes, and ``bytes`` keep their hash) and the series' hash
for the state files. Output label tuples are not kept: at 100,000 series they would be
the largest thing in memory, and only the ops page needs them (:func:`output_labels`
decodes a block). The caches are emptied when they outgrow ``max_cached``, so memory
follows the live series, not history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mtproxy.api import LABEL_NAME_RE
from mtproxy.remotewrite.encode import encode_label_set
from mtproxy.remotewrite.job import RemoteWriteJob
from mtproxy.remotewrite.labels import merge_extra_labels
from mtproxy.remotewrite.prompb import TimeSeries
from mtproxy.remotewrite.relabel import apply, compile_rules
from mtproxy.remotewrite.scan import decode_labels
from mtproxy.remotewrite.state import series_hash
from mtproxy.remotewrite.watermarks import SeriesKey

__all__ = ["SeriesOutput", "SeriesTransform", "TransformStatistics", "output_labels"]

_DROPPED = object()


SeriesOutput = tuple[bytes, str]
"""One output series as the pipeline handles it: (block, digest).

``block`` is the encoded ``TimeSeries.labels`` (sorted, unique, no empty values), ``digest``
the ``series_hash`` of the label set (how state files name the series). A plain tuple, not
a NamedTuple: CPython's collector stops tracking exact tuples of bytes and str, and a
100,000 of them tracked made each full collection cost a tenth of a second.
"""


def output_labels(block: bytes) -> SeriesKey:
    """The label set an encoded block holds (for display; the pipeline never needs it)."""
    return tuple((label.name, label.value) for label in TimeSeries.FromString(block).labels)


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
        self._outputs: dict[bytes, object] = {}
        self._outcomes: dict[SeriesKey, object] = {}
        self._valid_names: set[str] = set()
        self._dropped_relabel = 0
        self._dropped_name = 0
        self._dropped_invalid = 0

    def resolve(self, identity: bytes, labels: Mapping[str, str] | None = None) -> SeriesOutput | None:
        """The output of a source series, or None when it is dropped.

        Args:
            identity: The series' identity (the raw JSON text of its labels).
            labels: Its labels, when the caller has them decoded already.

        Raises:
            MalformedAnswer: ``labels`` not given and ``identity`` is not a labels object.
        """
        cached = self._outputs.get(identity)
        if cached is None:
            key = self._output_key(decode_labels(identity) if labels is None else labels)
            cached = _DROPPED if key is None else (encode_label_set(key), series_hash(key))
            if len(self._outputs) >= self._max_cached:
                self._outputs.clear()
            self._outputs[identity] = cached
        return None if cached is _DROPPED else cached  # type: ignore[return-value]

    def output_key(self, labels: Mapping[str, str]) -> SeriesKey | None:
        """The label set sent for a source series (sorted pairs), or None when it is dropped."""
        source_key = tuple(sorted(labels.items()))
        cached = self._outcomes.get(source_key)
        if cached is None:
            cached = self._output_key(labels)
            if cached is None:
                cached = _DROPPED
            if len(self._outcomes) >= self._max_cached:
                self._outcomes.clear()
            self._outcomes[source_key] = cached
        return None if cached is _DROPPED else cached  # type: ignore[return-value]

    def _output_key(self, labels: Mapping[str, str]) -> SeriesKey | None:
        relabelled = apply(self._rules, labels) if self._has_rules else labels
        if relabelled is None:
            self._dropped_relabel += 1
            return None
        merged = merge_extra_labels(relabelled, self._extra, honor_labels=self._honor) if self._extra else relabelled
        if not merged.get("__name__"):
            self._dropped_name += 1
            return None
        valid = self._valid_names
        if not valid.issuperset(merged):  # names are few: each is checked once
            for name in merged:
                if not LABEL_NAME_RE.match(name):
                    # labelmap can produce names Prometheus' receiver would skip silently
                    self._dropped_invalid += 1
                    return None
            if len(valid) < 4096:
                valid.update(merged)
        if "" in merged.values():
            return tuple(sorted([(k, v) for k, v in merged.items() if v]))
        return tuple(sorted(merged.items()))

    def statistics(self) -> TransformStatistics:
        """Counters."""
        return TransformStatistics(
            dropped_by_relabel=self._dropped_relabel,
            dropped_without_name=self._dropped_name,
            dropped_invalid_label_name=self._dropped_invalid,
            cached_series=len(self._outputs) + len(self._outcomes),
        )
