"""A controller: a work queue of keys and N workers calling one reconcile function.

Outcome mapping (controller-runtime's ``reconcileHandler``): an exception requeues the
key with its per-key exponential backoff; ``requeue_after_s`` forgets the backoff and
adds the key after the delay; ``requeue`` adds it rate-limited; success forgets it; a
``TerminalError`` is logged and counted and the key is forgotten. A failing reconcile is
caught per key and logged with the key; it never kills a worker. A key is never
reconciled by two workers at once (the queue's guarantee).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import trio

from mtproxy.controller.reconcile import Reconciler, Request, TerminalError
from mtproxy.controller.workqueue import QueueShutDown, WorkQueue

__all__ = ["Controller", "ControllerStatistics"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerStatistics:
    """Reconcile counts of one controller."""

    name: str
    workers: int
    reconciles: int
    errors: int
    terminal_errors: int
    requeues: int
    queue_depth: int
    active: int


class Controller:
    """Owns a queue and its workers; ``enqueue`` is what informer handlers call."""

    def __init__(self, name: str, reconciler: Reconciler, *, workers: int = 2) -> None:
        if workers < 1:
            raise ValueError(f"workers: must be at least 1, got {workers}")
        self.name = name
        self.queue: WorkQueue[Request] = WorkQueue(name)
        self._reconciler = reconciler
        self._workers = workers
        self._counts = {"reconciles": 0, "errors": 0, "terminal": 0, "requeues": 0, "active": 0}

    def enqueue(self, namespace: str, name: str) -> None:
        """Ask for the object to be reconciled (de-duplicated while queued)."""
        self.queue.add(Request(namespace=namespace, name=name))

    def statistics(self) -> ControllerStatistics:
        """A snapshot of the counters."""
        return ControllerStatistics(
            name=self.name,
            workers=self._workers,
            reconciles=self._counts["reconciles"],
            errors=self._counts["errors"],
            terminal_errors=self._counts["terminal"],
            requeues=self._counts["requeues"],
            queue_depth=len(self.queue),
            active=self._counts["active"],
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the queue and the workers until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.queue.run)
            for index in range(self._workers):
                nursery.start_soon(self._worker, index)
            logger.info("controller started", extra={"controller": self.name, "workers": self._workers})
            task_status.started()

    async def _worker(self, index: int) -> None:
        while True:
            try:
                request = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self._reconcile_one(request)
            finally:
                self.queue.done(request)

    async def _reconcile_one(self, request: Request) -> None:
        reconcile_id = uuid.uuid4().hex[:12]
        fields = {"controller": self.name, "key": str(request), "reconcile_id": reconcile_id}
        started = time.perf_counter()
        self._counts["active"] += 1
        try:
            result = await self._reconciler(request)
        except TerminalError as exc:
            self._counts["terminal"] += 1
            self.queue.forget(request)
            logger.error("reconcile failed terminally", extra={**fields, "error": str(exc)[:512]})
            return
        except Exception as exc:
            self._counts["errors"] += 1
            self.queue.add_rate_limited(request)
            logger.warning(
                "reconcile failed",
                extra={
                    **fields,
                    "error": f"{type(exc).__name__}: {str(exc)[:512]}",
                    "retries": self.queue.num_requeues(request),
                },
                exc_info=logger.isEnabledFor(logging.DEBUG),
            )
            return
        finally:
            self._counts["active"] -= 1
            self._counts["reconciles"] += 1
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        if result.requeue_after_s is not None:
            self.queue.forget(request)
            self.queue.add_after(request, result.requeue_after_s)
            self._counts["requeues"] += 1
        elif result.requeue:
            self.queue.add_rate_limited(request)
            self._counts["requeues"] += 1
        else:
            self.queue.forget(request)
        logger.debug("reconcile done", extra={**fields, "duration_ms": duration_ms})
