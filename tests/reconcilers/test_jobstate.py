"""Remote-write progress kept in a ConfigMap: written before sends, read afresh on start, fenced."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import trio

from mtproxy.controller import APIError, KubeClient
from mtproxy.reconcilers.jobstate import CONFIGMAPS, ClusterStateStore, config_map_name, decode_state, encode_state
from mtproxy.remotewrite import JobState

KEY = "team-a/forward"


def test_marks_at_or_below_the_cursor_are_left_out_of_the_document() -> None:
    state = JobState(
        cursors={"d": 1000},
        marks={"d": {"old": 900, "edge": 1000, "new": 1500}},
        in_flight={"d": {"new": 1500}, "e": {}},
    )
    decoded = decode_state(encode_state(state))
    assert decoded.cursors == {"d": 1000}
    assert decoded.marks == {"d": {"new": 1500}}
    assert decoded.in_flight == {"d": {"new": 1500}}


@pytest.mark.parametrize("blob", [b"", b"not gzip", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00"])
def test_an_unreadable_document_is_refused_with_a_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError, match="remote write state"):
        decode_state(blob)


async def test_recorded_state_survives_into_a_new_store_once_durable(kube: KubeClient, namespace: str) -> None:
    store = ClusterStateStore(kube, namespace)
    assert await store.restore(KEY) is None
    store.snapshot(KEY, JobState(cursors={"d": 1000}))
    store.append_in_flight(KEY, "d", [("s1", 1500)])
    await store.make_durable(KEY)
    store.append_marks(KEY, "d", [("s1", 1500)])  # answered, but not yet durable

    restarted = ClusterStateStore(kube, namespace)
    state = await restarted.restore(KEY)
    assert state is not None
    assert state.cursors == {"d": 1000}
    assert state.in_flight == {"d": {"s1": 1500}}  # its fate is settled by a resend alone
    assert state.marks == {}

    await store.make_durable(KEY)
    state = await ClusterStateStore(kube, namespace).restore(KEY)
    assert state is not None and state.marks == {"d": {"s1": 1500}} and state.in_flight == {}


async def test_a_write_within_max_age_is_skipped_and_a_required_one_is_not(kube: KubeClient, namespace: str) -> None:
    store = ClusterStateStore(kube, namespace)
    await store.restore(KEY)
    store.snapshot(KEY, JobState(cursors={"d": 1000}))
    await store.make_durable(KEY)
    store.snapshot(KEY, JobState(cursors={"d": 2000}))
    await store.make_durable(KEY, max_age_ms=60_000)
    assert store.statistics().writes == 1
    await store.make_durable(KEY)
    assert store.statistics().writes == 2
    await store.make_durable(KEY)  # nothing new recorded: nothing written
    assert store.statistics().writes == 2


async def test_a_write_after_another_writer_lands_on_top_of_it(kube: KubeClient, namespace: str) -> None:
    old_leader = ClusterStateStore(kube, namespace)
    new_leader = ClusterStateStore(kube, namespace)
    await old_leader.restore(KEY)
    old_leader.snapshot(KEY, JobState(cursors={"d": 1000}))
    await old_leader.make_durable(KEY)
    await new_leader.restore(KEY)
    new_leader.snapshot(KEY, JobState(cursors={"d": 2000}))
    await new_leader.make_durable(KEY)
    old_leader.snapshot(KEY, JobState(cursors={"d": 1500}))
    await old_leader.make_durable(KEY)  # its resourceVersion is stale: a conflict, re-read, written
    assert old_leader.statistics().conflicts == 1
    state = await ClusterStateStore(kube, namespace).restore(KEY)
    assert state is not None and state.cursors == {"d": 1500}


async def test_forget_deletes_the_config_map(kube: KubeClient, namespace: str) -> None:
    store = ClusterStateStore(kube, namespace)
    store.snapshot(KEY, JobState(cursors={"d": 1000}))
    await store.make_durable(KEY)
    found = await kube.get(CONFIGMAPS, namespace, config_map_name(KEY))
    assert found["metadata"]["annotations"]["observability.ethos.io/remote-write-job"] == KEY
    assert decode_state(base64.b64decode(found["binaryData"]["state.json.gz"])).cursors == {"d": 1000}
    await store.forget(KEY)
    assert await ClusterStateStore(kube, namespace).restore(KEY) is None
    await store.forget(KEY)  # twice is fine


async def test_an_oversized_document_keeps_cursors_and_in_flight(kube: KubeClient, namespace: str) -> None:
    store = ClusterStateStore(kube, namespace, max_bytes=2048)
    marks = [(f"{i:016x}", 5000 + i) for i in range(5000)]
    store.snapshot(KEY, JobState(cursors={"d": 1000}))
    store.append_marks(KEY, "d", marks)
    store.append_in_flight(KEY, "d", [("x", 9000)])
    await store.make_durable(KEY)
    assert store.statistics().oversized == 1
    state = await ClusterStateStore(kube, namespace).restore(KEY)
    assert state is not None and state.cursors == {"d": 1000} and state.marks == {}
    assert state.in_flight == {"d": {"x": 9000}}


def test_names_are_valid_and_distinct() -> None:
    names = {config_map_name(f"ns-{i}/name") for i in range(1000)}
    assert len(names) == 1000
    assert all(len(n) <= 63 and n.replace("-", "").isalnum() and n.islower() for n in names)


# --- many jobs at once: one read, a bounded number of requests ---------------------------------


class _CountingClient:
    """Wraps ``KubeClient.request`` on an instance: counts requests and how many were in flight at once.

    The answers to ``slow`` methods arrive ``delay_s`` after the server gave them.
    """

    def __init__(
        self,
        kube: KubeClient,
        monkeypatch: pytest.MonkeyPatch,
        *,
        delay_s: float = 0.0,
        slow: tuple[str, ...] = ("GET",),
    ) -> None:
        self.requests: list[tuple[str, str]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        inner = kube.request

        async def request(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
            self.requests.append((method, path))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                answer = await inner(method, path, **kwargs)
                if method in slow:
                    await trio.sleep(delay_s)
                return answer
            finally:
                self.in_flight -= 1

        monkeypatch.setattr(kube, "request", request)

    def reads(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.requests if method == "GET"]


async def test_restores_started_together_are_served_by_one_list(
    kube: KubeClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [f"team-{i}/forward" for i in range(30)]
    writer = ClusterStateStore(kube, namespace)
    for i, key in enumerate(keys[:20]):  # ten jobs have no state yet
        writer.snapshot(key, JobState(cursors={"d": 1000 + i}))
        await writer.make_durable(key)
    counting = _CountingClient(kube, monkeypatch)
    store = ClusterStateStore(kube, namespace)
    restored: dict[str, JobState | None] = {}

    async def restore(key: str) -> None:
        restored[key] = await store.restore(key)

    async with trio.open_nursery() as nursery:
        for key in keys:
            nursery.start_soon(restore, key)
    assert len(counting.reads()) == 1 and counting.reads()[0][1].endswith("/configmaps")
    for i, key in enumerate(keys):
        state = restored[key]
        assert (state.cursors if state is not None else None) == ({"d": 1000 + i} if i < 20 else None)
    # what was read is this store's copy: a write lands on the version it read, with no conflict
    store.snapshot(keys[0], JobState(cursors={"d": 5000}))
    await store.make_durable(keys[0])
    assert store.statistics().conflicts == 0


async def test_a_restore_alone_gets_its_config_map(
    kube: KubeClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = _CountingClient(kube, monkeypatch)
    assert await ClusterStateStore(kube, namespace).restore(KEY) is None
    assert counting.reads() == [("GET", CONFIGMAPS.path(namespace, config_map_name(KEY)))]


async def test_a_restore_asked_while_a_read_is_under_way_is_not_served_by_it(
    kube: KubeClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = ClusterStateStore(kube, namespace)
    writer.snapshot(KEY, JobState(cursors={"d": 1000}))
    await writer.make_durable(KEY)
    counting = _CountingClient(kube, monkeypatch, delay_s=0.3)
    store = ClusterStateStore(kube, namespace)
    late: list[JobState | None] = []

    async def restore_late() -> None:
        late.append(await store.restore(KEY))

    async with trio.open_nursery() as nursery:
        # two restores together: a list, which the server answers at once (KEY at 1000), received later
        nursery.start_soon(store.restore, "team-b/forward")
        nursery.start_soon(store.restore, "team-c/forward")
        await trio.sleep(0.1)
        writer.snapshot(KEY, JobState(cursors={"d": 2000}))
        await writer.make_durable(KEY)
        nursery.start_soon(restore_late)  # while the list's answer is still on its way
    assert [path.rsplit("/", 1)[-1] for _, path in counting.reads()] == ["configmaps", config_map_name(KEY)]
    assert late[0] is not None and late[0].cursors == {"d": 2000}


async def test_the_others_read_again_when_the_restore_sending_their_read_is_cancelled(
    kube: KubeClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = ClusterStateStore(kube, namespace)
    writer.snapshot(KEY, JobState(cursors={"d": 1000}))
    await writer.make_durable(KEY)
    _CountingClient(kube, monkeypatch, delay_s=0.2)
    store = ClusterStateStore(kube, namespace)
    restored: list[JobState | None] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            first = trio.CancelScope()

            async def restore_then_cancelled() -> None:
                with first:
                    await store.restore("team-b/forward")

            async def restore() -> None:
                restored.append(await store.restore(KEY))

            nursery.start_soon(restore_then_cancelled)
            nursery.start_soon(restore)
            await trio.sleep(0.1)
            first.cancel()
    assert first.cancelled_caught
    assert restored[0] is not None and restored[0].cursors == {"d": 1000}


async def test_a_failed_read_fails_every_restore_that_shared_it(
    kube: KubeClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        raise APIError(503, "ServiceUnavailable", "etcd is down")

    monkeypatch.setattr(kube, "request", refuse)
    store = ClusterStateStore(kube, namespace)
    failures: list[BaseException] = []

    async def restore(key: str) -> None:
        try:
            await store.restore(key)
        except APIError as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(restore, f"team-{i}/forward")
    assert len(failures) == 3 and len({id(f) for f in failures}) == 3
    assert all("etcd is down" in str(f) for f in failures)


async def test_many_jobs_writing_at_once_keep_a_bounded_number_of_requests_in_flight(
    kube: KubeClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ClusterStateStore(kube, namespace, max_concurrent_requests=4)
    keys = [f"team-{i}/forward" for i in range(40)]
    for key in keys:
        store.snapshot(key, JobState(cursors={"d": 1000}))
    counting = _CountingClient(kube, monkeypatch, delay_s=0.01, slow=("GET", "POST", "PUT"))
    async with trio.open_nursery() as nursery:
        for key in keys:
            nursery.start_soon(store.make_durable, key)
    assert store.statistics().writes == 40
    assert 1 < counting.most_in_flight <= 4


def test_max_concurrent_requests_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_concurrent_requests"):
        ClusterStateStore(object(), "ns", max_concurrent_requests=0)  # type: ignore[arg-type]
