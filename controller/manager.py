"""The root of the process: one nursery that owns every long-running part, started in order.

Start order (controller-runtime's runnable groups): servers, then informers (and wait
until every one has synced), then always-on runnables (controllers, the proxy), then
leader-only runnables, inside leader election when it is on. Stop is the reverse: on
SIGTERM/SIGINT (or ``stop()``), in any phase, start-up included, leader-only work is cancelled first, then always-on
runnables, then informers, then servers, each waited for in turn; the whole drain is
bounded by ``grace_period_s``, after which everything left is cancelled.

A runnable is any ``async def run(*, task_status)`` that reports ``started()`` when
ready, as ``trio.Nursery.start`` expects.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from mtproxy.controller.informer import Informer
from mtproxy.controller.leaderelection import LeaderElector

__all__ = ["Manager", "ManagerStatistics", "Runnable"]

logger = logging.getLogger(__name__)


class Runnable(Protocol):
    """Something the manager runs: starts, reports readiness, runs until cancelled."""

    async def run(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...


StartFn = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagerStatistics:
    """Lifecycle state."""

    phase: str
    informers_synced: int
    informers: int
    leading: bool | None


class _Level:
    """One start/stop level: its own cancel scope, and an event when it has stopped."""

    def __init__(self, name: str, starts: Sequence[StartFn]) -> None:
        self.name = name
        self.starts = list(starts)
        self.scope = trio.CancelScope()
        self.stopped = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with self.scope:
                async with trio.open_nursery() as nursery:
                    for start in self.starts:
                        await nursery.start(start)
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            self.stopped.set()


class Manager:
    """Collects the parts, then ``run`` owns them."""

    def __init__(
        self,
        *,
        elector: LeaderElector | None = None,
        grace_period_s: float = 30.0,
        handle_signals: bool = True,
    ) -> None:
        if grace_period_s <= 0:
            raise ValueError("grace_period_s: must be positive")
        self._elector = elector
        self._grace_period_s = grace_period_s
        self._handle_signals = handle_signals
        self._servers: list[StartFn] = []
        self._informers: list[Informer] = []
        self._always: list[StartFn] = []
        self._leader_only: list[StartFn] = []
        self._stop = trio.Event()
        self._phase = "created"

    def add_server(self, start: StartFn) -> None:
        """A server started first and stopped last (health, metrics)."""
        self._servers.append(start)

    def add_informer(self, informer: Informer) -> None:
        """An informer; always-on runnables start once all informers have synced."""
        self._informers.append(informer)

    def add_runnable(self, start: StartFn, *, leader_only: bool = False) -> None:
        """A runnable on every replica, or (``leader_only``) only on the elected one."""
        (self._leader_only if leader_only else self._always).append(start)

    def stop(self) -> None:
        """Begin the graceful shutdown (what SIGTERM does)."""
        self._stop.set()

    def statistics(self) -> ManagerStatistics:
        """A snapshot for /health and the console."""
        return ManagerStatistics(
            phase=self._phase,
            informers_synced=sum(1 for informer in self._informers if informer.has_synced()),
            informers=len(self._informers),
            leading=None if self._elector is None else self._elector.leading,
        )

    async def _wait_synced(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for informer in self._informers:
            await informer.wait_synced()
        logger.info("caches synced", extra={"informers": len(self._informers)})
        task_status.started()
        await trio.sleep_forever()

    async def _run_leader_only(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async def lead() -> None:
            async with trio.open_nursery() as nursery:
                for start in self._leader_only:
                    await nursery.start(start)
                await trio.sleep_forever()

        if self._elector is None:
            task_status.started()
            await lead()
        else:
            await self._elector.run(lead, task_status=task_status)

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                logger.info("shutdown requested", extra={"signal": signal.Signals(signum).name})
                self._stop.set()
                return

    async def _cancel_on_stop(self, starting: trio.CancelScope) -> None:
        """A stop during start-up (e.g. SIGTERM while caches sync) ends the start at once."""
        await self._stop.wait()
        starting.cancel(reason="shutdown during start-up")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start everything in order, wait for stop, then drain in reverse within the grace period.

        A stop requested while starting (a level still waiting, e.g. for caches to sync)
        cancels what is still starting and drains the levels already started.
        """
        levels = [
            _Level("servers", self._servers),
            _Level("informers", [i.run for i in self._informers] + [self._wait_synced]),
            _Level("runnables", self._always),
            _Level("leader-only", [self._run_leader_only] if self._leader_only else []),
        ]
        started: list[_Level] = []
        async with trio.open_nursery() as nursery:
            if self._handle_signals:
                nursery.start_soon(self._watch_signals)
            with trio.CancelScope() as starting:
                nursery.start_soon(self._cancel_on_stop, starting)
                for level in levels:
                    self._phase = f"starting {level.name}"
                    await nursery.start(level.run)
                    started.append(level)
            if starting.cancelled_caught:
                logger.info("stopped during start-up", extra={"phase": self._phase})
            else:
                self._phase = "running"
                logger.info("manager started", extra={"informers": len(self._informers)})
                task_status.started()
                await self._stop.wait()
            self._phase = "stopping"
            with trio.move_on_after(self._grace_period_s) as grace:
                for level in reversed(started):
                    level.scope.cancel(reason="shutdown")
                    await level.stopped.wait()
            if grace.cancelled_caught:
                logger.warning("shutdown grace period expired", extra={"grace_period_s": self._grace_period_s})
            nursery.cancel_scope.cancel(reason="shutdown")
        self._phase = "stopped"
        logger.info("manager stopped")
