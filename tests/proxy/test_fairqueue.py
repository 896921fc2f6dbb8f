"""FairQueue: each guarantee of the module docstring, in virtual time."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing

from mtproxy.proxy.fairqueue import FairQueue, QueueTimeout

LONG_S = 1_000.0


async def _hold(queue: FairQueue, tenant: str, order: list[str], release: trio.Event, label: str = "") -> None:
    async with queue.slot(tenant, timeout_s=LONG_S):
        order.append(label or tenant)
        await release.wait()


def _starter(nursery: trio.Nursery, queue: FairQueue, order: list[str]) -> Callable[[str, str], trio.Event]:
    def start(tenant: str, label: str = "") -> trio.Event:
        release = trio.Event()
        nursery.start_soon(_hold, queue, tenant, order, release, label)
        return release

    return start


async def test_no_more_than_the_total_and_the_tenant_share_hold_at_once(autojump_clock: trio.abc.Clock) -> None:
    queue = FairQueue(total_slots=3, tenant_slots=2)
    order: list[str] = []
    async with trio.open_nursery() as nursery:
        start = _starter(nursery, queue, order)
        releases = []
        for tenant in ("a", "a", "a", "b", "b", "c"):  # one at a time: trio shuffles a batch's order
            releases.append(start(tenant))
            await trio.testing.wait_all_tasks_blocked()
        stats = queue.statistics()
        assert (stats.in_flight, stats.waiting) == (3, 3)
        assert stats.tenants["a"].in_flight == 2 and stats.tenants["a"].waiting == 1
        for release in releases:
            release.set()
    assert queue.statistics().in_flight == 0


async def test_a_tenant_under_its_share_is_admitted_while_another_tenant_waits(
    autojump_clock: trio.abc.Clock,
) -> None:
    queue = FairQueue(total_slots=4, tenant_slots=2)
    order: list[str] = []
    async with trio.open_nursery() as nursery:
        start = _starter(nursery, queue, order)
        releases = [start("heavy") for _ in range(8)]
        await trio.testing.wait_all_tasks_blocked()
        assert queue.statistics().tenants["heavy"].waiting == 6
        queue.acquire_nowait("light")  # a free slot, and light is under its share
        queue.release("light")
        for release in releases:
            release.set()


async def test_a_tenant_at_its_share_waits_even_when_slots_are_free(autojump_clock: trio.abc.Clock) -> None:
    queue = FairQueue(total_slots=10, tenant_slots=1)
    queue.acquire_nowait("a")
    with pytest.raises(trio.WouldBlock):
        queue.acquire_nowait("a")
    with pytest.raises(QueueTimeout) as raised:
        await queue.acquire("a", timeout_s=2.0)
    assert raised.value.over_share is True
    assert queue.statistics().in_flight == 1


async def test_one_tenants_waiters_are_admitted_in_arrival_order(autojump_clock: trio.abc.Clock) -> None:
    queue = FairQueue(total_slots=1, tenant_slots=1)
    order: list[str] = []
    async with trio.open_nursery() as nursery:
        start = _starter(nursery, queue, order)
        releases = []
        for index in range(4):
            releases.append(start("a", f"a{index}"))
            await trio.testing.wait_all_tasks_blocked()
        for release in releases:
            release.set()
            await trio.testing.wait_all_tasks_blocked()
    assert order == ["a0", "a1", "a2", "a3"]


async def test_freed_slots_go_to_waiting_tenants_in_turn(autojump_clock: trio.abc.Clock) -> None:
    queue = FairQueue(total_slots=1, tenant_slots=1)
    order: list[str] = []
    async with trio.open_nursery() as nursery:
        start = _starter(nursery, queue, order)
        releases = {"a0": start("a", "a0")}
        await trio.testing.wait_all_tasks_blocked()
        for label in ("a1", "a2", "a3", "b1", "b2", "b3", "c1"):
            releases[label] = start(label[0], label)
            await trio.testing.wait_all_tasks_blocked()
        while len(order) < len(releases):
            releases[order[-1]].set()
            await trio.testing.wait_all_tasks_blocked()
        releases[order[-1]].set()
    # a was just served, so b and c (never served) go first; then turns, whatever the queue lengths
    assert order == ["a0", "b1", "c1", "a1", "b2", "a2", "b3", "a3"]


async def test_a_tenant_back_from_idle_goes_before_one_that_was_just_served(autojump_clock: trio.abc.Clock) -> None:
    queue = FairQueue(total_slots=1, tenant_slots=1)
    queue.acquire_nowait("a")
    queue.release("a")  # a is idle again and forgets its turn
    queue.acquire_nowait("b")
    order: list[str] = []
    async with trio.open_nursery() as nursery:
        start = _starter(nursery, queue, order)
        releases = [start("b", "b1"), start("a", "a1")]
        await trio.testing.wait_all_tasks_blocked()
        queue.release("b")
        await trio.testing.wait_all_tasks_blocked()
        for release in releases:
            release.set()
            await trio.testing.wait_all_tasks_blocked()
    assert order[0] == "a1"


async def test_a_wait_ends_after_its_timeout_and_counts_a_rejection(autojump_clock: trio.abc.Clock) -> None:
    queue = FairQueue(total_slots=2, tenant_slots=1)
    queue.acquire_nowait("a")
    queue.acquire_nowait("b")
    started = trio.current_time()
    with pytest.raises(QueueTimeout) as raised:
        await queue.acquire("c", timeout_s=5.0)
    assert trio.current_time() - started == pytest.approx(5.0)
    assert raised.value.over_share is False  # c held nothing: the service was full
    stats = queue.statistics()
    assert stats.rejected == 1 and stats.tenants["c"].rejected == 1
    assert stats.waiting == 0 and stats.tenants["c"].in_flight == 0


async def test_a_cancelled_wait_leaves_no_waiter(autojump_clock: trio.abc.Clock) -> None:
    queue = FairQueue(total_slots=1, tenant_slots=1)
    queue.acquire_nowait("a")
    with trio.move_on_after(1.0):
        await queue.acquire("b", timeout_s=LONG_S)
    stats = queue.statistics()
    assert stats.waiting == 0 and stats.rejected == 0
    queue.release("a")
    queue.acquire_nowait("b")  # nothing left in front of b


async def test_a_slot_granted_to_a_waiter_cancelled_in_the_same_instant_is_passed_on(
    autojump_clock: trio.abc.Clock,
) -> None:
    queue = FairQueue(total_slots=1, tenant_slots=1)
    queue.acquire_nowait("holder")
    order: list[str] = []
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def first() -> None:
            with scope:
                async with queue.slot("a", timeout_s=LONG_S):
                    order.append("a")
                    await trio.sleep_forever()

        nursery.start_soon(first)
        await trio.testing.wait_all_tasks_blocked()
        release_b = _starter(nursery, queue, order)("b")
        await trio.testing.wait_all_tasks_blocked()
        queue.release("holder")  # grants a's waiter ...
        scope.cancel()  # ... which is cancelled before it runs
        await trio.testing.wait_all_tasks_blocked()
        assert order[-1] == "b"
        release_b.set()
    assert queue.statistics().in_flight == 0


def test_statistics_are_a_frozen_snapshot() -> None:
    queue = FairQueue(total_slots=4, tenant_slots=2)
    queue.acquire_nowait("a")
    stats = queue.statistics()
    queue.release("a")
    assert stats.in_flight == 1 and stats.tenants["a"].in_flight == 1
    assert queue.statistics().tenants == {}
    with pytest.raises(AttributeError):
        stats.in_flight = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("total", "share", "bad"),
    [pytest.param(0, 1, "total_slots", id="no-total"), pytest.param(4, 0, "tenant_slots", id="no-share")],
)
def test_constructor_names_the_bad_parameter(total: int, share: int, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        FairQueue(total_slots=total, tenant_slots=share)


def test_releasing_a_slot_not_held_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="holds no slot"):
        FairQueue(total_slots=1, tenant_slots=1).release("a")
