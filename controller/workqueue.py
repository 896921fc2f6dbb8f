"""A rate-limited work queue of keys that never hands one key to two workers at once.

client-go's ``util/workqueue`` in trio terms. Producers (event handlers) ``add`` keys;
N workers loop ``key = await queue.get()``, reconcile, then ``queue.done(key)``. The
state is an ordered ``queue`` of keys to hand out, a ``dirty`` set of keys that need
processing (all queued keys, plus keys added again while processing) and ``processing``.

Guarantees, each checked by a test named after it (tests/controller/test_workqueue.py):

* **At most once queued.** Adding a key that is already queued changes nothing: ten
  adds before a worker gets to it are processed once.
* **Never two workers on one key.** A key is handed out by ``get`` only when it is not
  being processed.
* **Re-queued if changed during processing.** Adding a key while it is processed marks
  it dirty; ``done`` then queues it again, so the change is never lost.
* **FIFO otherwise.** Keys are handed out in the order they were queued.
* **Delays in deadline order.** ``add_after`` keys are added when their deadline
  passes, earliest first, ties in call order; a key already waiting keeps the earlier
  of its two deadlines.

``get`` is always a checkpoint and blocks without polling. Call ``done`` once per ``get``,
in ``finally``, so that a cancelled reconcile frees its key.

Shutdown is an explicit choice, unlike client-go where ``ShutDown`` still hands out
what is queued: ``shut_down()`` drops every queued, dirty and delayed key at once;
``shut_down_with_drain()`` hands out what is queued or dirty and waits until nothing
is processing. Either way ``add`` is ignored from then on, delayed keys are dropped,
and ``get`` raises ``QueueShutDown`` once nothing is left for it.

Why ``run()`` rather than an ``open_work_queue()`` context manager: the queue must exist
before anything runs (informer handlers are wired to ``queue.add`` at construction), and
the controller owning the workers already owns a nursery. So the queue is a plain object
whose sync methods need no task, and its one long-running part, the task moving
``add_after`` keys from a heap into the queue, is ``run()``, started like every runnable
with ``await nursery.start(queue.run)``. It returns at shutdown, so that nursery can close.
"""

from __future__ import annotations

import collections
import enum
import heapq
import itertools
import logging
import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

from mtproxy.controller.ratelimit import RateLimiter, default_controller_rate_limiter

__all__ = ["QueueShutDown", "WorkQueue", "WorkQueueState", "WorkQueueStatistics"]

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class QueueShutDown(Exception):
    """``get`` on a queue that is shut down and has nothing left to hand out."""


class WorkQueueState(enum.Enum):
    """Lifecycle of a ``WorkQueue``."""

    OPEN = "open"
    """Accepting keys."""
    DRAINING = "draining"
    """``shut_down_with_drain()`` called: no new keys; queued and dirty keys still handed out."""
    SHUT_DOWN = "shut_down"
    """Nothing more will be handed out; keys still processing may finish."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkQueueStatistics:
    """A snapshot of one ``WorkQueue``, for ``/metrics`` and the debug pages."""

    state: WorkQueueState
    """Where the queue is in its lifecycle."""
    depth: int
    """Keys queued, ready for ``get``."""
    processing: int
    """Keys handed out by ``get`` and not yet ``done``."""
    dirty: int
    """Keys added again while being processed; ``done`` re-queues them."""
    waiting_after: int
    """Keys waiting in ``add_after`` for their deadline."""
    getters_waiting: int
    """Tasks blocked in ``get``: idle workers."""
    adds_total: int
    """Adds that queued a key or marked it dirty; adds collapsed into a queued key are not counted."""
    retries_total: int
    """Calls of ``add_rate_limited`` while open."""
    done_total: int
    """Calls of ``done``."""
    longest_processing_s: float
    """How long the oldest key still processing has been held; 0.0 if none is."""


class WorkQueue(Generic[K]):
    """Keys to reconcile, each handed to one worker at a time; see the module docstring."""

    def __init__(self, name: str = "workqueue", *, rate_limiter: RateLimiter[K] | None = None) -> None:
        """``name`` tells queues apart in logs; ``rate_limiter`` defaults to ``default_controller_rate_limiter()``."""
        self.name = name
        self._rate_limiter: RateLimiter[K] = default_controller_rate_limiter() if rate_limiter is None else rate_limiter
        self._state = WorkQueueState.OPEN
        self._queue: collections.deque[K] = collections.deque()
        self._dirty: set[K] = set()
        self._processing: dict[K, float] = {}  # key -> trio time it was handed out
        self._getters = trio.lowlevel.ParkingLot()
        self._drained = trio.Event()
        # add_after: a heap of (deadline, seq, key); an entry is live iff _waiting[key] is its
        # (deadline, seq). Superseded entries stay in the heap and are skipped when popped.
        self._heap: list[tuple[float, int, K]] = []
        self._waiting: dict[K, tuple[float, int]] = {}
        self._seq = itertools.count()
        self._timer = trio.lowlevel.ParkingLot()
        self._running = False
        self._adds_total = 0
        self._retries_total = 0
        self._done_total = 0

    def __len__(self) -> int:
        """Keys queued, ready for ``get``."""
        return len(self._queue)

    def add(self, key: K) -> None:
        """Queue ``key`` unless it is already queued; if it is processing, re-queue it on ``done``."""
        if self._state is not WorkQueueState.OPEN or key in self._dirty:
            return
        self._dirty.add(key)
        self._adds_total += 1
        if key not in self._processing:
            self._queue.append(key)
            self._getters.unpark()

    def get_nowait(self) -> K:
        """Hand out the first queued key and mark it processing.

        Raises:
            trio.WouldBlock: nothing is queued yet.
            QueueShutDown: the queue is shut down and nothing is left to hand out.
        """
        if self._queue:
            key = self._queue.popleft()
            self._dirty.discard(key)
            self._processing[key] = trio.current_time()
            if self._state is not WorkQueueState.OPEN:
                self._settle_shutdown()
            return key
        # Draining still waits for dirty keys: done() re-queues them.
        if self._state is not WorkQueueState.OPEN and not self._dirty:
            raise QueueShutDown(f"work queue {self.name!r} is shut down")
        raise trio.WouldBlock

    async def get(self) -> K:
        """Wait for a queued key, mark it processing and return it; always a checkpoint.

        The caller owns the key until it calls ``done(key)``.

        Raises:
            QueueShutDown: the queue is shut down and nothing is left to hand out.
        """
        await trio.lowlevel.checkpoint()
        while True:
            try:
                return self.get_nowait()
            except trio.WouldBlock:
                await self._getters.park()

    def done(self, key: K) -> None:
        """Release ``key`` after processing; queue it again if it was added meanwhile.

        Raises:
            RuntimeError: ``key`` is not being processed (``done`` without ``get``, or twice).
        """
        if self._processing.pop(key, None) is None:
            raise RuntimeError(f"done({key!r}) on a key that is not being processed")
        self._done_total += 1
        if key in self._dirty:
            self._queue.append(key)
            self._getters.unpark()
        elif self._state is not WorkQueueState.OPEN:
            self._settle_shutdown()

    def add_after(self, key: K, delay_s: float) -> None:
        """Add ``key`` once ``delay_s`` seconds have passed; at once if ``delay_s <= 0``.

        The delay runs only while ``run()`` does. A key already waiting keeps the
        earlier deadline.

        Raises:
            ValueError: ``delay_s`` is not finite.
        """
        if not math.isfinite(delay_s):
            raise ValueError(f"delay_s must be finite, got {delay_s!r}")
        if self._state is not WorkQueueState.OPEN:
            return
        if delay_s <= 0:
            self.add(key)
            return
        deadline = trio.current_time() + delay_s
        current = self._waiting.get(key)
        if current is not None and current[0] <= deadline:
            return
        seq = next(self._seq)
        self._waiting[key] = (deadline, seq)
        heapq.heappush(self._heap, (deadline, seq, key))
        if self._heap[0][1] == seq:
            self._timer.unpark_all()  # a new earliest deadline: run() re-arms its timer

    def add_rate_limited(self, key: K) -> None:
        """Add ``key`` after the delay its rate limiter gives it, counting one more retry."""
        if self._state is not WorkQueueState.OPEN:
            return
        self._retries_total += 1
        self.add_after(key, self._rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """Clear the rate limiter's memory of ``key``: call it when processing succeeds."""
        self._rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        """How many times the rate limiter has delayed ``key`` since it was last forgotten."""
        return self._rate_limiter.retries(key)

    def shut_down(self) -> None:
        """Stop now: drop queued, dirty and delayed keys, and make ``get`` raise ``QueueShutDown``.

        Keys still processing may finish; their ``done`` re-queues nothing.
        """
        if self._state is WorkQueueState.SHUT_DOWN:
            return
        dropped = len(self._dirty) + len(self._waiting)
        self._state = WorkQueueState.SHUT_DOWN
        self._queue.clear()
        self._dirty.clear()
        self._drop_delayed()
        logger.info("work queue shut down", extra={"queue": self.name, "dropped": dropped})
        self._settle_shutdown()

    async def shut_down_with_drain(self) -> None:
        """Stop taking keys, hand out what is queued or dirty, and wait until nothing is processing.

        Delayed keys are dropped. Bound the wait with a cancel scope; cancelling it
        leaves the queue draining, and ``shut_down()`` then drops what is left.
        """
        if self._state is WorkQueueState.OPEN:
            self._state = WorkQueueState.DRAINING
            self._drop_delayed()
            logger.info(
                "work queue draining",
                extra={"queue": self.name, "depth": len(self._queue), "processing": len(self._processing)},
            )
            self._settle_shutdown()
        await self._drained.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Move ``add_after`` keys into the queue as their deadlines pass; ready at once, returns at shutdown.

        Sleeps until the earliest deadline or until an earlier one arrives.

        Raises:
            RuntimeError: ``run()`` is already running for this queue.
        """
        if self._running:
            raise RuntimeError(f"work queue {self.name!r} is already running")
        self._running = True
        try:
            task_status.started()
            while self._state is WorkQueueState.OPEN:
                self._add_due(trio.current_time())
                with trio.move_on_at(self._heap[0][0] if self._heap else math.inf):
                    await self._timer.park()
        finally:
            self._running = False

    def statistics(self) -> WorkQueueStatistics:
        """A frozen snapshot of the queue's sizes and counters; call it inside a trio run."""
        oldest = min(self._processing.values(), default=None)
        return WorkQueueStatistics(
            state=self._state,
            depth=len(self._queue),
            processing=len(self._processing),
            dirty=len(self._dirty) - len(self._queue),
            waiting_after=len(self._waiting),
            getters_waiting=self._getters.statistics().tasks_waiting,
            adds_total=self._adds_total,
            retries_total=self._retries_total,
            done_total=self._done_total,
            longest_processing_s=0.0 if oldest is None else trio.current_time() - oldest,
        )

    def _add_due(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            deadline, seq, key = heapq.heappop(self._heap)
            if self._waiting.get(key) == (deadline, seq):
                del self._waiting[key]
                self.add(key)

    def _drop_delayed(self) -> None:
        self._heap.clear()
        self._waiting.clear()
        self._timer.unpark_all()

    def _settle_shutdown(self) -> None:
        """After a shutdown step: wake getters once nothing is left, finish once nothing is held."""
        if self._dirty:
            return
        self._getters.unpark_all()
        if not self._processing and not self._drained.is_set():
            if self._state is WorkQueueState.DRAINING:
                logger.info("work queue drained", extra={"queue": self.name})
            self._state = WorkQueueState.SHUT_DOWN
            self._drained.set()
