"""The manager honours a stop in every phase, start-up included, and serves from the start."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from mtproxy.controller import Manager


class _NeverSyncs:
    """An informer whose first list never ends (an API server that does not answer)."""

    def __init__(self) -> None:
        self.cancelled = False

    def has_synced(self) -> bool:
        return False

    async def wait_synced(self) -> None:
        await trio.sleep_forever()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self.cancelled = True


async def test_a_stop_while_caches_sync_ends_start_up_and_drains_what_started(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[str] = []

    async def server(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        events.append("server serving")
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            events.append("server stopped")

    async def runnable(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        events.append("runnable started")  # pragma: no cover - never reached
        task_status.started()

    informer: Any = _NeverSyncs()
    manager = Manager(handle_signals=False)
    manager.add_server(server)
    manager.add_informer(informer)
    manager.add_runnable(runnable)
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            await trio.sleep(60)  # caches never sync
            assert manager.statistics().phase == "starting informers"
            assert events == ["server serving"]  # health is served before sync
            manager.stop()
    assert events == ["server serving", "server stopped"]
    assert informer.cancelled
    assert manager.statistics().phase == "stopped"
