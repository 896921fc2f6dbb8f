"""Store contract: global monotonic resourceVersion, history, compaction, state at a version."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mtproxy.apidouble.errors import ExpiredError
from mtproxy.apidouble.resources import GroupResource
from mtproxy.apidouble.store import EventType, ObjectKey, Store

CONFIGMAPS = GroupResource(group="", resource="configmaps")


def _key(name: str, namespace: str = "ns") -> ObjectKey:
    return ObjectKey(group="", resource="configmaps", namespace=namespace, name=name)


def _obj(name: str, value: str = "1") -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "ns"}, "data": {"v": value}}


def test_every_write_takes_the_next_version() -> None:
    store = Store()
    first = store.put(_key("a"), _obj("a"))
    second = store.put(_key("a"), _obj("a", "2"))
    deleted = store.delete(_key("a"))
    assert deleted is not None
    versions = [int(o["metadata"]["resourceVersion"]) for o in (first, second, deleted)]  # type: ignore[index]
    assert versions == [2, 3, 4] and store.resource_version == 4
    assert [e.type for e in store.events_after(1)] == [EventType.ADDED, EventType.MODIFIED, EventType.DELETED]
    assert [e.resource_version for e in store.events_after(2)] == [3, 4]


def test_items_at_rebuilds_past_state() -> None:
    store = Store()
    store.put(_key("a"), _obj("a"))
    at = store.resource_version
    store.put(_key("a"), _obj("a", "2"))
    store.put(_key("b"), _obj("b"))
    store.delete(_key("a"))
    assert [o["data"] for o in store.items_at(at, CONFIGMAPS)] == [{"v": "1"}]
    assert [o["metadata"]["name"] for o in store.items(CONFIGMAPS)] == ["b"]


def test_compaction_expires_older_versions_as_etcd_does() -> None:
    store = Store()
    store.put(_key("a"), _obj("a"))
    store.put(_key("b"), _obj("b"))
    assert store.compact() == 1, "the event at the compaction revision stays"
    with pytest.raises(ExpiredError):
        store.events_after(1)
    with pytest.raises(ExpiredError):
        store.items_at(2, CONFIGMAPS)
    assert [e.key.name for e in store.events_after(2)] == ["b"], "a watch may resume after compaction - 1"
    assert [o["metadata"]["name"] for o in store.items_at(3, CONFIGMAPS)] == ["a", "b"]
    assert store.events_after(store.resource_version) == []


def test_history_limit_compacts_automatically() -> None:
    store = Store(history_limit=4)
    for index in range(10):
        store.put(_key(f"o{index}"), _obj(f"o{index}"))
    stats = store.statistics()
    assert stats.history_events <= 4 and stats.compacted_resource_version > 1
    assert store.events_after(stats.compacted_resource_version)[-1].resource_version == store.resource_version


def test_history_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="history_limit"):
        Store(history_limit=0)


async def test_wait_for_change_wakes_on_the_next_write() -> None:
    store = Store()
    woke = trio.Event()

    async def waiter() -> None:
        await store.wait_for_change(store.resource_version)
        woke.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert not woke.is_set()
        store.put(_key("a"), _obj("a"))
        await woke.wait()
