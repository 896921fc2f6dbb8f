"""Tests for controller/workqueue.py, one per sentence of its contract."""

from __future__ import annotations

import dataclasses
import inspect
import random
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.lowlevel
import trio.testing

from mtproxy.controller import workqueue
from mtproxy.controller.ratelimit import ItemExponentialRateLimiter
from mtproxy.controller.workqueue import QueueShutDown, WorkQueue, WorkQueueState

_HANG_AFTER_S = 86_400.0


@pytest.fixture
async def fail_on_deadlock(autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    """Fails the test at once, on virtual time, if every task stays blocked: a lost wakeup.

    Request ``autojump_clock`` in the test too: pytest-trio takes the clock from the test's own arguments.
    """
    assert trio.lowlevel.current_clock() is autojump_clock, "the test must request autojump_clock"

    async def watchdog() -> None:
        await trio.sleep(_HANG_AFTER_S)
        raise AssertionError("every task stayed blocked for a virtual day: a wakeup was lost")

    nursery.start_soon(watchdog)


LogLine = tuple[str, str, int]
"""A log line of the stress test: (``add`` | ``start`` | ``end``, key, worker or -1)."""


def _keys_processed_concurrently(log: list[LogLine]) -> set[str]:
    holder: dict[str, int] = {}
    overlapping: set[str] = set()
    for kind, key, worker in log:
        if kind == "start":
            if key in holder:
                overlapping.add(key)
            holder[key] = worker
        elif kind == "end":
            holder.pop(key, None)
    return overlapping


def _keys_not_processed_after_last_add(log: list[LogLine]) -> set[str]:
    last_add = {key: i for i, (kind, key, _) in enumerate(log) if kind == "add"}
    last_start = {key: i for i, (kind, key, _) in enumerate(log) if kind == "start"}
    return {key for key, i in last_add.items() if last_start.get(key, -1) < i}


class _StepCounter(trio.abc.Instrument):
    """Counts how often one task is scheduled: a blocked task that polls gets scheduled a lot."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1


async def _start_task(nursery: trio.Nursery, fn: Callable[[], Awaitable[object]]) -> trio.lowlevel.Task:
    async def wrapper(*, task_status: trio.TaskStatus[trio.lowlevel.Task] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(trio.lowlevel.current_task())
        await fn()

    task: trio.lowlevel.Task = await nursery.start(wrapper)
    return task


def test_all_lists_public_names() -> None:
    defined_here = {
        name
        for name, value in vars(workqueue).items()
        if not name.startswith("_") and inspect.isclass(value) and value.__module__ == workqueue.__name__
    }
    assert sorted(workqueue.__all__) == sorted(defined_here)


async def test_key_is_queued_at_most_once(autojump_clock: trio.testing.MockClock, fail_on_deadlock: None) -> None:
    q = WorkQueue[str]()
    for key in ["a", "b", "a", "a", "b"]:
        q.add(key)
    assert len(q) == 2
    assert [await q.get(), await q.get()] == ["a", "b"]
    assert q.statistics().adds_total == 2


async def test_keys_are_handed_out_in_fifo_order(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[int]()
    for key in range(10):
        q.add(key)
    assert [await q.get() for _ in range(10)] == list(range(10))


async def test_add_while_processing_requeues_after_done(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    q.add("a")
    key = await q.get()
    q.add("a")
    q.add("a")
    assert len(q) == 0
    assert q.statistics().dirty == 1
    q.done(key)
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert (len(q), q.statistics().dirty, q.statistics().processing) == (0, 0, 0)


async def test_done_without_change_does_not_requeue(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    q.add("a")
    q.done(await q.get())
    assert len(q) == 0


async def test_two_workers_never_hold_the_same_key(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    got: list[str] = []

    async def second_worker() -> None:
        got.append(await q.get())

    q.add("a")
    first = await q.get()
    q.add("a")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(second_worker)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        assert q.statistics().getters_waiting == 1
        q.done(first)
    assert got == ["a"]


@pytest.mark.parametrize("seed", [1, 2, 3], ids=lambda seed: f"seed-{seed}")
async def test_random_adds_are_processed_alone_and_after_their_last_add(
    autojump_clock: trio.testing.MockClock, seed: int, fail_on_deadlock: None
) -> None:
    rng = random.Random(seed)
    q = WorkQueue[str]()
    log: list[LogLine] = []
    keys = [f"k{i}" for i in range(12)]

    async def worker(worker_id: int) -> None:
        while True:
            try:
                key = await q.get()
            except QueueShutDown:
                return
            try:
                log.append(("start", key, worker_id))
                await trio.sleep(rng.random() / 100)
                log.append(("end", key, worker_id))
            finally:
                q.done(key)

    async def producer() -> None:
        for _ in range(300):
            key = rng.choice(keys)
            log.append(("add", key, -1))
            q.add(key)
            await trio.sleep(rng.random() / 400)

    async with trio.open_nursery() as workers:
        for worker_id in range(5):
            workers.start_soon(worker, worker_id)
        async with trio.open_nursery() as producers:
            for _ in range(4):
                producers.start_soon(producer)
        await q.shut_down_with_drain()

    assert _keys_processed_concurrently(log) == set()
    assert _keys_not_processed_after_last_add(log) == set()
    starts = sum(1 for kind, _, _ in log if kind == "start")
    assert starts < 1200  # adds collapsed while queued
    assert q.statistics().done_total == starts


async def test_get_is_a_checkpoint(autojump_clock: trio.testing.MockClock, fail_on_deadlock: None) -> None:
    q = WorkQueue[str]()
    q.add("a")
    with trio.testing.assert_checkpoints():
        await q.get()


async def test_cancelled_get_takes_no_key(autojump_clock: trio.testing.MockClock, fail_on_deadlock: None) -> None:
    q = WorkQueue[str]()
    q.add("a")
    with trio.CancelScope() as scope:
        scope.cancel()
        await q.get()
    assert (len(q), q.statistics().processing) == (1, 0)


async def test_blocked_get_waits_without_polling(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    got: list[str] = []

    async def getter() -> None:
        got.append(await q.get())

    async with trio.open_nursery() as nursery:
        counter = _StepCounter(await _start_task(nursery, getter))
        trio.lowlevel.add_instrument(counter)
        try:
            await trio.sleep(3600)
            assert got == []
            q.add("a")
        finally:
            trio.lowlevel.remove_instrument(counter)
    assert got == ["a"]
    assert counter.steps <= 2


async def test_get_nowait_raises_would_block_when_empty(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    with pytest.raises(trio.WouldBlock):
        q.get_nowait()


async def test_done_without_get_raises(autojump_clock: trio.testing.MockClock, fail_on_deadlock: None) -> None:
    q = WorkQueue[str]()
    q.add("a")
    with pytest.raises(RuntimeError, match="not being processed"):
        q.done("a")
    q.done(await q.get())
    with pytest.raises(RuntimeError, match="not being processed"):
        q.done("a")


async def test_add_after_fires_at_its_deadline(autojump_clock: trio.testing.MockClock, fail_on_deadlock: None) -> None:
    q = WorkQueue[str]()
    async with trio.open_nursery() as nursery:
        await nursery.start(q.run)
        start = trio.current_time()
        q.add_after("a", 2.5)
        assert len(q) == 0
        assert await q.get() == "a"
        assert trio.current_time() - start == pytest.approx(2.5)
        q.shut_down()


async def test_add_after_fires_in_deadline_order(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    async with trio.open_nursery() as nursery:
        await nursery.start(q.run)
        start = trio.current_time()
        for key, delay_s in [("late", 3.0), ("early", 1.0), ("mid", 2.0), ("mid-tie", 2.0)]:
            q.add_after(key, delay_s)
        fired = [(await q.get(), trio.current_time() - start) for _ in range(4)]
        assert fired == [("early", 1.0), ("mid", 2.0), ("mid-tie", 2.0), ("late", 3.0)]
        q.shut_down()


async def test_add_after_keeps_the_earlier_deadline(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    async with trio.open_nursery() as nursery:
        await nursery.start(q.run)
        start = trio.current_time()
        q.add_after("a", 5.0)
        q.add_after("a", 10.0)
        q.add_after("b", 10.0)
        q.add_after("b", 4.0)
        assert q.statistics().waiting_after == 2
        fired = [(await q.get(), trio.current_time() - start) for _ in range(2)]
        assert fired == [("b", 4.0), ("a", 5.0)]
        await trio.sleep(20)
        assert (len(q), q.statistics().waiting_after, q.statistics().adds_total) == (0, 0, 2)
        q.shut_down()


async def test_add_after_an_earlier_deadline_wakes_the_timer(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    async with trio.open_nursery() as nursery:
        await nursery.start(q.run)
        start = trio.current_time()
        q.add_after("slow", 100.0)
        await trio.testing.wait_all_tasks_blocked()
        q.add_after("fast", 1.0)
        assert await q.get() == "fast"
        assert trio.current_time() - start == pytest.approx(1.0)
        q.shut_down()


async def test_run_sleeps_until_the_deadline_without_polling(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    async with trio.open_nursery() as nursery:
        counter = _StepCounter(await _start_task(nursery, q.run))
        trio.lowlevel.add_instrument(counter)
        try:
            q.add_after("a", 1000.0)
            assert await q.get() == "a"
            q.shut_down()
        finally:
            trio.lowlevel.remove_instrument(counter)
    assert counter.steps <= 3  # woken by the new deadline, by the deadline, by shutdown


async def test_add_after_with_nonpositive_delay_adds_now(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    q.add_after("a", 0.0)
    q.add_after("b", -1.0)
    assert [q.get_nowait(), q.get_nowait()] == ["a", "b"]


@pytest.mark.parametrize("delay_s", [float("nan"), float("inf")])
async def test_add_after_rejects_a_delay_that_is_not_finite(
    autojump_clock: trio.testing.MockClock, delay_s: float, fail_on_deadlock: None
) -> None:
    with pytest.raises(ValueError, match="delay_s"):
        WorkQueue[str]().add_after("a", delay_s)


async def test_add_after_waits_for_run_to_start(autojump_clock: trio.testing.MockClock, fail_on_deadlock: None) -> None:
    q = WorkQueue[str]()
    q.add_after("a", 1.0)
    await trio.sleep(5)
    assert len(q) == 0
    async with trio.open_nursery() as nursery:
        await nursery.start(q.run)
        assert await q.get() == "a"
        q.shut_down()


async def test_add_rate_limited_backs_off_until_forget(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str](rate_limiter=ItemExponentialRateLimiter(base_delay_s=1.0, max_delay_s=4.0))
    delays: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(q.run)
        for _ in range(5):
            start = trio.current_time()
            q.add_rate_limited("a")
            q.done(await q.get())
            delays.append(trio.current_time() - start)
        assert delays == [1.0, 2.0, 4.0, 4.0, 4.0]
        assert q.num_requeues("a") == 5
        q.forget("a")
        assert q.num_requeues("a") == 0
        assert q.statistics().retries_total == 5
        q.shut_down()


async def test_get_after_shutdown_raises(autojump_clock: trio.testing.MockClock, fail_on_deadlock: None) -> None:
    q = WorkQueue[str]()
    q.add("a")
    q.shut_down()
    with pytest.raises(QueueShutDown):
        await q.get()
    with pytest.raises(QueueShutDown):
        q.get_nowait()


async def test_shutdown_drops_queued_dirty_and_delayed_keys(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    for key in ["a", "b"]:
        q.add(key)
    q.add_after("later", 10.0)
    key = await q.get()
    q.add(key)
    q.shut_down()
    stats = q.statistics()
    assert (stats.state, stats.depth, stats.dirty, stats.waiting_after) == (WorkQueueState.SHUT_DOWN, 0, 0, 0)
    q.done(key)
    assert len(q) == 0


async def test_blocked_get_raises_on_shutdown(autojump_clock: trio.testing.MockClock, fail_on_deadlock: None) -> None:
    q = WorkQueue[str]()
    async with trio.open_nursery() as nursery:

        async def getter() -> None:
            with pytest.raises(QueueShutDown):
                await q.get()

        nursery.start_soon(getter)
        await trio.testing.wait_all_tasks_blocked()
        q.shut_down()


async def test_adds_after_shutdown_are_ignored(autojump_clock: trio.testing.MockClock, fail_on_deadlock: None) -> None:
    q = WorkQueue[str]()
    q.shut_down()
    q.add("a")
    q.add_after("b", 1.0)
    q.add_rate_limited("c")
    stats = q.statistics()
    assert (len(q), stats.waiting_after, stats.adds_total, stats.retries_total) == (0, 0, 0, 0)
    assert q.num_requeues("c") == 0


async def test_shutdown_with_drain_waits_for_processing(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    q.add("a")
    key = await q.get()
    drained = trio.Event()

    async def drain() -> None:
        await q.shut_down_with_drain()
        drained.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain)
        await trio.testing.wait_all_tasks_blocked()
        assert not drained.is_set()
        assert q.statistics().state is WorkQueueState.DRAINING
        q.done(key)
    assert drained.is_set()
    assert q.statistics().state is WorkQueueState.SHUT_DOWN


async def test_shutdown_with_drain_hands_out_queued_and_dirty_keys(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    for key in ["a", "b"]:
        q.add(key)
    first = await q.get()
    q.add(first)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(q.shut_down_with_drain)
        await trio.testing.wait_all_tasks_blocked()
        q.add("ignored")
        assert await q.get() == "b"
        q.done("b")
        q.done(first)
        assert await q.get() == "a"
        q.done("a")
        with pytest.raises(QueueShutDown):
            await q.get()


async def test_shutdown_with_drain_waits_for_queued_keys(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    q.add("a")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(q.shut_down_with_drain)
        await trio.testing.wait_all_tasks_blocked()
        assert q.statistics().state is WorkQueueState.DRAINING
        q.done(await q.get())
    assert q.statistics().state is WorkQueueState.SHUT_DOWN


async def test_shutdown_with_drain_releases_idle_getters_once_the_last_key_is_handed_out(
    autojump_clock: trio.testing.MockClock,
    fail_on_deadlock: None,
) -> None:
    q = WorkQueue[str]()
    q.add("a")
    key = await q.get()
    q.add("a")
    released: list[str] = []
    finish = trio.Event()

    async def getter(name: str) -> None:
        try:
            got = await q.get()
        except QueueShutDown:
            released.append(name)
            return
        await finish.wait()
        q.done(got)

    async with trio.open_nursery() as nursery:
        for name in ["first", "second"]:
            nursery.start_soon(getter, name)
            await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(q.shut_down_with_drain)
        await trio.testing.wait_all_tasks_blocked()
        assert released == []  # "a" is dirty: done() will queue it once more
        q.done(key)
        await trio.testing.wait_all_tasks_blocked()
        # One getter holds the last "a"; the other must not wait for that "a" to be done.
        assert len(released) == 1
        finish.set()


async def test_shutdown_with_drain_releases_idle_getters(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    q.add("a")
    key = await q.get()
    async with trio.open_nursery() as nursery:

        async def idle_getter() -> None:
            with pytest.raises(QueueShutDown):
                await q.get()

        nursery.start_soon(idle_getter)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(q.shut_down_with_drain)
        await trio.testing.wait_all_tasks_blocked()
        assert q.statistics().getters_waiting == 0
        q.done(key)


async def test_shutdown_with_drain_drops_delayed_keys(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    async with trio.open_nursery() as nursery:
        await nursery.start(q.run)
        q.add_after("a", 1.0)
        await q.shut_down_with_drain()
    assert q.statistics().waiting_after == 0
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_shutdown_during_drain_drops_the_rest(
    autojump_clock: trio.testing.MockClock, fail_on_deadlock: None
) -> None:
    q = WorkQueue[str]()
    for key in ["a", "b"]:
        q.add(key)
    key = await q.get()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(q.shut_down_with_drain)
        await trio.testing.wait_all_tasks_blocked()
        q.shut_down()
        assert len(q) == 0
        q.done(key)


async def test_run_returns_on_shutdown(autojump_clock: trio.testing.MockClock, fail_on_deadlock: None) -> None:
    q = WorkQueue[str]()
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            await nursery.start(q.run)
            q.add_after("a", 100.0)
            q.shut_down()


async def test_run_twice_raises(autojump_clock: trio.testing.MockClock, fail_on_deadlock: None) -> None:
    q = WorkQueue[str]()
    async with trio.open_nursery() as nursery:
        await nursery.start(q.run)
        with pytest.raises(RuntimeError, match="already running"):
            await q.run()
        q.shut_down()


async def test_statistics_is_a_snapshot(autojump_clock: trio.testing.MockClock, fail_on_deadlock: None) -> None:
    q = WorkQueue[str](rate_limiter=ItemExponentialRateLimiter(base_delay_s=1.0, max_delay_s=1.0))
    for key in ["a", "b", "c"]:
        q.add(key)
    key = await q.get()
    q.add(key)
    q.add_after("d", 10.0)
    q.add_rate_limited("e")
    await trio.sleep(5)
    stats = q.statistics()
    assert stats == workqueue.WorkQueueStatistics(
        state=WorkQueueState.OPEN,
        depth=2,
        processing=1,
        dirty=1,
        waiting_after=2,
        getters_waiting=0,
        adds_total=4,
        retries_total=1,
        done_total=0,
        longest_processing_s=5.0,
    )
    q.done(key)
    assert stats.depth == 2
    assert q.statistics().depth == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.depth = 0  # type: ignore[misc]
