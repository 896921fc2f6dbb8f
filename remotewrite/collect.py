"""Reading a job's series from the infrastructure Prometheus: raw samples and live series.

Raw samples come from a range selector through ``/api/v1/query`` (``{rule}[W]`` at time
T, POST form body), the one query-API read that returns every raw sample (``/federate``
and ``query_range`` are lossy). Prometheus 2.x includes both ends of the range, so
samples at exactly the window start are dropped here: windows are half-open
``(start, end]``. Isolation is enforced natively: the rule already carries
``namespace="<ns>"``.

Live series come from an instant query of the same selector at T: a series whose source
went stale (or has had no sample for the lookback) is absent; its newest value is what a
Pushgateway receives.

Vanished series are what staleness markers are derived from, and the source is asked for
exactly those, so a cycle never reads every live series a second time::

    label_replace(last_over_time(S[L]), "__mtproxy_name__", "$1", "__name__", "(.+)")
      unless label_replace(S, "__mtproxy_name__", "$1", "__name__", "(.+)")

at T: the series with a sample in the last ``L`` that are not live at T. ``unless`` matches
on every label but ``__name__``, so the name is copied into a helper label first (two
metrics with otherwise equal labels would hide each other); ``last_over_time`` keeps the
name (Prometheus 2.26+), and the helper label is removed from the answer. Range selectors
skip staleness markers, so a series that went stale within ``L`` is in the answer; one
silent for longer than ``L`` is not (the caller knows it from its own marks).

Raw samples are read by ``scan.scan_matrix_answer``: each series comes as its identity
(the raw text of its labels, which the caller decodes, and so checks, the first time it
sees it) and its samples.

A response larger than ``max_response_bytes`` is abandoned while streaming and the
window split in two, down to ``min_window_ms``, so no single answer exceeds the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from mtproxy.api import Rule, format_duration
from mtproxy.remotewrite.samples import InstantSample, MalformedAnswer, parse_vector_answer
from mtproxy.remotewrite.scan import RawSeries, decode_labels, scan_matrix_answer

__all__ = ["CollectionError", "Collector", "CollectorStatistics"]


class CollectionError(Exception):
    """The source could not be read this cycle; nothing is lost, the next cycle's window covers it."""


class _TooLarge(Exception):
    pass


_NAME_COPY = "__mtproxy_name__"
"""The helper label that carries ``__name__`` through ``unless`` in the vanished-series query."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectorStatistics:
    """Queries made against the source."""

    queries: int
    failures: int
    splits: int
    bytes_read: int
    skipped_histogram_series: int


def _time_param(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


class Collector:
    """Queries the source Prometheus for one rule at a time."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        source_urls: Callable[[], Sequence[str]],
        max_response_bytes: int = 64 * 1024 * 1024,
        min_window_ms: int = 1000,
        user_agent: str = "mtproxy/0.1 remote-write",
    ) -> None:
        if max_response_bytes <= 0:
            raise ValueError("max_response_bytes: must be positive")
        self._http = http
        self._source_urls = source_urls
        self._max_bytes = max_response_bytes
        self._min_window_ms = min_window_ms
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self._counts = {"queries": 0, "failures": 0, "splits": 0, "bytes": 0, "histograms": 0}

    def statistics(self) -> CollectorStatistics:
        """Counters."""
        return CollectorStatistics(
            queries=self._counts["queries"],
            failures=self._counts["failures"],
            splits=self._counts["splits"],
            bytes_read=self._counts["bytes"],
            skipped_histogram_series=self._counts["histograms"],
        )

    async def _query(self, query: str, at_ms: int) -> bytes:
        urls = list(self._source_urls())
        if not urls:
            raise CollectionError("no healthy source Prometheus")
        last_error = "no answer"
        for base in urls:
            self._counts["queries"] += 1
            try:
                async with self._http.stream(
                    "POST",
                    f"{base.rstrip('/')}/api/v1/query",
                    data={"query": query, "time": _time_param(at_ms)},
                    headers=self._headers,
                ) as response:
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self._max_bytes:
                            raise _TooLarge
                        chunks.append(chunk)
                    self._counts["bytes"] += size
                    body = b"".join(chunks)
                    if response.status_code == 200:
                        return body
                    last_error = f"{base}: HTTP {response.status_code}: {body[:256].decode('utf-8', 'replace')}"
                    if response.status_code == 400 or response.status_code == 422:
                        break  # the query itself is wrong; another replica will say the same
            except httpx.HTTPError as exc:
                last_error = f"{base}: {type(exc).__name__}: {exc}"
            self._counts["failures"] += 1
        raise CollectionError(last_error[:512])

    async def raw_samples(self, rule: Rule, *, start_ms: int, end_ms: int) -> list[RawSeries]:
        """Every raw sample of the rule's series with ``start_ms < t <= end_ms``, oldest first."""
        if end_ms <= start_ms:
            return []
        try:
            body = await self._query(f"{rule.selector()}[{format_duration(end_ms - start_ms)}]", end_ms)
        except _TooLarge:
            if end_ms - start_ms <= self._min_window_ms:
                raise CollectionError("answer too large even for the smallest window") from None
            self._counts["splits"] += 1
            middle = start_ms + (end_ms - start_ms) // 2
            first = await self.raw_samples(rule, start_ms=start_ms, end_ms=middle)
            second = await self.raw_samples(rule, start_ms=middle, end_ms=end_ms)
            return _concat(first, second)
        try:
            scanned = scan_matrix_answer(body, after_ms=start_ms)
        except MalformedAnswer as exc:
            raise CollectionError(f"source answer: {exc}") from None
        self._counts["histograms"] += scanned.skipped_histogram_series
        return scanned.series

    async def live_series(self, rule: Rule, *, at_ms: int) -> tuple[InstantSample, ...]:
        """The rule's series that are live (not stale, sampled within the lookback) at ``at_ms``."""
        return await self._instant(rule.selector(), at_ms)

    async def vanished_series(self, rule: Rule, *, at_ms: int, lookback_ms: int) -> tuple[InstantSample, ...]:
        """The rule's series with a sample in the ``lookback_ms`` before ``at_ms`` that are not live at ``at_ms``.

        Their labels are the source's (the helper label removed); their value is their last one.
        """
        selector = rule.selector()
        copy = f'"{_NAME_COPY}", "$1", "__name__", "(.+)"'
        query = (
            f"label_replace(last_over_time({selector}[{format_duration(lookback_ms)}]), {copy}) "
            f"unless label_replace({selector}, {copy})"
        )
        answer = await self._instant(query, at_ms)
        return tuple(
            InstantSample(
                labels={k: v for k, v in sample.labels.items() if k != _NAME_COPY},
                timestamp_ms=sample.timestamp_ms,
                value=sample.value,
            )
            for sample in answer
        )

    async def _instant(self, query: str, at_ms: int) -> tuple[InstantSample, ...]:
        try:
            body = await self._query(query, at_ms)
            return parse_vector_answer(body)
        except _TooLarge:
            raise CollectionError("instant answer larger than max_response_bytes") from None
        except MalformedAnswer as exc:
            raise CollectionError(f"source answer: {exc}") from None


def _concat(first: list[RawSeries], second: list[RawSeries]) -> list[RawSeries]:
    """The two halves of a split window, one entry per series.

    Matched by label set, not identity: a half the full parser read has re-encoded identities.
    """
    by_labels: dict[tuple[tuple[str, str], ...], RawSeries] = {}
    for identity, samples in (*first, *second):
        try:
            key = tuple(sorted(decode_labels(identity).items()))
        except MalformedAnswer as exc:
            raise CollectionError(f"source answer: {exc}") from None
        earlier = by_labels.get(key)
        by_labels[key] = (identity, samples) if earlier is None else (earlier[0], earlier[1] + samples)
    return list(by_labels.values())
