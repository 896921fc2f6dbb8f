"""Leader election between two managers on one double, checked from a record of what ran.

Each manager talks to the double through its own cuttable relay, so a test can take the
leader off the network while the follower keeps talking. Each runs one leader-only
runnable that appends ``(identity, start, end)`` to a shared record; the assertions read
that record (and the Lease on the server), never the electors' word for it. A monitor
task samples the electors every 10 ms and notes any moment with two leaders.

Timings are short but real (lease 2 s, renew deadline 1 s, retry 0.2 s): the double runs
in another thread, so virtual time cannot drive it.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import trio
from kubetesting import CuttableRelay, open_kube, wait_until

from mtproxy.controller.client import KubeClient
from mtproxy.controller.leaderelection import LEASES, LeaderElector
from mtproxy.controller.manager import Manager

LEASE_S, RENEW_DEADLINE_S, RETRY_S = 2.0, 1.0, 0.2
JITTER = 1.2
LEASE_NAME = "leader-test"


@dataclass(slots=True)
class Term:
    """One run of the leader-only work."""

    identity: str
    start: float
    end: float | None = None


@dataclass(slots=True)
class Record:
    """What ran where, and any moment the monitor saw two leaders."""

    terms: list[Term] = field(default_factory=list)
    double_leaders: list[float] = field(default_factory=list)

    def active(self) -> list[Term]:
        return [term for term in self.terms if term.end is None]

    def assert_never_overlapping(self) -> None:
        ordered = sorted(self.terms, key=lambda term: term.start)
        for earlier, later in itertools.pairwise(ordered):
            assert earlier.end is not None and earlier.end <= later.start, (earlier, later)
        assert self.double_leaders == []


def _leader_work(identity: str, record: Record) -> Callable[..., Awaitable[None]]:
    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        term = Term(identity=identity, start=trio.current_time())
        record.terms.append(term)
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            term.end = trio.current_time()

    return run


@dataclass(slots=True, kw_only=True)
class Replica:
    identity: str
    relay: CuttableRelay
    elector: LeaderElector
    manager: Manager


async def _start_replicas(
    nursery: trio.Nursery,
    open_relay: Callable[[], Awaitable[CuttableRelay]],
    namespace: str,
    record: Record,
) -> list[Replica]:
    replicas = []
    for identity in ("replica-a", "replica-b"):
        relay = await open_relay()
        client, http = open_kube(relay.url)
        nursery.start_soon(_close_at_end, http)
        elector = LeaderElector(
            client,
            name=LEASE_NAME,
            namespace=namespace,
            identity=identity,
            lease_duration_s=LEASE_S,
            renew_deadline_s=RENEW_DEADLINE_S,
            retry_period_s=RETRY_S,
        )
        manager = Manager(elector=elector, handle_signals=False, grace_period_s=2.0)
        manager.add_runnable(_leader_work(identity, record), leader_only=True)
        replicas.append(Replica(identity=identity, relay=relay, elector=elector, manager=manager))
    for replica in replicas:
        await nursery.start(replica.manager.run)
    nursery.start_soon(_monitor, replicas, record)
    return replicas


async def _close_at_end(http: object) -> None:
    try:
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            await http.aclose()  # type: ignore[attr-defined]


async def _monitor(replicas: list[Replica], record: Record) -> None:
    while True:
        leading = sum(replica.elector.leading for replica in replicas)
        if leading > 1 or len(record.active()) > 1:
            record.double_leaders.append(trio.current_time())
        await trio.sleep(0.01)


async def _stop_all(replicas: list[Replica], nursery: trio.Nursery) -> None:
    """Stop every manager, wait for their drains, then end the helpers (monitor, client closers)."""
    for replica in replicas:
        replica.manager.stop()
    await wait_until(lambda: all(r.manager.statistics().phase == "stopped" for r in replicas), timeout_s=5.0)
    nursery.cancel_scope.cancel()


async def _holder(kube: KubeClient, namespace: str) -> str:
    lease = await kube.get(LEASES, namespace, LEASE_NAME)
    return str(lease["spec"].get("holderIdentity") or "")


async def _wait_for_one_leader(replicas: list[Replica], record: Record) -> tuple[Replica, Replica]:
    await wait_until(lambda: len(record.active()) == 1, timeout_s=5.0)
    leader = next(r for r in replicas if r.identity == record.active()[0].identity)
    follower = next(r for r in replicas if r is not leader)
    assert leader.elector.leading and not follower.elector.leading
    return leader, follower


@pytest.mark.slow
async def test_cutting_the_leader_off_hands_over_within_the_lease_and_never_overlaps(
    kube: KubeClient, namespace: str, open_relay: Callable[[], Awaitable[CuttableRelay]]
) -> None:
    record = Record()
    async with trio.open_nursery() as nursery:
        replicas = await _start_replicas(nursery, open_relay, namespace, record)
        leader, follower = await _wait_for_one_leader(replicas, record)
        assert await _holder(kube, namespace) == leader.identity
        # several renewals: the leader keeps the lease and the follower keeps waiting
        await trio.sleep(3 * RETRY_S)
        assert [term.identity for term in record.terms] == [leader.identity]

        cut_at = trio.current_time()
        leader.relay.cut()
        await wait_until(lambda: any(t.identity == follower.identity for t in record.terms), timeout_s=5.0)
        old, new = record.terms
        assert await _holder(kube, namespace) == follower.identity

        # the old leader stopped its work within its renew deadline (after one retry period's sleep)
        assert old.end is not None
        assert old.end - cut_at <= RETRY_S + RENEW_DEADLINE_S + 0.2
        assert not leader.elector.leading
        # the follower took over once the lease expired: lease duration plus its polling
        # (up to one jittered retry period to see the last renewal, one to notice expiry)
        handover_s = new.start - cut_at
        assert LEASE_S - JITTER * RETRY_S - 0.1 <= handover_s <= LEASE_S + 2 * JITTER * RETRY_S + 0.2, handover_s
        assert old.end <= new.start
        await _stop_all(replicas, nursery)
    record.assert_never_overlapping()
    assert all(term.end is not None for term in record.terms)
    assert follower.elector.statistics().terms == 1 and leader.elector.statistics().terms == 1


@pytest.mark.slow
async def test_a_stopping_leader_releases_the_lease_so_the_follower_takes_over_at_once(
    kube: KubeClient, namespace: str, open_relay: Callable[[], Awaitable[CuttableRelay]]
) -> None:
    record = Record()
    async with trio.open_nursery() as nursery:
        replicas = await _start_replicas(nursery, open_relay, namespace, record)
        leader, follower = await _wait_for_one_leader(replicas, record)
        stopped_at = trio.current_time()
        leader.manager.stop()
        await wait_until(lambda: len(record.terms) == 2, timeout_s=5.0)
        old, new = record.terms
        assert new.identity == follower.identity
        assert old.end is not None and old.end <= new.start
        # released, not expired: one jittered retry period, not a whole lease
        assert new.start - stopped_at <= JITTER * RETRY_S + 0.2, new.start - stopped_at
        assert await _holder(kube, namespace) == follower.identity
        await _stop_all(replicas, nursery)
    record.assert_never_overlapping()


async def test_the_lease_on_the_server_is_never_shorter_than_configured(kube: KubeClient, namespace: str) -> None:
    elector = LeaderElector(
        kube, name=LEASE_NAME, namespace=namespace, identity="solo",
        lease_duration_s=1.5, renew_deadline_s=1.0, retry_period_s=0.2,
    )
    record = Record()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(elector.run, _leader_work("solo", record))
        await wait_until(lambda: elector.leading, timeout_s=5.0)
        lease = await kube.get(LEASES, namespace, LEASE_NAME)
        nursery.cancel_scope.cancel()
    assert lease["spec"]["holderIdentity"] == "solo"
    assert lease["spec"]["leaseDurationSeconds"] == 2  # 1.5 s rounded up: truncating would give 1 < 1.2
    # cancelling the elector ended the work and released the lease
    assert record.terms[0].end is not None
    assert await _holder(kube, namespace) == ""


@pytest.mark.parametrize(
    ("options", "field_name"),
    [
        pytest.param({"lease_duration_s": 10.0, "renew_deadline_s": 10.0}, "lease_duration_s", id="lease-equals-renew"),
        pytest.param({"lease_duration_s": 5.0, "renew_deadline_s": 10.0}, "lease_duration_s", id="lease-below-renew"),
        pytest.param({"renew_deadline_s": 2.0, "retry_period_s": 2.0}, "renew_deadline_s", id="renew-within-retry"),
        pytest.param({"retry_period_s": 0.0}, "retry_period_s", id="retry-zero"),
        pytest.param({"identity": ""}, "identity", id="empty-identity"),
    ],
)
async def test_constructor_rejects_unsafe_timings(
    kube: KubeClient, options: dict[str, object], field_name: str
) -> None:
    arguments: dict[str, object] = {"name": "x", "namespace": "y", "identity": "me", **options}
    with pytest.raises(ValueError, match=field_name):
        LeaderElector(kube, **arguments)  # type: ignore[arg-type]
