"""Controller outcome mapping and isolation of failures, in virtual time."""

from __future__ import annotations

import itertools

import trio
import trio.testing

from mtproxy.controller.controller import Controller
from mtproxy.controller.reconcile import Request, Result, TerminalError


async def test_failing_reconcile_is_retried_with_growing_backoff_and_never_kills_a_worker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls: list[float] = []

    async def reconcile(request: Request) -> Result:
        calls.append(trio.current_time())
        if len(calls) < 4:
            raise RuntimeError("boom")
        return Result()

    controller = Controller("test", reconcile, workers=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        controller.enqueue("ns", "a")
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert len(calls) == 4
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps == sorted(gaps) and gaps[0] > 0
    stats = controller.statistics()
    assert stats.errors == 3 and stats.reconciles == 4


async def test_requeue_after_comes_back_after_the_delay(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[float] = []

    async def reconcile(request: Request) -> Result:
        calls.append(trio.current_time())
        return Result(requeue_after_s=30.0) if len(calls) == 1 else Result()

    controller = Controller("test", reconcile)
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        start = trio.current_time()
        controller.enqueue("ns", "a")
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    assert len(calls) == 2
    assert calls[1] - start >= 30.0


async def test_terminal_error_is_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    calls = 0

    async def reconcile(request: Request) -> Result:
        nonlocal calls
        calls += 1
        raise TerminalError("invalid object")

    controller = Controller("test", reconcile)
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        controller.enqueue("ns", "a")
        await trio.sleep(100)
        nursery.cancel_scope.cancel()
    assert calls == 1
    assert controller.statistics().terminal_errors == 1


async def test_one_failing_key_does_not_block_others(autojump_clock: trio.testing.MockClock) -> None:
    done: list[str] = []

    async def reconcile(request: Request) -> Result:
        if request.name == "bad":
            raise RuntimeError("always")
        done.append(request.name)
        return Result()

    controller = Controller("test", reconcile, workers=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        controller.enqueue("ns", "bad")
        for index in range(5):
            controller.enqueue("ns", f"good-{index}")
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert done == [f"good-{i}" for i in range(5)]
