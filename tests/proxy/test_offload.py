"""Offload: pure functions in worker processes, the event loop free meanwhile."""

from __future__ import annotations

import json
import math
import os
import time

import pytest
import trio

from mtproxy.proxy.errors import BadRequest, ProxyError
from mtproxy.proxy.limits import QueryLimits
from mtproxy.proxy.merge import merge_json_answers
from mtproxy.proxy.offload import Offload

pytestmark = pytest.mark.slow  # real processes, real time

BIG_ANSWER = json.dumps(
    {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"pod": f"pod-{i}", "namespace": "team-a"}, "value": [i, str(i)]} for i in range(100_000)
            ],
        },
    }
).encode()


@pytest.fixture
def offload() -> Offload:
    pool = Offload(workers=1)
    yield pool  # type: ignore[misc]
    pool.close()


async def test_a_result_comes_back_from_a_worker(offload: Offload) -> None:
    assert await offload.run(math.factorial, 20) == math.factorial(20)
    assert offload.statistics().calls == 1


async def test_a_proxy_error_in_a_worker_is_raised_again_as_itself(offload: Offload) -> None:
    with pytest.raises(BadRequest, match="more than the 1 allowed") as raised:
        await offload.run(QueryLimits(max_query_bytes=1).check_size, "query", 5)
    assert raised.value.status == 400


async def test_a_worker_that_dies_fails_only_its_call(offload: Offload) -> None:
    with pytest.raises(ProxyError, match="worker process failed") as raised:
        await offload.run(os._exit, 3)
    assert raised.value.status == 500
    assert await offload.run(math.factorial, 5) == 120
    assert offload.statistics().worker_failures == 1


class _LongestStep(trio.abc.Instrument):
    """The most CPU time one task step took on the event loop's thread (wall time is noisy here)."""

    def __init__(self) -> None:
        self.longest_s = 0.0
        self._started = time.thread_time()

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = time.thread_time()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        self.longest_s = max(self.longest_s, time.thread_time() - self._started)


async def test_the_event_loop_runs_while_a_worker_holds_its_gil(offload: Offload) -> None:
    await offload.run(math.factorial, 1)  # the worker is started
    gaps: list[float] = []
    done = trio.Event()
    steps = _LongestStep()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await trio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick)
        trio.lowlevel.add_instrument(steps)
        started = time.perf_counter()
        for _ in range(2):
            status, _ = await offload.run(merge_json_answers, [("a", 200, BIG_ANSWER), ("b", 200, BIG_ANSWER)])
            assert status == 200
        busy_s = time.perf_counter() - started
        trio.lowlevel.remove_instrument(steps)
        done.set()
    print(
        f"\n2 merges of 2 x {len(BIG_ANSWER) / 1e6:.1f} MB in a worker: {busy_s * 1000:.0f} ms; longest event-loop "
        f"gap {max(gaps) * 1000:.1f} ms, longest step {steps.longest_s * 1000:.1f} ms CPU"
    )
    assert steps.longest_s < 0.05  # inline, one merge holds the loop for about a second
    assert max(gaps) < 1.0  # wall clock: only what a busy shared machine adds


async def test_a_closed_offload_answers_503(offload: Offload) -> None:
    offload.close()
    with pytest.raises(ProxyError, match="stopping") as raised:
        await offload.run(math.factorial, 3)
    assert raised.value.status == 503
