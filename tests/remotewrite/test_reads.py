"""The shared read memo: one task's cancellation never unwinds another task."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mtproxy.remotewrite.reads import _Memo


async def test_a_waiter_computes_again_when_the_computing_task_is_cancelled() -> None:
    memo: _Memo[str] = _Memo(1)
    calls: list[str] = []
    got: list[str] = []

    async def slow(who: str) -> str:
        calls.append(who)
        await trio.sleep(10 if who == "first" else 0)
        return f"value by {who}"

    async with trio.open_nursery() as nursery:
        first_scope = trio.CancelScope()

        async def first() -> None:
            with first_scope:
                await memo.get((0, 1), lambda: slow("first"))

        async def second() -> None:
            got.append(await memo.get((0, 1), lambda: slow("second")))

        nursery.start_soon(first)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(second)
        await trio.testing.wait_all_tasks_blocked()
        first_scope.cancel()
    assert first_scope.cancelled_caught
    assert got == ["value by second"]
    assert calls == ["first", "second"]


async def test_a_read_error_is_shared_with_the_waiters() -> None:
    memo: _Memo[str] = _Memo(1)
    errors: list[BaseException] = []

    async def failing() -> str:
        await trio.sleep(1)
        raise RuntimeError("source down")

    async def caller() -> None:
        try:
            await memo.get((0, 1), failing)
        except RuntimeError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(caller)
    assert [str(e) for e in errors] == ["source down", "source down"]


@pytest.mark.parametrize("size", [1, 2])
async def test_values_are_computed_once_while_kept(size: int) -> None:
    memo: _Memo[int] = _Memo(size)
    count = 0

    async def compute() -> int:
        nonlocal count
        count += 1
        await trio.sleep(0)
        return 7

    assert await memo.get((1, 2), compute) == 7
    assert await memo.get((1, 2), compute) == 7
    assert count == 1
