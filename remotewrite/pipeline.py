"""One destination of one job: what it is sent each cycle, so that it ends equal to the source.

Remote-write destinations (``RemoteWritePipeline``):

- each cycle reads the windows from the destination's cursor to T (bounded by
  ``max_backfill``), in windows of at most ``window_ms``, and sends for each series only
  the samples newer than its high-water mark, in order, ``batch_size`` samples a request;
- a 2xx moves the marks (and journals them); a permanent refusal (4xx) is counted and
  the samples skipped, never retried forever; a retryable failure stops the cycle with
  the cursor unchanged, so the next cycle resends from there (the backfill of a
  destination that was down);
- a request whose answer never came (cut off by the cycle's deadline, a timeout, a
  network error, or a kill of the process) may have been stored all the same, and a
  Prometheus receiver refuses a whole request holding one sample it already has. So each
  batch's newest timestamps are journaled as *in flight* before it is sent, and until
  its answer settles them, those series' samples up to there are resent first, in a
  request of their own: a 2xx, or a 400 (they were stored: the older ones are now out of
  order), settles them, and only then are newer samples sent, which can no longer be
  refused for the old ones;
- after the windows, series that were delivered but are no longer live at the source get
  a staleness marker at T, in a request of their own so a refused marker cannot take
  real data with it. The source names those that went away within its lookback
  (``JobReads.vanished``); a series whose newest delivered sample is older than that
  lookback is not live either, so it is marked from its high-water mark alone.

Series are handled as ``SeriesOutput`` (their encoded label block, which is their identity,
and their hash): the marks, the batches and the journal never rebuild a label set.

Pushgateway destinations (``PushgatewayPipeline``) get the newest value of every live
series each cycle as one PUT of the whole group; a series that is gone is left out,
which removes it (the Pushgateway has no staleness markers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import trio

from mtproxy.remotewrite.encode import STALE_NAN, compress_block, encode_series, encode_write_request
from mtproxy.remotewrite.exposition import format_exposition
from mtproxy.remotewrite.job import Destination
from mtproxy.remotewrite.pushgateway import PushgatewaySender
from mtproxy.remotewrite.reads import JobReads, WindowSeries
from mtproxy.remotewrite.scan import Samples
from mtproxy.remotewrite.senders import HttpSender, RemoteWriteSender, SenderStatistics, SendOutcome, SendResult
from mtproxy.remotewrite.state import NO_WRITE, JobState, StateStore
from mtproxy.remotewrite.transform import SeriesOutput, output_labels
from mtproxy.remotewrite.watermarks import SeriesKey, Watermarks

__all__ = ["FAILURE_TARGET_UNREACHABLE", "FAILURE_WRITE_FAILED", "PipelineStatistics", "PushgatewayPipeline",
           "RemoteWritePipeline"]

FAILURE_TARGET_UNREACHABLE = "TargetUnreachable"
"""The destination gave no answer (connect error, reset, timeout) before the cycle's deadline."""
FAILURE_WRITE_FAILED = "WriteFailed"
"""The destination answered, but not 2xx (a refusal, or 5xx/429 until the deadline)."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineStatistics:
    """Delivery state of one destination, for status and metrics."""

    destination: str
    healthy: bool
    cursor_ms: int | None
    samples_forwarded: int
    stale_markers_sent: int
    samples_dropped: int
    series_last_cycle: int
    last_success_ms: int | None
    last_error: str | None
    cycle_failure: str | None
    """Why the last cycle did not deliver everything (``FAILURE_*``), None when it did."""
    highest_sent_ms: int | None
    """The newest sample timestamp the destination acknowledged."""
    sender: SenderStatistics
    """The HTTP sender's counters (requests, retries, drops by reason)."""


def _failure_of(result: SendResult) -> str:
    return FAILURE_TARGET_UNREACHABLE if result.status is None else FAILURE_WRITE_FAILED


class _Base:
    def __init__(self, reads: JobReads, destination: Destination, sender: HttpSender) -> None:
        self._http_sender = sender
        self.reads = reads
        self.destination = destination
        self.healthy = True
        self.samples_forwarded = 0
        self.stale_markers_sent = 0
        self.samples_dropped = 0
        self.series_last_cycle = 0
        self.last_success_ms: int | None = None
        self.last_error: str | None = None
        self.cycle_failure: str | None = None
        self.highest_sent_ms: int | None = None

    @property
    def cursor_ms(self) -> int | None:
        """End of the newest window this destination has fully received."""
        raise NotImplementedError

    def statistics(self) -> PipelineStatistics:
        """A snapshot."""
        return PipelineStatistics(
            destination=self.destination.name,
            healthy=self.healthy,
            cursor_ms=self.cursor_ms,
            samples_forwarded=self.samples_forwarded,
            stale_markers_sent=self.stale_markers_sent,
            samples_dropped=self.samples_dropped,
            series_last_cycle=self.series_last_cycle,
            last_success_ms=self.last_success_ms,
            last_error=self.last_error,
            cycle_failure=self.cycle_failure,
            highest_sent_ms=self.highest_sent_ms,
            sender=self._http_sender.statistics(),
        )

    def forwarded_reader(self) -> Callable[[], list[tuple[SeriesKey, int, float]]]:
        """The series delivered in the last cycle, each with its newest sample, read later.

        The copy is taken now, on the event loop; the call decodes the label sets, which for
        100,000 series takes about half a second, so an ops page makes it in a worker thread.
        """
        raise NotImplementedError

    async def close(self) -> None:
        """Release the sender's connections (own TLS clients included)."""
        await self._http_sender.aclose()

    def _fail(self, message: str, reason: str) -> None:
        self.healthy = False
        self.last_error = message[:1024]
        self.cycle_failure = reason


class RemoteWritePipeline(_Base):
    """Remote write to one receiver, lossless and without duplicates."""

    def __init__(
        self,
        reads: JobReads,
        destination: Destination,
        *,
        sender: RemoteWriteSender,
        state: JobState,
        store: StateStore,
        window_ms: int = 300_000,
    ) -> None:
        super().__init__(reads, destination, sender)
        self._sender = sender
        self._state = state
        self._store = store
        self._window_ms = window_ms
        self.marks: Watermarks[SeriesOutput] = Watermarks()
        self._restored = dict(state.marks.get(destination.name, {}))
        # series hash -> newest timestamp of a request sent without a definite answer yet
        self._in_flight = state.in_flight.setdefault(destination.name, {})
        self._forwarded: list[tuple[SeriesOutput, int, float]] = []

    @property
    def cursor_ms(self) -> int | None:
        """End of the newest window this destination has fully received."""
        return self._state.cursors.get(self.destination.name)

    def forwarded_reader(self) -> Callable[[], list[tuple[SeriesKey, int, float]]]:
        entries = list(self._forwarded)
        return lambda: [(output_labels(output[0]), timestamp, value) for output, timestamp, value in entries]

    def _pending(self, output: SeriesOutput, samples: Samples) -> Sequence[tuple[int, float]]:
        if self._restored and self.marks.mark(output) is None:
            restored = self._restored.pop(output[1], None)
            if restored is not None:
                self.marks.acknowledge(output, restored)
        return self.marks.pending(output, samples)

    async def cycle(self, end_ms: int, *, first_start_ms: int) -> None:
        """Deliver everything up to ``end_ms``; stops early (cursor kept) when the receiver is unavailable."""
        self.cycle_failure = None
        cursor = self.cursor_ms if self.cursor_ms is not None else first_start_ms
        position = max(cursor, end_ms - self.reads.job.max_backfill_ms)
        delivered_series: set[SeriesOutput] = set()
        self._forwarded = []
        while position < end_ms:
            window_end = min(position + self._window_ms, end_ms)
            window = await self.reads.window(position, window_end)
            if self._in_flight and not await self._settle_in_flight(position, window, delivered_series):
                return
            if not await self._deliver(window, delivered_series):
                return
            del window
            self._state.cursors[self.destination.name] = window_end
            # captured here, between two changes of the state; written off the event loop
            write = self._store.snapshot(self.reads.job.key, self._state)
            if write is not NO_WRITE:
                await trio.to_thread.run_sync(write)
            position = window_end
        self.series_last_cycle = len(delivered_series)
        await self._mark_stale(end_ms)
        # the cursor and marks of this cycle reach the state store within an interval (the
        # next batch's in-flight record carries them, or this write when nothing is sent)
        await self._store.make_durable(self.reads.job.key, max_age_ms=self.reads.job.interval_ms)

    async def _deliver(self, window: WindowSeries, delivered: set[SeriesOutput]) -> bool:
        batch: list[bytes] = []
        newest: list[tuple[SeriesOutput, int, float]] = []
        count = 0
        batch_size = self.reads.job.batch_size
        pending_of = self._pending if self._restored else self.marks.pending
        for output, samples in window.items():
            pending = pending_of(output, samples)
            if not pending:
                continue
            batch.append(encode_series(output[0], pending))
            timestamp, value = pending[-1]
            newest.append((output, timestamp, value))
            count += len(pending)
            if count >= batch_size:
                if not await self._send(batch, newest, count):
                    return False
                delivered.update([output for output, _, _ in newest])
                batch, newest, count = [], [], 0
        if batch:
            if not await self._send(batch, newest, count):
                return False
            delivered.update([output for output, _, _ in newest])
        return True

    async def _settle_in_flight(
        self, position: int, window: Mapping[SeriesOutput, Samples], delivered: set[SeriesOutput]
    ) -> bool:
        """Resend, alone, the window's samples of requests whose answer never came (see module docstring)."""
        for digest in [d for d, until in self._in_flight.items() if until <= position]:
            del self._in_flight[digest]  # older than the window: out of reach (max_backfill)
        batch: list[bytes] = []
        newest: list[tuple[SeriesOutput, int, float]] = []
        count = 0
        for output, samples in window.items():
            until = self._in_flight.get(output[1])
            if until is None:
                continue
            pending = [sample for sample in self._pending(output, samples) if sample[0] <= until]
            if pending:
                batch.append(encode_series(output[0], pending))
                newest.append((output, pending[-1][0], pending[-1][1]))
                count += len(pending)
        if not batch:
            return True
        logger.info(
            "resending samples of a request that got no answer",
            extra={"job": self.reads.job.key, "destination": self.destination.name, "series": len(batch)},
        )
        if not await self._send(batch, newest, count, resend=True):
            return False
        delivered.update(output for output, _, _ in newest)
        return True

    async def _send(
        self, batch: list[bytes], newest: list[tuple[SeriesOutput, int, float]], count: int, *, resend: bool = False
    ) -> bool:
        body = compress_block(encode_write_request(batch))
        sending = [(output[1], timestamp) for output, timestamp, _ in newest]
        self._in_flight.update(sending)
        self._store.append_in_flight(self.reads.job.key, self.destination.name, sending)
        # what may reach the receiver is known to the state store before it is sent
        await self._store.make_durable(self.reads.job.key)
        result = await self._sender.send(body, samples=count, resend=resend)
        if result.outcome is SendOutcome.RETRY_LATER:
            self._fail(result.error or "receiver unavailable", _failure_of(result))
            return False
        if result.outcome is SendOutcome.DROPPED and resend and result.status == 400:
            # the request that got no answer had been stored: these samples are there
            logger.info(
                "resent samples refused as already stored",
                extra={"job": self.reads.job.key, "destination": self.destination.name, "samples": count},
            )
        elif result.outcome is SendOutcome.DROPPED:
            self.samples_dropped += count
            self.last_error = (result.error or f"refused with HTTP {result.status}")[:1024]
            self.cycle_failure = FAILURE_WRITE_FAILED
        else:
            self.samples_forwarded += count
            self.healthy = True
            self.last_success_ms = int(time.time() * 1000)
            self._forwarded.extend(newest)
            newest_ms = max(timestamp for _, timestamp, _ in newest)
            if self.highest_sent_ms is None or newest_ms > self.highest_sent_ms:
                self.highest_sent_ms = newest_ms
        self.marks.acknowledge_all([(output, timestamp) for output, timestamp, _ in newest])
        self._state.marks.setdefault(self.destination.name, {}).update(sending)
        in_flight = self._in_flight
        for digest, timestamp in sending:
            if in_flight.get(digest, timestamp) <= timestamp:
                in_flight.pop(digest, None)
        self._store.append_marks(self.reads.job.key, self.destination.name, sending)
        return True

    async def _mark_stale(self, end_ms: int) -> None:
        if not self.marks:
            return  # nothing was ever delivered: no need to ask the source
        vanished = await self.reads.vanished(end_ms)
        gone = self.marks.vanished(vanished, at_ms=end_ms, quiet_until_ms=end_ms - self.reads.vanished_lookback_ms)
        if not gone:
            return
        batch = [encode_series(output[0], [(end_ms, STALE_NAN)]) for output in gone]
        result = await self._sender.send(compress_block(encode_write_request(batch)), samples=len(batch))
        if result.outcome is SendOutcome.RETRY_LATER:
            self._fail(result.error or "receiver unavailable", _failure_of(result))
            return
        if result.outcome is SendOutcome.DELIVERED:
            self.stale_markers_sent += len(gone)
        marks = self._state.marks.get(self.destination.name, {})
        for output in gone:
            self.marks.forget(output)
            marks.pop(output[1], None)


    async def mark_all_stale(self, at_ms: int) -> int:
        """Send a staleness marker at ``at_ms`` for every series delivered so far (its job went away).

        Returns how many markers were delivered (0 when the receiver did not take them).
        """
        marked = self.marks.items()
        if not marked:
            return 0
        # a marker must come after the series' newest sample, which may be as new as ``at_ms``
        batch = [encode_series(output[0], [(max(at_ms, mark + 1), STALE_NAN)]) for output, mark in marked]
        result = await self._sender.send(compress_block(encode_write_request(batch)), samples=len(batch))
        if result.outcome is not SendOutcome.DELIVERED:
            return 0
        self.stale_markers_sent += len(marked)
        return len(marked)


class PushgatewayPipeline(_Base):
    """The newest value of every live series, PUT as one group each cycle."""

    def __init__(self, reads: JobReads, destination: Destination, *, sender: PushgatewaySender) -> None:
        super().__init__(reads, destination, sender)
        self._sender = sender
        self._cursor_ms: int | None = None
        self._forwarded: list[tuple[SeriesKey, int, float]] = []

    @property
    def cursor_ms(self) -> int | None:
        return self._cursor_ms

    async def delete_group(self) -> SendResult:
        """Delete this job's group (the job went away; groups never expire by themselves)."""
        return await self._sender.delete_group()

    async def cycle(self, end_ms: int, *, first_start_ms: int) -> None:
        """PUT the live series' newest values."""
        live = await self.reads.live(end_ms)
        body = format_exposition((dict(key), sample.value) for key, sample in live.items())
        self.cycle_failure = None
        result = await self._sender.push(body)
        if result.outcome is SendOutcome.RETRY_LATER:
            self._fail(result.error or "pushgateway unavailable", _failure_of(result))
            return
        if result.outcome is SendOutcome.DROPPED:
            self.samples_dropped += len(live)
            self.last_error = (result.error or f"refused with HTTP {result.status}")[:1024]
            self.cycle_failure = FAILURE_WRITE_FAILED
            return
        self.healthy = True
        self.samples_forwarded += len(live)
        self.series_last_cycle = len(live)
        self._cursor_ms = end_ms
        if live:
            self.highest_sent_ms = max(sample.timestamp_ms for sample in live.values())
        self.last_success_ms = int(time.time() * 1000)
        self._forwarded = [(key, s.timestamp_ms, s.value) for key, s in live.items()]

    def forwarded_reader(self) -> Callable[[], list[tuple[SeriesKey, int, float]]]:
        entries = list(self._forwarded)
        return lambda: entries
