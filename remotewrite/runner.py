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
its end, stamped with its start). A job's first cycle starts at ``resume_from`` (the
status' ``lastCollection``, or the state store's cursor) or one interval back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import trio

from mtproxy.remotewrite.collect import CollectionError, Collector
from mtproxy.remotewrite.job import DestinationKind, RemoteWriteJob
from mtproxy.remotewrite.pipeline import PipelineStatistics, PushgatewayPipeline, RemoteWritePipeline
from mtproxy.remotewrite.pushgateway import PushgatewaySender
from mtproxy.remotewrite.reads import JobReads
from mtproxy.remotewrite.senders import RemoteWriteSender
from mtproxy.remotewrite.state import JobState, StateStore

__all__ = ["JobRunner", "JobStatus", "RunnerStatistics", "SenderFactory"]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerStatistics:
    """Counts over all jobs."""

    jobs: int
    cycles: int
    cycle_failures: int


class _RunningJob:
    def __init__(self, job: RemoteWriteJob, reads: JobReads, pipelines: list[Pipeline]) -> None:
        self.job = job
        self.reads = reads
        self.pipelines = pipelines
        self.scope = trio.CancelScope()
        self.last_error: str | None = None


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
        self._nursery: trio.Nursery | None = None

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
        return JobStatus(
            key=key,
            active=True,
            last_collection_ms=None if any(c is None for c in cursors) else min(c for c in cursors if c is not None),
            last_successful_write_ms=max(successes) if successes else None,
            series_collected=running.reads.series_last_window,
            samples_forwarded=sum(d.samples_forwarded for d in destinations),
            last_error=running.last_error or (errors[0] if errors else None),
            destinations=destinations,
            collisions=running.reads.collisions,
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
        return RunnerStatistics(jobs=len(self._running), cycles=self._cycles, cycle_failures=self._failures)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Converge to the wanted jobs whenever they change, until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            while True:
                self._apply(nursery)
                await self._changed.wait()
                self._changed = trio.Event()

    def _apply(self, nursery: trio.Nursery) -> None:
        for key in list(self._running):
            wanted = self._wanted.get(key)
            running = self._running[key]
            if wanted == running.job:
                continue
            running.scope.cancel(reason="job changed" if wanted else "job removed")
            del self._running[key]
            if wanted is None:
                self._store.delete(key)
                nursery.start_soon(self._remove_pushgateway_groups, running)
                logger.info("remote write job stopped", extra={"job": key})
        for key, job in self._wanted.items():
            if key not in self._running:
                self._start(nursery, job)

    def _start(self, nursery: trio.Nursery, job: RemoteWriteJob) -> None:
        state = self._store.load(job.key) or JobState()
        resume = self._resume_from.get(job.key)
        if resume is not None:
            for destination in job.destinations:
                state.cursors.setdefault(destination.name, resume)
        reads = JobReads(job, self._collector, read_limiter=self._limiter)
        pipelines: list[Pipeline] = []
        for index, destination in enumerate(job.destinations):
            sender = self._senders(job, index)
            if destination.kind is DestinationKind.PUSHGATEWAY:
                assert isinstance(sender, PushgatewaySender)
                pipelines.append(PushgatewayPipeline(reads, destination, sender=sender))
            else:
                assert isinstance(sender, RemoteWriteSender)
                pipelines.append(
                    RemoteWritePipeline(
                        reads, destination, sender=sender, state=state, store=self._store, window_ms=self._window_ms
                    )
                )
        running = _RunningJob(job, reads, pipelines)
        self._running[job.key] = running
        nursery.start_soon(self._run_job, running)
        logger.info("remote write job started", extra={"job": job.key, "destinations": len(pipelines)})

    async def _run_job(self, running: _RunningJob) -> None:
        try:
            with running.scope:
                async with trio.open_nursery() as nursery:
                    for pipeline in running.pipelines:
                        nursery.start_soon(self._run_destination, running, pipeline)
        finally:
            with trio.CancelScope(shield=True):
                for pipeline in running.pipelines:
                    await pipeline.close()

    async def _run_destination(self, running: _RunningJob, pipeline: Pipeline) -> None:
        interval_s = running.job.interval_ms / 1000
        first_start_ms = self._now_ms() - self._safety_delay_ms - running.job.interval_ms
        next_tick = trio.current_time()
        while True:
            end_ms = self._now_ms() - self._safety_delay_ms
            with trio.move_on_after(interval_s * 0.95):
                try:
                    self._cycles += 1
                    await pipeline.cycle(end_ms, first_start_ms=first_start_ms)
                    running.last_error = None
                except CollectionError as exc:
                    self._failures += 1
                    running.last_error = f"collection failed: {exc}"[:1024]
                    logger.warning(
                        "remote write collection failed", extra={"job": running.job.key, "error": str(exc)[:256]}
                    )
            next_tick += interval_s
            now = trio.current_time()
            if next_tick < now:  # a cycle overran: skip the missed ticks, keep the phase
                next_tick += math.ceil((now - next_tick) / interval_s) * interval_s
            await trio.sleep_until(next_tick)

    async def _remove_pushgateway_groups(self, running: _RunningJob) -> None:
        for pipeline in running.pipelines:
            if isinstance(pipeline, PushgatewayPipeline):
                with trio.move_on_after(10):
                    result = await pipeline.delete_group()
                    logger.info(
                        "pushgateway group deleted",
                        extra={"job": running.job.key, "outcome": result.outcome.value},
                    )
