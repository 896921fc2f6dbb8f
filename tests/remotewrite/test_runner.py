"""The job runner as a whole: terms of leadership, stop during start-up, failures kept to one job.

The source is a fake Collector holding a steady series per job, the receivers
``httpx.MockTransport``s that decode every request, and time is trio's autojump clock
(the runner's wall clock follows it), so every cycle runs instantly and exactly.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
import snappy
import trio
import trio.testing

from mtproxy.api import Rule, SecretKeyRef, rules_for
from mtproxy.remotewrite import prompb
from mtproxy.remotewrite.collect import Collector
from mtproxy.remotewrite.encode import is_stale_marker
from mtproxy.remotewrite.errors import SecretUnavailable
from mtproxy.remotewrite.job import Destination, DestinationKind, RemoteWriteJob
from mtproxy.remotewrite.pushgateway import PushgatewaySender
from mtproxy.remotewrite.runner import FAILURE_INTERNAL, FAILURE_SECRET, FAILURE_TIMEOUT, JobRunner
from mtproxy.remotewrite.samples import InstantSample
from mtproxy.remotewrite.scan import RawSeries
from mtproxy.remotewrite.senders import RemoteWriteSender
from mtproxy.remotewrite.state import JobState, MemoryStateStore

INTERVAL_MS = 10_000
EPOCH_MS = 1_700_000_000_000


@pytest.fixture
def jump_clock() -> trio.testing.MockClock:
    """Virtual time that jumps only after 20 ms of real idleness: the pipeline writes its state
    snapshot in a worker thread, and a clock jumping at once would expire the cycle's deadline
    while that thread runs."""
    return trio.testing.MockClock(autojump_threshold=0.02)


def _now_ms() -> int:
    return EPOCH_MS + int(trio.current_time() * 1000)


class _Source(Collector):
    """One series per namespace, a sample every second; a namespace in ``broken`` raises."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        super().__init__(http, source_urls=list)
        self.broken: dict[str, BaseException] = {}

    def _namespace(self, rule: Rule) -> str:
        return next(m.value for m in rule.matchers if m.name == "namespace")

    async def raw_samples(self, rule: Rule, *, start_ms: int, end_ms: int) -> list[RawSeries]:
        await trio.sleep(0)
        namespace = self._namespace(rule)
        if namespace in self.broken:
            raise self.broken[namespace]
        first = (start_ms // 1000 + 1) * 1000
        samples = tuple((t, float(t // 1000)) for t in range(first, end_ms + 1, 1000))
        labels = json.dumps({"__name__": "up", "namespace": namespace}, separators=(",", ":"))[1:-1].encode()
        return [(labels, samples)] if samples else []

    async def vanished_series(self, rule: Rule, *, at_ms: int, lookback_ms: int) -> tuple[InstantSample, ...]:
        await trio.sleep(0)
        return ()

    async def live_series(self, rule: Rule, *, at_ms: int) -> tuple[InstantSample, ...]:
        await trio.sleep(0)
        namespace = self._namespace(rule)
        return tuple(
            InstantSample(labels={"__name__": "up", "namespace": namespace, "pod": str(i)}, timestamp_ms=at_ms,
                          value=1.0)
            for i in range(3)
        )


@dataclass
class _Receivers:
    """Every sample each destination URL received, per series."""

    samples: dict[str, dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        decoded = prompb.WriteRequest.FromString(snappy.decompress(request.content))
        for ts in decoded.timeseries:
            key = tuple((label.name, label.value) for label in ts.labels)
            self.samples[str(request.url)][key].extend((s.timestamp, s.value) for s in ts.samples)
        return httpx.Response(204)

    def real_samples(self, url: str) -> list[int]:
        """Timestamps of the non-stale samples of every series sent to ``url``."""
        return sorted(t for series in self.samples[url].values() for t, v in series if not is_stale_marker(v))


class _Secrets:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def read(self, namespace: str, ref: SecretKeyRef) -> str:
        await trio.sleep(0)
        if ref.name not in self.values:
            raise SecretUnavailable(namespace, ref.name, ref.key, reason="secret not found")
        return self.values[ref.name]


def _job(namespace: str, *, token: SecretKeyRef | None = None) -> RemoteWriteJob:
    return RemoteWriteJob(
        namespace=namespace,
        name="forward",
        rules=rules_for(["up"], label_selectors={}, isolation_namespace=namespace),
        interval_ms=INTERVAL_MS,
        destinations=(
            Destination(
                kind=DestinationKind.REMOTE_WRITE,
                url=f"http://{namespace}.test/api/v1/write",
                name=f"{namespace}-prometheus",
                bearer_token=token,
            ),
        ),
    )


@dataclass
class _World:
    source: _Source
    receivers: _Receivers
    secrets: _Secrets
    store: MemoryStateStore
    runner: JobRunner
    make_runner: Callable[[], JobRunner]


@pytest.fixture
async def world() -> AsyncIterator[_World]:
    receivers = _Receivers()
    secrets = _Secrets()
    store = MemoryStateStore()
    async with httpx.AsyncClient(transport=httpx.MockTransport(receivers)) as http:
        source = _Source(http)

        def senders(job: RemoteWriteJob, index: int) -> RemoteWriteSender | PushgatewaySender:
            return RemoteWriteSender(http, job.destinations[index], namespace=job.namespace, secrets=secrets)

        def make_runner() -> JobRunner:
            return JobRunner(
                collector=source, senders=senders, state_store=store, safety_delay_ms=0, wall_clock_ms=_now_ms
            )

        yield _World(source, receivers, secrets, store, make_runner(), make_runner)


def _is_gapless(timestamps: list[int]) -> bool:
    return timestamps == list(range(timestamps[0], timestamps[-1] + 1, 1000))


async def test_leadership_lost_and_regained_three_times_forwards_every_term_without_gap_or_duplicate(
    world: _World, jump_clock: trio.testing.MockClock
) -> None:
    runner = world.runner
    runner.set_jobs({"team-a/forward": _job("team-a")})
    url = "http://team-a.test/api/v1/write"
    seen_per_term = []
    for _term in range(4):
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            await trio.sleep(3 * INTERVAL_MS / 1000)
            nursery.cancel_scope.cancel(reason="lost leadership")
        assert runner.job_keys() == ()  # nothing of the term outlives it
        seen_per_term.append(len(world.receivers.real_samples(url)))
        await trio.sleep(INTERVAL_MS / 1000)  # another replica leads meanwhile (here: nobody)
    assert runner.statistics().runs == 4
    assert all(later > earlier for earlier, later in itertools.pairwise(seen_per_term))
    timestamps = world.receivers.real_samples(url)
    assert len(timestamps) == len(set(timestamps)), "a sample was sent twice"
    assert _is_gapless(timestamps), "the gaps between terms were not backfilled"


async def test_a_second_run_while_running_is_refused(world: _World, jump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(world.runner.run)
        with pytest.raises(RuntimeError, match="already running"):
            await world.runner.run()
        nursery.cancel_scope.cancel()


class _BlockingStore(MemoryStateStore):
    """A store whose restore never answers (an API server that hangs)."""

    def __init__(self) -> None:
        super().__init__()
        self.restores = 0

    async def restore(self, job_key: str) -> JobState | None:
        self.restores += 1
        await trio.sleep_forever()
        return None  # pragma: no cover


async def test_stop_during_start_up_returns_at_once_and_a_later_run_starts_afresh(
    world: _World, jump_clock: trio.testing.MockClock
) -> None:
    store = _BlockingStore()
    runner = JobRunner(
        collector=world.source,
        senders=lambda job, index: RemoteWriteSender(
            httpx.AsyncClient(transport=httpx.MockTransport(world.receivers)), job.destinations[index],
            namespace=job.namespace, secrets=world.secrets,
        ),
        state_store=store,
        safety_delay_ms=0,
        wall_clock_ms=_now_ms,
    )
    runner.set_jobs({"team-a/forward": _job("team-a"), "team-b/forward": _job("team-b")})
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            await trio.testing.wait_all_tasks_blocked()
            assert store.restores == 2
            nursery.cancel_scope.cancel(reason="shutdown")
    assert runner.job_keys() == ()
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        await trio.testing.wait_all_tasks_blocked()
        assert store.restores == 4
        assert set(runner.job_keys()) == {"team-a/forward", "team-b/forward"}
        nursery.cancel_scope.cancel()


async def test_one_job_raising_anything_is_reported_and_retried_while_the_others_keep_forwarding(
    world: _World, jump_clock: trio.testing.MockClock
) -> None:
    world.source.broken["team-b"] = ZeroDivisionError("a bug in one job")
    world.runner.set_jobs({"team-a/forward": _job("team-a"), "team-b/forward": _job("team-b")})
    async with trio.open_nursery() as nursery:
        await nursery.start(world.runner.run)
        await trio.sleep(3 * INTERVAL_MS / 1000)
        broken = world.runner.job_status("team-b/forward")
        healthy = world.runner.job_status("team-a/forward")
        assert broken is not None and healthy is not None
        assert broken.failure_reason == FAILURE_INTERNAL and broken.forwarding is False
        assert broken.last_error is not None and "ZeroDivisionError" in broken.last_error
        assert healthy.failure_reason is None and healthy.forwarding is True
        assert len(world.receivers.real_samples("http://team-a.test/api/v1/write")) >= 20
        del world.source.broken["team-b"]
        await trio.sleep(2 * INTERVAL_MS / 1000)
        recovered = world.runner.job_status("team-b/forward")
        assert recovered is not None and recovered.failure_reason is None and recovered.forwarding is True
        # the job resumes where it stopped: the failed cycles are backfilled
        assert _is_gapless(world.receivers.real_samples("http://team-b.test/api/v1/write"))
        nursery.cancel_scope.cancel()


async def test_a_missing_secret_is_reported_as_secret_unavailable_and_recovers_when_created(
    world: _World, jump_clock: trio.testing.MockClock
) -> None:
    token = SecretKeyRef(name="rw-token", key="token")
    world.runner.set_jobs({"team-a/forward": _job("team-a", token=token)})
    async with trio.open_nursery() as nursery:
        await nursery.start(world.runner.run)
        await trio.sleep(2 * INTERVAL_MS / 1000)
        status = world.runner.job_status("team-a/forward")
        assert status is not None and status.failure_reason == FAILURE_SECRET
        assert status.last_error is not None and "rw-token" in status.last_error
        assert world.receivers.real_samples("http://team-a.test/api/v1/write") == []
        world.secrets.values["rw-token"] = "s3cret"
        await trio.sleep(2 * INTERVAL_MS / 1000)
        status = world.runner.job_status("team-a/forward")
        assert status is not None and status.failure_reason is None and status.forwarding is True
        assert _is_gapless(world.receivers.real_samples("http://team-a.test/api/v1/write"))
        nursery.cancel_scope.cancel()


async def test_a_removed_job_marks_its_series_stale_and_forgets_its_state(
    world: _World, jump_clock: trio.testing.MockClock
) -> None:
    world.runner.set_jobs({"team-a/forward": _job("team-a")})
    url = "http://team-a.test/api/v1/write"
    async with trio.open_nursery() as nursery:
        await nursery.start(world.runner.run)
        await trio.sleep(2 * INTERVAL_MS / 1000)
        assert world.store.load("team-a/forward") is not None
        world.runner.set_jobs({})
        await trio.sleep(1)
        series = world.receivers.samples[url][(("__name__", "up"), ("namespace", "team-a"))]
        assert is_stale_marker(series[-1][1])
        assert world.store.load("team-a/forward") is None
        nursery.cancel_scope.cancel()


async def test_listeners_hear_of_every_cycle(world: _World, jump_clock: trio.testing.MockClock) -> None:
    heard: list[str] = []
    world.runner.add_listener(heard.append)
    world.runner.set_jobs({"team-a/forward": _job("team-a")})
    async with trio.open_nursery() as nursery:
        await nursery.start(world.runner.run)
        await trio.sleep(3 * INTERVAL_MS / 1000 - 1)
        nursery.cancel_scope.cancel()
    assert heard.count("team-a/forward") >= 4  # started, three cycles, stopped


async def test_jobs_started_together_run_their_first_cycle_at_once_then_spread_over_the_interval(
    world: _World, jump_clock: trio.testing.MockClock
) -> None:
    interval_s = INTERVAL_MS / 1000
    heard: dict[str, list[float]] = defaultdict(list)
    world.runner.add_listener(lambda key: heard[key].append(trio.current_time()))
    keys = [f"team-{i}/forward" for i in range(20)]
    world.runner.set_jobs({key: _job(key.split("/")[0]) for key in keys})
    async with trio.open_nursery() as nursery:
        await nursery.start(world.runner.run)
        await trio.sleep(3 * interval_s)
        nursery.cancel_scope.cancel()
    # each job was heard of when it started, then at the end of each cycle
    first = [heard[key][1] for key in keys]
    second = [heard[key][2] for key in keys]
    third = [heard[key][3] for key in keys]
    assert max(first) < 1.0
    assert all(0.5 * interval_s <= t < 1.5 * interval_s + 1.0 for t in second)
    assert max(second) - min(second) > interval_s / 2  # not in step: spread over the interval
    assert all(abs(c - b - interval_s) < 1.0 for b, c in zip(second, third, strict=True))  # then every interval


async def test_a_pushgateway_job_reports_the_series_it_pushed(jump_clock: trio.testing.MockClock) -> None:
    pushed: list[str] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        pushed.append(request.content.decode())
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(gateway)) as http:
        source = _Source(http)
        job = RemoteWriteJob(
            namespace="team-a",
            name="push",
            rules=rules_for(["up"], label_selectors={}, isolation_namespace="team-a"),
            interval_ms=INTERVAL_MS,
            destinations=(
                Destination(kind=DestinationKind.PUSHGATEWAY, url="http://gw.test", name="gw", pushgateway_job="j"),
            ),
        )
        runner = JobRunner(
            collector=source,
            senders=lambda j, i: PushgatewaySender(http, j.destinations[i], namespace=j.namespace),
            state_store=MemoryStateStore(),
            safety_delay_ms=0,
            wall_clock_ms=_now_ms,
        )
        runner.set_jobs({job.key: job})
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            await trio.sleep(INTERVAL_MS / 1000)
            status = runner.job_status(job.key)
            nursery.cancel_scope.cancel()
    assert pushed and status is not None
    assert status.series_collected == 3 and status.forwarding is True


class _SlowSource(_Source):
    """A source whose reads of one namespace take longer than the interval."""

    async def raw_samples(self, rule: Rule, *, start_ms: int, end_ms: int) -> list[RawSeries]:
        if self._namespace(rule) in self.broken:
            await trio.sleep(2 * INTERVAL_MS / 1000)
        return await super().raw_samples(rule, start_ms=start_ms, end_ms=end_ms)


async def test_a_cycle_cut_off_by_its_deadline_is_reported_and_the_next_resumes(
    jump_clock: trio.testing.MockClock,
) -> None:
    receivers = _Receivers()
    async with httpx.AsyncClient(transport=httpx.MockTransport(receivers)) as http:
        source = _SlowSource(http)
        source.broken["team-a"] = RuntimeError("unused: this source is slow, not broken")
        runner = JobRunner(
            collector=source,
            senders=lambda j, i: RemoteWriteSender(http, j.destinations[i], namespace=j.namespace, secrets=None),
            state_store=MemoryStateStore(),
            safety_delay_ms=0,
            wall_clock_ms=_now_ms,
        )
        runner.set_jobs({"team-a/forward": _job("team-a")})
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            await trio.sleep(2 * INTERVAL_MS / 1000)
            status = runner.job_status("team-a/forward")
            assert status is not None and status.failure_reason == FAILURE_TIMEOUT and status.forwarding is False
            assert status.last_error is not None and "did not finish within its interval" in status.last_error
            del source.broken["team-a"]
            await trio.sleep(2 * INTERVAL_MS / 1000)
            status = runner.job_status("team-a/forward")
            assert status is not None and status.failure_reason is None and status.forwarding is True
            nursery.cancel_scope.cancel()
    assert _is_gapless(receivers.real_samples("http://team-a.test/api/v1/write"))
