"""Fair admission of tenant requests: a global limit, a per-tenant share, waiting tenants served in turn.

The models are Mimir's query-scheduler (one queue per tenant; when a querier is free, the
tenants with queued work take turns) and vmauth's per-user concurrency limit. One tenant
sending many slow queries must not make another tenant's light query wait: with a single
shared limiter the slow tenant fills every slot, and everyone queues behind it.

Guarantees (each named by a test in ``tests/proxy/test_fairqueue.py``):

- at most ``total_slots`` holders at once, and at most ``tenant_slots`` of one tenant;
- a tenant under its share takes a free slot at once, however many waiters other tenants
  have (their waiters are over their share, or there would be no free slot);
- one tenant's waiters are admitted in arrival order;
- a freed slot goes to the waiting tenant that was admitted least recently (a tenant never
  admitted before, or idle since, goes first), so tenants with waiters take turns whatever
  the length of their queues;
- a wait is bounded: after ``timeout_s`` it ends with :class:`QueueTimeout` and counts a
  rejection for the tenant; the error says whether the tenant was at its own share (its
  fault: HTTP 429) or the whole service was full (HTTP 503);
- a cancelled wait leaves nothing behind, and a slot granted in the same instant is passed on.

A free slot is taken without a trip through the scheduler (as the proxy did with its
``CapacityLimiter``): a request that need not wait costs no checkpoint. Per-tenant entries
are dropped when a tenant has nothing running or waiting, except its rejection count,
which is kept for ``/metrics``; callers admit only tenants that have a policy, so that map
is bounded by the tenants the platform created.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import trio

__all__ = ["FairQueue", "FairQueueStatistics", "QueueTimeout", "TenantQueueStatistics"]


class QueueTimeout(Exception):
    """A request waited ``timeout_s`` for a slot without getting one."""

    def __init__(self, tenant: str, *, over_share: bool, waited_s: float) -> None:
        super().__init__(f"tenant {tenant!r} waited {waited_s:g} s for a slot")
        self.tenant = tenant
        self.over_share = over_share
        """True when the tenant held its whole share when it gave up (else the service was full)."""
        self.waited_s = waited_s


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantQueueStatistics:
    """One tenant's part of a :class:`FairQueueStatistics` snapshot."""

    in_flight: int
    waiting: int
    rejected: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FairQueueStatistics:
    """A frozen snapshot of a :class:`FairQueue` (what ``/metrics`` reads)."""

    total_slots: int
    tenant_slots: int
    in_flight: int
    waiting: int
    rejected: int
    tenants: Mapping[str, TenantQueueStatistics] = field(default_factory=dict)


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.granted = False


class FairQueue:
    """Admits holders of ``total_slots`` slots, at most ``tenant_slots`` per tenant; see the module doc."""

    def __init__(self, *, total_slots: int, tenant_slots: int) -> None:
        if total_slots < 1:
            raise ValueError(f"total_slots: must be at least 1, got {total_slots}")
        if tenant_slots < 1:
            raise ValueError(f"tenant_slots: must be at least 1, got {tenant_slots}")
        self._total_slots = total_slots
        self._tenant_slots = min(tenant_slots, total_slots)
        self._in_flight_total = 0
        self._in_flight: dict[str, int] = {}
        self._waiters: dict[str, deque[_Waiter]] = {}
        self._rejected: dict[str, int] = {}
        self._admitted_at: dict[str, int] = {}
        """Sequence number of each tenant's last admission: the least recent goes first."""
        self._sequence = itertools.count()

    @property
    def tenant_slots(self) -> int:
        """One tenant's share."""
        return self._tenant_slots

    def _may_admit(self, tenant: str) -> bool:
        return self._in_flight_total < self._total_slots and self._in_flight.get(tenant, 0) < self._tenant_slots

    def _admit(self, tenant: str) -> None:
        self._in_flight_total += 1
        self._in_flight[tenant] = self._in_flight.get(tenant, 0) + 1
        self._admitted_at[tenant] = next(self._sequence)

    def acquire_nowait(self, tenant: str) -> None:
        """Take a slot for ``tenant`` now.

        Raises:
            trio.WouldBlock: the tenant holds its share, the service is full, or the tenant
                already has waiters (they go first).
        """
        if self._waiters.get(tenant) or not self._may_admit(tenant):
            raise trio.WouldBlock
        self._admit(tenant)

    async def acquire(self, tenant: str, *, timeout_s: float) -> None:
        """Take a slot for ``tenant``, waiting at most ``timeout_s`` for one.

        Raises:
            QueueTimeout: no slot within ``timeout_s`` (a rejection is counted).
        """
        try:
            self.acquire_nowait(tenant)
            return
        except trio.WouldBlock:
            pass
        waiter = _Waiter()
        self._waiters.setdefault(tenant, deque()).append(waiter)
        try:
            with trio.move_on_after(timeout_s):
                await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self.release(tenant)  # granted in the instant it was cancelled: pass the slot on
            else:
                self._forget_waiter(tenant, waiter)
            raise
        if waiter.granted:
            return
        self._forget_waiter(tenant, waiter)
        self._rejected[tenant] = self._rejected.get(tenant, 0) + 1
        raise QueueTimeout(tenant, over_share=self._in_flight.get(tenant, 0) >= self._tenant_slots, waited_s=timeout_s)

    def release(self, tenant: str) -> None:
        """Give back a slot of ``tenant`` and hand free slots to waiters, tenants in turn.

        Raises:
            RuntimeError: ``tenant`` holds no slot.
        """
        held = self._in_flight.get(tenant, 0)
        if held < 1:
            raise RuntimeError(f"tenant {tenant!r} holds no slot")
        self._in_flight_total -= 1
        if held == 1:
            del self._in_flight[tenant]
        else:
            self._in_flight[tenant] = held - 1
        self._grant_free_slots()
        self._forget_idle(tenant)

    @contextlib.asynccontextmanager
    async def slot(self, tenant: str, *, timeout_s: float) -> AsyncIterator[None]:
        """Hold a slot for the body of an ``async with`` (``acquire`` … ``release``)."""
        await self.acquire(tenant, timeout_s=timeout_s)
        try:
            yield
        finally:
            self.release(tenant)

    def statistics(self) -> FairQueueStatistics:
        """A frozen snapshot of the queue."""
        names = set(self._in_flight) | set(self._waiters) | set(self._rejected)
        tenants = {
            name: TenantQueueStatistics(
                in_flight=self._in_flight.get(name, 0),
                waiting=len(self._waiters.get(name, ())),
                rejected=self._rejected.get(name, 0),
            )
            for name in sorted(names)
        }
        return FairQueueStatistics(
            total_slots=self._total_slots,
            tenant_slots=self._tenant_slots,
            in_flight=self._in_flight_total,
            waiting=sum(t.waiting for t in tenants.values()),
            rejected=sum(self._rejected.values()),
            tenants=tenants,
        )

    def _grant_free_slots(self) -> None:
        while self._in_flight_total < self._total_slots:
            eligible = [t for t in self._waiters if self._in_flight.get(t, 0) < self._tenant_slots]
            if not eligible:
                return
            tenant = min(eligible, key=lambda t: self._admitted_at.get(t, -1))
            queue = self._waiters[tenant]
            waiter = queue.popleft()
            if not queue:
                del self._waiters[tenant]
            self._admit(tenant)
            waiter.granted = True
            waiter.event.set()

    def _forget_waiter(self, tenant: str, waiter: _Waiter) -> None:
        queue = self._waiters.get(tenant)
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(waiter)
            if not queue:
                del self._waiters[tenant]
        self._forget_idle(tenant)

    def _forget_idle(self, tenant: str) -> None:
        # An idle tenant forgets its turn too: when it comes back it goes first, as a new one does.
        if tenant not in self._in_flight and tenant not in self._waiters:
            self._admitted_at.pop(tenant, None)
