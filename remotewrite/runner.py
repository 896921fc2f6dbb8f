"""The job runner: one task per remote-write job, each destination on its own schedule.

``set_jobs`` declares the wanted jobs (from the reconciler, or from the files watcher);
the runner starts new ones, cancels removed ones (deleting a Pushgateway job's group,
which would otherwise never expire) and restarts changed ones: jobs compare by value, so
any edit that matters restarts exactly that job. Every job runs in its own cancel scope
inside the runner's nursery; within a job, each destination has its own task and
schedule (every ``interval``, no drift), so a slow or dead destination never delays
another. A cycle's deadline is the job's interval: a destination that cannot be reached
by then is retried next cycle from its cursor. At most ``max_concurrent_jobs`` jobs
read the source at once; the slot is held for the read only, never while sending, so a
destination that is down (retrying until its deadline) cannot keep another job waiting.

Each cycle reads up to ``now - safety_delay`` (the source commits a scrape's samples at
its end, stamped with its start). A job's first cycle starts at the state store's cursor
(``resume_from`` when given) or one interval back.

A job's first cycle runs as soon as it starts; its later ones keep a phase of their own
within the interval, taken from a hash of the job's key (the second cycle comes between
half an interval and one and a half after the first). A leadership term starts every job
at once, and without phases a thousand jobs would stay in step: every interval all of them
would queue for the ``max_concurrent_jobs`` read slots at the same moment, each cycle's
time would be mostly that wait, and the last in the queue would be the first to run into
their deadline. The destinations of one job share its phase, so they still read together.

Fault isolation: every failure of one job (a Secret that cannot be read, a source or
destination that fails, a bug) is caught at that destination's cycle boundary, recorded
with a reason (``JobStatus.failure_reason``) for status and Events, logged, and retried
next cycle; a job whose pipelines cannot even be built retries with capped backoff. No
exception of a job reaches the runner's nursery. ``run`` may be cancelled and called
again any number of times (the leader-only level does so on every leadership term):
each run starts every wanted job afresh from the state store.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import trio

from mtproxy.remotewrite.collect import CollectionError, Collector
from mtproxy.remotewrite.errors import SecretUnavailable
from mtproxy.remotewrite.job import DestinationKind, RemoteWriteJob
from mtproxy.remotewrite.pipeline import PipelineStatistics, PushgatewayPipeline, RemoteWritePipeline
from mtproxy.remotewrite.pushgateway import PushgatewaySender
from mtproxy.remotewrite.reads import JobReads
from mtproxy.remotewrite.senders import RemoteWriteSender
from mtproxy.remotewrite.state import JobState, StateStore

__all__ = [
    "CYCLE_BUCKETS_S",
    "FAILURE_COLLECTION",
    "FAILURE_INTERNAL",
    "FAILURE_SECRET",
    "FAILURE_TIMEOUT",
    "JobRunner",
    "JobStatus",
    "RunnerStatistics",
    "SenderFactory",
]

FAILURE_SECRET = "SecretUnavailable"
"""A Secret a destination references could not be read."""
FAILURE_COLLECTION = "CollectionFailed"
"""The source could not be read."""
FAILURE_INTERNAL = "InternalError"
"""Anything else (a bug): logged with its traceback."""
FAILURE_TIMEOUT = "CycleTimeout"
"""The cycle did not finish within its interval (a slow source or destination); the next resumes it."""

_BUILD_BACKOFF_INITIAL_S = 1.0

logger = logging.getLogger(__name__)

SenderFactory = Callable[[RemoteWriteJob, int], RemoteWriteSender | PushgatewaySender]
"""Builds the sender of ``job.destinations[index]``."""

Pipeline = RemoteWritePipeline | PushgatewayPipeline


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus:
    """What status.remoteWrite reports for one job."""

    key: str
    active: bool
    last_collection_ms: int | None
    last_successful_write_ms: int | None
    series_collected: int
    samples_forwarded: int
    last_error: str | None
    destinations: tuple[PipelineStatistics, ...]
    collisions: int
    cycles_completed: int
    """Cycles every destination has finished since the job (re)started."""
    failure_reason: str | None
    """Why the newest cycle of some destination failed (``FAILURE_*`` here or in the pipeline)."""
    last_cycle_ms: int | None
    """Wall-clock end of the newest finished cycle."""

    @property
    def forwarding(self) -> bool | None:
        """Whether the last cycle wrote to every destination (None before the first one ended)."""
        if self.failure_reason is not None:
            return False
        return None if self.cycles_completed == 0 else True


CYCLE_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds of the cycle-duration histogram, in seconds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerStatistics:
    """Counts over all jobs."""

    jobs: int
    cycles: int
    cycle_failures: int
    runs: int
    """How many times ``run`` was started (leadership terms)."""
    cycle_duration_buckets: tuple[int, ...] = ()
    """Cumulative counts of destination cycles at most each of ``CYCLE_BUCKETS_S`` long (then +Inf)."""
    cycle_duration_sum_s: float = 0.0


def _phase_of(job_key: str) -> float:
    """Where in its interval a job's cycles fall, as a fraction in [0, 1): stable, spread evenly."""
    digest = hashlib.blake2b(job_key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class _RunningJob:
    def __init__(self, job: RemoteWriteJob, reads: JobReads) -> None:
        self.job = job
        self.reads = reads
        self.pipelines: list[Pipeline] = []
        self.scope = trio.CancelScope()
        self.last_error: str | None = None
        self.failure_reason: str | None = None
        """A failure of the job itself (building its pipelines); the pipelines keep their own."""
        self.destination_failures: dict[int, str] = {}
        """Per destination index, why its newest cycle failed."""
        self.destination_cycles: dict[int, int] = {}
        self.last_cycle_ms: int | None = None
        self.retiring = False
        """Set when the job was removed (not when the runner stops): its series are marked stale."""

    def record_failure(self, reason: str, message: str) -> None:
        self.failure_reason = reason
        self.last_error = message[:1024]


class JobRunner:
    """Runs the wanted set of jobs until cancelled."""

    def __init__(
        self,
        *,
        collector: Collector,
        senders: SenderFactory,
        state_store: StateStore,
        max_concurrent_jobs: int = 10,
        safety_delay_ms: int = 2_000,
        window_ms: int = 300_000,
        wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._collector = collector
        self._senders = senders
        self._store = state_store
        self._limiter = trio.CapacityLimiter(max_concurrent_jobs)
        self._safety_delay_ms = safety_delay_ms
        self._window_ms = window_ms
        self._now_ms = wall_clock_ms
        self._wanted: dict[str, RemoteWriteJob] = {}
        self._resume_from: dict[str, int] = {}
        self._running: dict[str, _RunningJob] = {}
        self._changed = trio.Event()
        self._cycles = 0
        self._failures = 0
        self._runs = 0
        self._durations = [0] * (len(CYCLE_BUCKETS_S) + 1)
        self._durations_sum_s = 0.0
        self._nursery: trio.Nursery | None = None
        self._listeners: list[Callable[[str], None]] = []

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(job_key)`` whenever a job's cycle ends or the job starts or stops (status)."""
        self._listeners.append(listener)

    def _notify(self, key: str) -> None:
        for listener in self._listeners:
            try:
                listener(key)
            except Exception:
                logger.exception("remote write listener failed", extra={"job": key})

    def set_jobs(self, jobs: Mapping[str, RemoteWriteJob], *, resume_from: Mapping[str, int] | None = None) -> None:
        """Declare the wanted jobs by key; the runner converges to them."""
        self._wanted = dict(jobs)
        self._resume_from.update(resume_from or {})
        self._changed.set()

    def job_status(self, key: str) -> JobStatus | None:
        """The status of a running job, or None."""
        running = self._running.get(key)
        if running is None:
            return None
        destinations = tuple(p.statistics() for p in running.pipelines)
        cursors = [d.cursor_ms for d in destinations]
        successes = [d.last_success_ms for d in destinations if d.last_success_ms is not None]
        errors = [d.last_error for d in destinations if d.last_error]
        reasons = [running.destination_failures[i] for i in sorted(running.destination_failures)]
        failure = running.failure_reason or (reasons[0] if reasons else None)
        completed = min(running.destination_cycles.values(), default=0) if running.pipelines else 0
        if len(running.destination_cycles) < len(running.pipelines):
            completed = 0
        return JobStatus(
            key=key,
            active=True,
            last_collection_ms=(
                None if not cursors or any(c is None for c in cursors) else min(c for c in cursors if c is not None)
            ),
            last_successful_write_ms=max(successes) if successes else None,
            series_collected=max(
                [running.reads.series_last_window]
                + [p.series_last_cycle for p in running.pipelines if isinstance(p, PushgatewayPipeline)]
            ),
            samples_forwarded=sum(d.samples_forwarded for d in destinations),
            last_error=running.last_error or (errors[0] if errors else None),
            destinations=destinations,
            collisions=running.reads.collisions,
            cycles_completed=completed,
            failure_reason=failure,
            last_cycle_ms=running.last_cycle_ms,
        )

    def forwarded_reader(self, key: str) -> Callable[[], list[tuple[tuple[tuple[str, str], ...], int, float]]]:
        """The series (and newest sample) the first destination received in its last cycle, read later.

        See ``forwarded_reader`` of the pipelines: the copy is taken now, the decoding happens at the call.
        """
        running = self._running.get(key)
        if running is None or not running.pipelines:
            return list
        return running.pipelines[0].forwarded_reader()

    def job_keys(self) -> tuple[str, ...]:
        """Keys of the running jobs."""
        return tuple(self._running)

    def statistics(self) -> RunnerStatistics:
        """Counters."""
        cumulative, total = [], 0
        for count in self._durations:
            total += count
            cumulative.append(total)
        return RunnerStatistics(
            jobs=len(self._running),
            cycles=self._cycles,
            cycle_failures=self._failures,
            runs=self._runs,
            cycle_duration_buckets=tuple(cumulative),
            cycle_duration_sum_s=self._durations_sum_s,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Converge to the wanted jobs whenever they change, until cancelled; may be run again."""
        if self._nursery is not None:
            raise RuntimeError("JobRunner.run: already running")
        self._runs += 1
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                while True:
                    self._apply(nursery)
                    await self._changed.wait()
                    self._changed = trio.Event()
        finally:
            # every job task ended with the nursery: the next run starts them from the store
            stopped = list(self._running)
            self._running.clear()
            self._nursery = None
            for key in stopped:
                self._notify(key)

    def _apply(self, nursery: trio.Nursery) -> None:
        for key in list(self._running):
            wanted = self._wanted.get(key)
            running = self._running[key]
            if wanted == running.job:
                continue
            running.retiring = wanted is None
            running.scope.cancel(reason="job changed" if wanted else "job removed")
            del self._running[key]
            if wanted is None:
                logger.info("remote write job stopped", extra={"job": key})
            self._notify(key)
        for key, job in self._wanted.items():
            if key not in self._running:
                self._start(nursery, job)

    def _start(self, nursery: trio.Nursery, job: RemoteWriteJob) -> None:
        running = _RunningJob(job, JobReads(job, self._collector, read_limiter=self._limiter))
        self._running[job.key] = running
        nursery.start_soon(self._run_job, running)
        self._notify(job.key)

    async def _build_pipelines(self, running: _RunningJob) -> list[Pipeline]:
        """The job's pipelines, their state restored from the store (may raise: the caller retries)."""
        job = running.job
        state = await self._store.restore(job.key) or JobState()
        resume = self._resume_from.get(job.key)
        if resume is not None:
            for destination in job.destinations:
                state.cursors.setdefault(destination.name, resume)
        pipelines: list[Pipeline] = []
        for index, destination in enumerate(job.destinations):
            sender = self._senders(job, index)
            if destination.kind is DestinationKind.PUSHGATEWAY:
                assert isinstance(sender, PushgatewaySender)
                pipelines.append(PushgatewayPipeline(running.reads, destination, sender=sender))
            else:
                assert isinstance(sender, RemoteWriteSender)
                pipelines.append(
                    RemoteWritePipeline(
                        running.reads,
                        destination,
                        sender=sender,
                        state=state,
                        store=self._store,
                        window_ms=self._window_ms,
                    )
                )
        return pipelines

    async def _run_job(self, running: _RunningJob) -> None:
        try:
            with running.scope:
                backoff_s = _BUILD_BACKOFF_INITIAL_S
                while not running.pipelines:
                    try:
                        running.pipelines = await self._build_pipelines(running)
                    except Exception as exc:
                        self._record_exception(running, exc)
                        self._notify(running.job.key)
                        await trio.sleep(backoff_s)
                        backoff_s = min(backoff_s * 2, running.job.interval_ms / 1000)
                running.failure_reason = None
                running.last_error = None
                logger.info(
                    "remote write job started",
                    extra={"job": running.job.key, "destinations": len(running.pipelines)},
                )
                async with trio.open_nursery() as nursery:
                    for index, pipeline in enumerate(running.pipelines):
                        nursery.start_soon(self._run_destination, running, index, pipeline)
        finally:
            with trio.CancelScope(shield=True):
                if running.retiring:
                    with trio.move_on_after(15):
                        await self._retire(running)
                for pipeline in running.pipelines:
                    with trio.move_on_after(5):
                        await pipeline.close()

    def _observe_duration(self, duration_s: float) -> None:
        self._durations_sum_s += duration_s
        for index, bound in enumerate(CYCLE_BUCKETS_S):
            if duration_s <= bound:
                self._durations[index] += 1
                return
        self._durations[-1] += 1

    def _record_exception(self, running: _RunningJob, exc: Exception, index: int | None = None) -> None:
        """Classify a job's failure, remember it for status, and log it (bugs with their traceback)."""
        self._failures += 1
        if isinstance(exc, SecretUnavailable):
            reason, message = FAILURE_SECRET, str(exc)
        elif isinstance(exc, CollectionError):
            reason, message = FAILURE_COLLECTION, f"collection failed: {exc}"
        else:
            reason, message = FAILURE_INTERNAL, f"{type(exc).__name__}: {exc}"
        if index is None:
            running.record_failure(reason, message)
        else:
            running.destination_failures[index] = reason
            running.last_error = message[:1024]
        fields = {"job": running.job.key, "reason": reason, "error": message[:256]}
        if reason == FAILURE_INTERNAL:
            logger.error("remote write job failed", extra=fields, exc_info=exc)
        else:
            logger.warning("remote write job failed", extra=fields)

    async def _run_destination(self, running: _RunningJob, index: int, pipeline: Pipeline) -> None:
        interval_s = running.job.interval_ms / 1000
        first_start_ms = self._now_ms() - self._safety_delay_ms - running.job.interval_ms
        started = trio.current_time()
        # the first cycle at once, the next at this job's phase: see the module docstring
        next_tick = started + interval_s * (_phase_of(running.job.key) - 0.5)
        while True:
            end_ms = self._now_ms() - self._safety_delay_ms
            finished = False
            cycle_started = trio.current_time()
            with trio.move_on_after(interval_s * 0.95) as deadline:
                try:
                    self._cycles += 1
                    await pipeline.cycle(end_ms, first_start_ms=first_start_ms)
                    finished = True
                except Exception as exc:  # the boundary of this destination: nothing escapes it
                    self._record_exception(running, exc, index)
            self._observe_duration(trio.current_time() - cycle_started)
            if deadline.cancelled_caught and not finished:
                self._failures += 1
                running.destination_failures[index] = FAILURE_TIMEOUT
                running.last_error = f"the cycle did not finish within its interval ({interval_s:g} s)"
                logger.warning(
                    "remote write cycle timed out", extra={"job": running.job.key, "destination": index}
                )
            if finished:
                failure = pipeline.cycle_failure
                if failure is None:
                    running.destination_failures.pop(index, None)
                    if not running.destination_failures:
                        running.last_error = None
                else:
                    running.destination_failures[index] = failure
                    running.last_error = pipeline.last_error
                running.destination_cycles[index] = running.destination_cycles.get(index, 0) + 1
                running.last_cycle_ms = self._now_ms()
            self._notify(running.job.key)
            next_tick += interval_s
            now = trio.current_time()
            if next_tick < now:  # a cycle overran: skip the missed ticks, keep the phase
                next_tick += math.ceil((now - next_tick) / interval_s) * interval_s
            await trio.sleep_until(next_tick)

    async def _retire(self, running: _RunningJob) -> None:
        """A removed job: its series get staleness markers, its Pushgateway group goes, its state too."""
        at_ms = self._now_ms() - self._safety_delay_ms
        for pipeline in running.pipelines:
            try:
                with trio.move_on_after(5):
                    if isinstance(pipeline, PushgatewayPipeline):
                        result = await pipeline.delete_group()
                        logger.info(
                            "pushgateway group deleted",
                            extra={"job": running.job.key, "outcome": result.outcome.value},
                        )
                    else:
                        markers = await pipeline.mark_all_stale(at_ms)
                        logger.info(
                            "remote write job retired", extra={"job": running.job.key, "stale_markers": markers}
                        )
            except Exception as exc:
                logger.warning(
                    "remote write job retirement failed",
                    extra={"job": running.job.key, "error": f"{type(exc).__name__}: {str(exc)[:256]}"},
                )
        try:
            await self._store.forget(running.job.key)
        except Exception as exc:
            logger.warning(
                "remote write state removal failed",
                extra={"job": running.job.key, "error": f"{type(exc).__name__}: {str(exc)[:256]}"},
            )
