"""Remote-write progress kept in a ConfigMap: written before sends, read afresh on start, fenced."""

from __future__ import annotations

import base64

import pytest

from mtproxy.controller import KubeClient
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
