"""Manager: start in order, stop in reverse, drain bounded by the grace period."""

from __future__ import annotations

import trio
import trio.testing

from mtproxy.controller.manager import Manager


def _runnable(name: str, log: list[str], *, stop_takes_s: float = 0.0):  # type: ignore[no-untyped-def]
    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        log.append(f"start {name}")
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(stop_takes_s)
            log.append(f"stop {name}")

    return run


async def test_starts_in_order_and_stops_in_reverse(autojump_clock: trio.testing.MockClock) -> None:
    log: list[str] = []
    manager = Manager(handle_signals=False)
    manager.add_server(_runnable("server", log))
    manager.add_runnable(_runnable("proxy", log))
    manager.add_runnable(_runnable("jobs", log), leader_only=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        assert manager.statistics().phase == "running"
        manager.stop()
    assert log == ["start server", "start proxy", "start jobs", "stop jobs", "stop proxy", "stop server"]
    assert manager.statistics().phase == "stopped"


async def test_drain_is_bounded_by_the_grace_period(autojump_clock: trio.testing.MockClock) -> None:
    log: list[str] = []
    manager = Manager(handle_signals=False, grace_period_s=5.0)
    manager.add_runnable(_runnable("slow", log, stop_takes_s=1000.0))
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        started = trio.current_time()
        manager.stop()
    # the shielded stop takes 1000 s; the manager gives up waiting after 5 s of grace
    assert trio.current_time() - started >= 5.0
