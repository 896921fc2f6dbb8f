"""A job's reads of the source, shared by its destinations and transformed once.

Each destination runs on its own schedule from its own cursor (so a dead one never
holds back another), but destinations that are in step ask for the same windows; this
cache answers the second asker from the first one's result, and de-duplicates reads in
flight. It keeps only the newest window (by default), so memory stays bounded by the
window size, not by history.

Results are keyed by output series (``SeriesOutput``: after relabel and extra labels);
two source series that relabel to the same output set would make the receiver reject the
request, so the second is dropped and counted as a collision.

Vanished series (``vanished``: a sample within ``vanished_lookback_ms`` but not live at T,
``Collector.vanished_series``) are what staleness markers come from; the lookback must
exceed the source's ``--query.lookback-delta`` (5 minutes unless configured), so that a
series silent for longer is certainly not live (the pipeline marks those from its own
high-water marks).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, TypeVar

import trio

from mtproxy.remotewrite.collect import CollectionError, Collector
from mtproxy.remotewrite.gcpause import collector_paused
from mtproxy.remotewrite.job import RemoteWriteJob
from mtproxy.remotewrite.samples import InstantSample, MalformedAnswer
from mtproxy.remotewrite.scan import Samples, identity_of
from mtproxy.remotewrite.transform import SeriesOutput, SeriesTransform
from mtproxy.remotewrite.watermarks import SeriesKey

__all__ = ["JobReads", "LiveSeries", "WindowSeries"]

_VANISHED_LOOKBACK_MS = 360_000
"""Prometheus' default lookback delta (5 minutes), plus a minute."""

WindowSeries = dict[SeriesOutput, Samples]
LiveSeries = dict[SeriesKey, InstantSample]
"""Live series by output key; their ``labels`` are left empty (the key holds them)."""

_NO_LABELS: Mapping[str, str] = MappingProxyType({})

V = TypeVar("V")


@dataclass(slots=True)
class _Pending(Generic[V]):
    done: trio.Event
    value: V | None = None
    error: BaseException | None = None


class _Memo(Generic[V]):
    """Newest-N results by key, with in-flight de-duplication."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[int, int], _Pending[V]] = OrderedDict()

    async def get(self, key: tuple[int, int], compute: Callable[[], Awaitable[V]]) -> V:
        """The value of ``key``: computed here, or by the task already computing it.

        A failure of the computing task is shared with its waiters only when it is an
        ``Exception`` (the read failed, which is the waiters' failure too). A cancellation
        belongs to the task it cancelled: its waiters compute the value themselves rather
        than re-raise a ``Cancelled`` that would unwind a task nobody cancelled.
        """
        while True:
            entry = self._entries.get(key)
            if entry is None:
                entry = _Pending(done=trio.Event())
                self._entries[key] = entry
                while len(self._entries) > self._size:
                    self._entries.popitem(last=False)
                try:
                    entry.value = await compute()
                except BaseException as exc:
                    entry.error = exc
                    if self._entries.get(key) is entry:
                        del self._entries[key]
                    raise
                finally:
                    entry.done.set()
            else:
                await entry.done.wait()
            if entry.error is None:
                assert entry.value is not None
                return entry.value
            if isinstance(entry.error, Exception):
                raise entry.error
            # the computing task was cancelled (or is exiting): try again as the computer


class JobReads:
    """Windows of raw samples and live series of one job, transformed for sending."""

    def __init__(
        self,
        job: RemoteWriteJob,
        collector: Collector,
        *,
        cache_windows: int = 1,
        read_limiter: trio.CapacityLimiter | None = None,
        vanished_lookback_ms: int = _VANISHED_LOOKBACK_MS,
    ) -> None:
        """Reads of one job.

        Args:
            job: The job whose rules are read.
            collector: Reads the source.
            cache_windows: How many of the newest windows are kept for destinations in step
                (one window of 100,000 series holds about 35 MB, and a destination that asks
                for the same window asks at about the same time, so one is enough).
            read_limiter: Held while reading the source (the runner shares one among its
                jobs, to bound the source's load); never while a destination sends.
            vanished_lookback_ms: How far back ``vanished`` looks; more than the source's
                lookback delta.

        Raises:
            ValueError: ``vanished_lookback_ms`` is not positive.
        """
        if vanished_lookback_ms <= 0:
            raise ValueError("vanished_lookback_ms: must be positive")
        self.job = job
        self.transform = SeriesTransform(job)
        self.vanished_lookback_ms = vanished_lookback_ms
        self._collector = collector
        self._read_limiter = read_limiter if read_limiter is not None else trio.CapacityLimiter(1)
        self._windows: _Memo[WindowSeries] = _Memo(cache_windows)
        self._live: _Memo[LiveSeries] = _Memo(2)
        self._vanished: _Memo[frozenset[SeriesOutput]] = _Memo(2)
        self.collisions = 0
        self.series_last_window = 0

    async def window(self, start_ms: int, end_ms: int) -> WindowSeries:
        """Every sample with ``start_ms < t <= end_ms``, per output series."""
        return await self._windows.get((start_ms, end_ms), lambda: self._read_window(start_ms, end_ms))

    async def live(self, at_ms: int) -> LiveSeries:
        """Series live at ``at_ms``, per output series, with their newest value."""
        return await self._live.get((at_ms, at_ms), lambda: self._read_live(at_ms))

    async def vanished(self, at_ms: int) -> frozenset[SeriesOutput]:
        """Output series with a sample in the ``vanished_lookback_ms`` before ``at_ms`` but not live at it."""
        return await self._vanished.get((at_ms, at_ms), lambda: self._read_vanished(at_ms))

    async def _read_window(self, start_ms: int, end_ms: int) -> WindowSeries:
        async with self._read_limiter:
            return await self._read_window_unlimited(start_ms, end_ms)

    async def _read_window_unlimited(self, start_ms: int, end_ms: int) -> WindowSeries:
        out: WindowSeries = {}
        resolve = self.transform.resolve
        for rule in self.job.rules:
            raws = await self._collector.raw_samples(rule, start_ms=start_ms, end_ms=end_ms)
            try:
                with collector_paused():  # a new series makes a few objects, none in a cycle
                    for identity, samples in raws:
                        output = resolve(identity)
                        if output is None:
                            continue
                        first = out.setdefault(output, samples)
                        if first is not samples and first != samples:
                            self.collisions += 1  # the first one stays
            except MalformedAnswer as exc:  # labels the scanner cut but did not check
                raise CollectionError(f"source answer: {exc}") from None
            del raws
            await trio.sleep(0)
        self.series_last_window = len(out)
        return out

    async def _read_vanished(self, at_ms: int) -> frozenset[SeriesOutput]:
        async with self._read_limiter:
            out: set[SeriesOutput] = set()
            for rule in self.job.rules:
                for sample in await self._collector.vanished_series(
                    rule, at_ms=at_ms, lookback_ms=self.vanished_lookback_ms
                ):
                    output = self.transform.resolve(identity_of(sample.labels), sample.labels)
                    if output is not None:
                        out.add(output)
                await trio.sleep(0)
            return frozenset(out)

    async def _read_live(self, at_ms: int) -> LiveSeries:
        async with self._read_limiter:
            return await self._read_live_unlimited(at_ms)

    async def _read_live_unlimited(self, at_ms: int) -> LiveSeries:
        out: LiveSeries = {}
        for rule in self.job.rules:
            for sample in await self._collector.live_series(rule, at_ms=at_ms):
                key = self.transform.output_key(sample.labels)
                if key is not None and key not in out:
                    # the output key names the series from here on: the memo keeps no label dicts
                    out[key] = InstantSample(labels=_NO_LABELS, timestamp_ms=sample.timestamp_ms, value=sample.value)
            await trio.sleep(0)
        return out
