"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

- **Acquire.** Every ``retry_period_s`` (jittered) the elector reads the Lease. It takes
  it when nobody holds it, or when the holder has not renewed for ``lease_duration_s``
  as measured on *this* process' clock from the moment it last saw the record change
  (so clock skew between replicas does not matter). Writes carry the resourceVersion
  read, so two candidates can never both win: one gets 409 Conflict. The Lease carries
  ``leaseDurationSeconds`` in whole seconds, rounded up from ``lease_duration_s``.
- **Lead.** While leading, it renews every ``retry_period_s``. If no renewal succeeds
  within ``renew_deadline_s``, leadership is lost: the leader-only work runs inside a
  cancel scope that is cancelled at that moment, never left running. Then it campaigns
  again (the original never did).
- **Release.** On shutdown it clears the holder so another replica takes over at once.

Construction rejects ``lease_duration_s <= renew_deadline_s`` and a renew deadline not
above ``retry_period_s * 1.2``, as client-go's ``NewLeaderElector`` does.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from mtproxy.controller.client import KubeClient
from mtproxy.controller.errors import APIError, Conflict, NotFound
from mtproxy.controller.resource import Resource

__all__ = ["LEASES", "LeaderElector", "LeaderElectorStatistics"]

logger = logging.getLogger(__name__)

LEASES = Resource(group="coordination.k8s.io", version="v1", plural="leases")
_JITTER = 1.2


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaderElectorStatistics:
    """Leadership state of this process."""

    identity: str
    leading: bool
    holder: str
    transitions_observed: int
    terms: int


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaigns for one Lease and runs leader-only work while it holds it."""

    def __init__(
        self,
        client: KubeClient,
        *,
        name: str,
        namespace: str,
        identity: str,
        lease_duration_s: float = 15.0,
        renew_deadline_s: float = 10.0,
        retry_period_s: float = 2.0,
    ) -> None:
        if lease_duration_s <= renew_deadline_s:
            raise ValueError("lease_duration_s: must be greater than renew_deadline_s")
        if renew_deadline_s <= _JITTER * retry_period_s:
            raise ValueError("renew_deadline_s: must be greater than retry_period_s * 1.2")
        if retry_period_s <= 0:
            raise ValueError("retry_period_s: must be positive")
        if not identity:
            raise ValueError("identity: must not be empty")
        self._client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration_s = lease_duration_s
        self.renew_deadline_s = renew_deadline_s
        self.retry_period_s = retry_period_s
        self._observed_record: dict[str, Any] | None = None
        self._observed_at = 0.0
        self._leading = False
        self._terms = 0
        self._transitions = 0

    @property
    def leading(self) -> bool:
        """Whether this process holds the Lease now."""
        return self._leading

    def statistics(self) -> LeaderElectorStatistics:
        """A snapshot for /health, /metrics and the console."""
        holder = str((self._observed_record or {}).get("holderIdentity") or "")
        return LeaderElectorStatistics(
            identity=self.identity,
            leading=self._leading,
            holder=holder,
            transitions_observed=self._transitions,
            terms=self._terms,
        )

    async def run(
        self,
        lead: Callable[[], Awaitable[None]],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Campaign, lead (running ``lead`` in a cancel scope), and campaign again, until cancelled."""
        task_status.started()
        try:
            while True:
                await self._acquire()
                await self._lead(lead)
        finally:
            if self._leading:
                self._leading = False
                with trio.CancelScope(shield=True), trio.move_on_after(self.retry_period_s):
                    await self._release()

    async def _acquire(self) -> None:
        logger.info(
            "leader election campaigning", extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity}
        )
        while not await self._try_acquire_or_renew():
            await trio.sleep(self.retry_period_s * random.uniform(1.0, _JITTER))
        self._leading = True
        self._terms += 1
        logger.info("leader election won", extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity})

    async def _lead(self, lead: Callable[[], Awaitable[None]]) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._renew_until_lost, nursery.cancel_scope)
            nursery.start_soon(lead)
        self._leading = False
        logger.warning(
            "leader election lost", extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity}
        )

    async def _renew_until_lost(self, scope: trio.CancelScope) -> None:
        while True:
            renewed = False
            with trio.move_on_after(self.renew_deadline_s):
                while not renewed:
                    renewed = await self._try_acquire_or_renew()
                    if not renewed:
                        await trio.sleep(self.retry_period_s)
            if not renewed:
                scope.cancel(reason="lost leadership")
                return
            await trio.sleep(self.retry_period_s)

    def _observe(self, record: dict[str, Any]) -> None:
        if record != self._observed_record:
            if self._observed_record is not None and record.get("holderIdentity") != self._observed_record.get(
                "holderIdentity"
            ):
                self._transitions += 1
            self._observed_record = record
            self._observed_at = trio.current_time()

    async def _try_acquire_or_renew(self) -> bool:
        now = _now_text()
        try:
            lease = await self._client.get(LEASES, self.namespace, self.name)
        except NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(acquire_time=now, renew_time=now, transitions=0),
            }
            try:
                created = await self._client.create(LEASES, self.namespace, body)
            except APIError as exc:
                logger.debug("leader election create failed", extra={"error": str(exc)[:256]})
                return False
            self._observe(created.get("spec") or {})
            return True
        except APIError as exc:
            logger.warning("leader election read failed", extra={"error": str(exc)[:256]})
            return False
        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        expired = trio.current_time() > self._observed_at + float(spec.get("leaseDurationSeconds") or 0)
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder != self.identity:
            transitions += 1
            acquire_time = now
        else:
            acquire_time = spec.get("acquireTime") or now
        lease["spec"] = self._spec(acquire_time=acquire_time, renew_time=now, transitions=transitions)
        try:
            updated = await self._client.update(LEASES, self.namespace, lease)
        except Conflict:
            return False
        except APIError as exc:
            logger.warning("leader election update failed", extra={"error": str(exc)[:256]})
            return False
        self._observe(updated.get("spec") or {})
        return True

    def _spec(self, *, acquire_time: str, renew_time: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            # Whole seconds on the wire: round up, since truncating 1.5 s to 1 s would let
            # another replica take over before this one's renew deadline has passed.
            "leaseDurationSeconds": math.ceil(self.lease_duration_s),
            "acquireTime": acquire_time,
            "renewTime": renew_time,
            "leaseTransitions": transitions,
        }

    async def _release(self) -> None:
        try:
            lease = await self._client.get(LEASES, self.namespace, self.name)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            spec.update({"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": _now_text()})
            await self._client.update(LEASES, self.namespace, lease)
            logger.info("leader election released", extra={"lease": f"{self.namespace}/{self.name}"})
        except APIError as exc:
            logger.warning("leader election release failed", extra={"error": str(exc)[:256]})
