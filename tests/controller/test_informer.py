"""Informer against the API double: each sentence of the informer's contract, then a property test.

The unit tests check one guarantee each (list then watch, the relist difference after
compaction, re-watch after dropped streams, bookmarks, isolated handlers, wait_synced).
The property test runs random writes interleaved with dropped watches, compactions and a
server pause, and checks that the store ends equal to the server and that every handler
ends having seen the final state of every object, each key's versions in order.

Writes in the property test go into the double's store directly (``seed`` and a store
delete, in the double's thread), because a paused double blocks every HTTP request: that
is how objects change while the informer cannot hear about them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import hypothesis.strategies as st
import pytest
import trio
from hypothesis import HealthCheck, event, given, settings
from kubetesting import CONFIGMAPS, CuttableRelay, configmap, open_kube, wait_until

from mtproxy.apidouble import InjectedFailure, RunningDouble
from mtproxy.apidouble.store import ObjectKey
from mtproxy.controller.client import KubeClient
from mtproxy.controller.informer import Change, ChangeType, Informer

Object = dict[str, Any]


class Recorder:
    """A handler that keeps every change, its own view of the objects, and per-key order violations."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.view: dict[str, Object] = {}
        self.out_of_order: list[str] = []
        self._last_rv: dict[str, int] = {}

    def __call__(self, change: Change) -> None:
        self.changes.append(change)
        if change.type is ChangeType.DELETED:
            self.view.pop(change.name, None)
            return
        rv = int(change.new["metadata"]["resourceVersion"])
        if rv <= self._last_rv.get(change.name, 0):
            self.out_of_order.append(f"{change.name}: {rv} after {self._last_rv[change.name]}")
        self._last_rv[change.name] = rv
        self.view[change.name] = change.new

    def seen(self, start: int = 0) -> list[tuple[ChangeType, str]]:
        return [(change.type, change.name) for change in self.changes[start:]]


def _versions(objects: dict[str, Object]) -> dict[str, str]:
    return {name: obj["metadata"]["resourceVersion"] for name, obj in objects.items()}


async def _server_versions(kube: KubeClient, namespace: str) -> dict[str, str]:
    items, _ = await kube.list(CONFIGMAPS, namespace)
    return {item["metadata"]["name"]: item["metadata"]["resourceVersion"] for item in items}


def _informer(client: KubeClient, namespace: str, *handlers: Callable[[Change], Awaitable[None] | None]) -> Informer:
    informer = Informer(client, CONFIGMAPS, namespace=namespace, backoff_initial_s=0.005, backoff_max_s=0.02)
    for handler in handlers:
        informer.add_handler(handler)
    return informer


async def _seed(double: RunningDouble, *objects: Object) -> None:
    await trio.to_thread.run_sync(double.seed, list(objects))


async def test_lists_then_watches_and_handlers_see_each_change_in_order(
    kube: KubeClient, double: RunningDouble, namespace: str
) -> None:
    await _seed(double, configmap(namespace, "a", "1"), configmap(namespace, "b", "1"))
    recorder = Recorder()
    informer = _informer(kube, namespace, recorder)
    async with trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        await informer.wait_synced()
        assert set(informer.store.in_namespace(namespace)) == {"a", "b"}
        await kube.create(CONFIGMAPS, namespace, configmap(namespace, "c", "1"))
        await kube.patch_merge(CONFIGMAPS, namespace, "a", {"data": {"value": "2"}})
        await kube.delete(CONFIGMAPS, namespace, "b")
        await wait_until(lambda: len(recorder.changes) == 5)
        assert _versions(dict(informer.store.in_namespace(namespace))) == await _server_versions(kube, namespace)
        nursery.cancel_scope.cancel()
    assert recorder.seen() == [
        (ChangeType.ADDED, "a"),
        (ChangeType.ADDED, "b"),
        (ChangeType.ADDED, "c"),
        (ChangeType.UPDATED, "a"),
        (ChangeType.DELETED, "b"),
    ]
    updated = recorder.changes[3]
    assert updated.old is not None and updated.old["data"] == {"value": "1"}
    assert updated.new["data"] == {"value": "2"}
    stats = informer.statistics()
    assert (stats.lists, stats.relists_after_gone, stats.objects) == (1, 0, 2)


async def test_relist_after_compaction_emits_only_the_difference(
    kube: KubeClient,
    double: RunningDouble,
    namespace: str,
    open_relay: Callable[[], Awaitable[CuttableRelay]],
) -> None:
    await _seed(double, *(configmap(namespace, name, "1") for name in ("keep", "change", "remove")))
    relay = await open_relay()
    cut_off, http = open_kube(relay.url)
    recorder = Recorder()
    informer = _informer(cut_off, namespace, recorder)
    async with http, trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        await informer.wait_synced()
        await wait_until(lambda: informer.statistics().watches == 1)
        relay.cut()
        await wait_until(lambda: informer.statistics().reconnects >= 1)
        # changes the informer cannot hear about, then history it can no longer resume from
        await kube.create(CONFIGMAPS, namespace, configmap(namespace, "new", "1"))
        await kube.patch_merge(CONFIGMAPS, namespace, "change", {"data": {"value": "2"}})
        await kube.delete(CONFIGMAPS, namespace, "remove")
        await trio.to_thread.run_sync(double.compact)
        relay.restore()
        expected = await _server_versions(kube, namespace)
        await wait_until(lambda: _versions(recorder.view) == expected)
        assert _versions(dict(informer.store.in_namespace(namespace))) == expected
        nursery.cancel_scope.cancel()
    assert sorted(recorder.seen(3), key=str) == sorted(
        [(ChangeType.ADDED, "new"), (ChangeType.UPDATED, "change"), (ChangeType.DELETED, "remove")], key=str
    )
    deleted = next(change for change in recorder.changes if change.type is ChangeType.DELETED)
    assert deleted.new["data"] == {"value": "1"}, "DELETED after a relist carries the last state seen"
    stats = informer.statistics()
    assert (stats.lists, stats.relists_after_gone) == (2, 1)


@pytest.mark.apidouble_only  # drop_watches
async def test_rewatches_from_the_last_version_after_watches_are_dropped(
    kube: KubeClient, double: RunningDouble, namespace: str
) -> None:
    recorder = Recorder()
    informer = _informer(kube, namespace, recorder)
    async with trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        await informer.wait_synced()
        with trio.fail_after(5):
            # the first watch is counted before the double has it open: drop until it has ended
            while informer.statistics().watches < 2:
                await trio.to_thread.run_sync(double.drop_watches)
                await trio.sleep(0.01)
        await kube.create(CONFIGMAPS, namespace, configmap(namespace, "after-drop", "1"))
        await wait_until(lambda: "after-drop" in recorder.view)
        nursery.cancel_scope.cancel()
    stats = informer.statistics()
    assert (stats.lists, stats.relists_after_gone) == (1, 0), "a dropped stream resumes; it does not relist"
    assert recorder.seen() == [(ChangeType.ADDED, "after-drop")]


@pytest.mark.apidouble_only  # injected failures, drop_watches
async def test_server_errors_are_retried_after_backoff_and_a_failed_watch_resumes_without_relisting(
    kube: KubeClient, double: RunningDouble, namespace: str
) -> None:
    failure = InjectedFailure(code=503, reason="ServiceUnavailable", method="GET",
                              path_prefix=CONFIGMAPS.path(namespace))
    await trio.to_thread.run_sync(double.fail_next, 2, failure)
    recorder = Recorder()
    informer = _informer(kube, namespace, recorder)
    async with trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        with trio.fail_after(5):
            await informer.wait_synced()
        assert (informer.statistics().lists, informer.statistics().reconnects) == (1, 2)
        await trio.to_thread.run_sync(double.fail_next, 2, failure)
        with trio.fail_after(5):
            while informer.statistics().reconnects < 4:
                await trio.to_thread.run_sync(double.drop_watches)
                await trio.sleep(0.01)
        await kube.create(CONFIGMAPS, namespace, configmap(namespace, "after-failures", "1"))
        await wait_until(lambda: "after-failures" in recorder.view)
        nursery.cancel_scope.cancel()
    stats = informer.statistics()
    assert (stats.lists, stats.relists_after_gone, stats.reconnects) == (1, 0, 4)


@pytest.mark.apidouble_only  # drop_watches
async def test_bookmarks_advance_the_resource_version_so_compaction_needs_no_relist(
    kube: KubeClient, double: RunningDouble, namespace: str
) -> None:
    recorder = Recorder()
    informer = _informer(kube, namespace, recorder)
    async with trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        await informer.wait_synced()
        listed_at = int(informer.statistics().resource_version)
        # a write the namespaced informer does not see; only a bookmark tells it time moved on
        await _seed(double, configmap(f"{namespace}-elsewhere", "x", "1"))
        server_version = await trio.to_thread.run_sync(double.resource_version)
        assert server_version > listed_at
        await wait_until(lambda: int(informer.statistics().resource_version) >= server_version)
        assert recorder.changes == []
        await trio.to_thread.run_sync(double.compact)
        await trio.to_thread.run_sync(double.drop_watches)
        await kube.create(CONFIGMAPS, namespace, configmap(namespace, "after-compaction", "1"))
        await wait_until(lambda: "after-compaction" in recorder.view)
        nursery.cancel_scope.cancel()
    stats = informer.statistics()
    assert (stats.lists, stats.relists_after_gone) == (1, 0)


async def test_a_slow_handler_does_not_stall_another(
    kube: KubeClient, double: RunningDouble, namespace: str
) -> None:
    await _seed(double, *(configmap(namespace, f"o{i}", "1") for i in range(5)))
    release = trio.Event()
    slow_seen: list[str] = []

    async def slow(change: Change) -> None:
        slow_seen.append(change.name)
        await release.wait()

    fast = Recorder()
    informer = _informer(kube, namespace, slow, fast)
    async with trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        await wait_until(lambda: len(fast.changes) == 5)
        assert slow_seen == ["o0"]
        assert informer.statistics().handler_backlog == 4
        release.set()
        await wait_until(lambda: len(slow_seen) == 5)
        assert informer.statistics().handler_backlog == 0
        nursery.cancel_scope.cancel()


async def test_a_failing_handler_keeps_getting_changes(
    kube: KubeClient, double: RunningDouble, namespace: str
) -> None:
    await _seed(double, configmap(namespace, "a", "1"), configmap(namespace, "b", "1"))
    seen: list[str] = []

    def failing(change: Change) -> None:
        seen.append(change.name)
        raise RuntimeError("handler bug")

    informer = _informer(kube, namespace, failing)
    async with trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        await wait_until(lambda: len(seen) == 2)
        nursery.cancel_scope.cancel()
    assert seen == ["a", "b"]


async def test_wait_synced_waits_for_the_first_complete_list(
    double: RunningDouble, namespace: str, open_relay: Callable[[], Awaitable[CuttableRelay]]
) -> None:
    await _seed(double, configmap(namespace, "a", "1"))
    relay = await open_relay()
    relay.cut()
    client, http = open_kube(relay.url)
    recorder = Recorder()
    informer = _informer(client, namespace, recorder)
    async with http, trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        with trio.move_on_after(0.2):
            await informer.wait_synced()
        assert not informer.has_synced()
        assert relay.refused >= 2, "the list is retried while the server is unreachable"
        assert recorder.changes == []
        relay.restore()
        with trio.fail_after(5):
            await informer.wait_synced()
        assert informer.has_synced() and informer.statistics().synced
        assert set(informer.store.in_namespace(namespace)) == {"a"}
        with trio.fail_after(0.1):
            await informer.wait_synced()  # once synced, it returns at once
        nursery.cancel_scope.cancel()


async def test_rejects_bad_backoff(kube: KubeClient) -> None:
    with pytest.raises(ValueError, match="backoff_initial_s"):
        Informer(kube, CONFIGMAPS, backoff_initial_s=0)
    with pytest.raises(ValueError, match="backoff_initial_s"):
        Informer(kube, CONFIGMAPS, backoff_initial_s=2.0, backoff_max_s=1.0)


# --- property: random writes, dropped watches, compactions and a pause end converged ------------

NAMES = ("a", "b", "c", "d")
VALUES = st.sampled_from(("0", "1", "2"))
PUT = st.tuples(st.just("put"), st.sampled_from(NAMES), VALUES)
DELETE = st.tuples(st.just("delete"), st.sampled_from(NAMES))
SLEEP = st.tuples(st.just("sleep"), st.sampled_from((0.0, 0.002, 0.01)))
STEP = st.one_of(PUT, PUT, DELETE, st.just(("compact",)), st.just(("drop_watches",)), SLEEP)


@st.composite
def scenarios(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Up to 15 steps, the middle ones inside one server pause when drawn so.

    A compaction forces a relist only when the informer is behind, which is what writes
    and a compaction inside a pause make it.
    """
    before = draw(st.lists(STEP, max_size=5))
    during = draw(st.lists(STEP, max_size=5))
    after = draw(st.lists(STEP, max_size=5))
    paused: bool = draw(st.booleans())
    compact_last: bool = draw(st.booleans())
    if not paused:
        return [*before, *during, *after]
    if during and compact_last:
        during[-1] = ("compact",)
    return [*before, ("pause",), *during, ("resume",), *after]


def _delete_directly(double: RunningDouble, namespace: str, name: str) -> None:
    key = ObjectKey(group="", resource="configmaps", namespace=namespace, name=name)
    double.app.cluster.store.delete(key)


def _apply(double: RunningDouble, namespace: str, operation: tuple[Any, ...], paused: bool) -> bool:
    """Run one operation in the double's thread; return whether the double is now paused."""
    match operation:
        case ("put", name, value):
            double.seed([configmap(namespace, name, value)])
        case ("delete", name):
            double.call(_delete_directly, double, namespace, name)
        case ("drop_watches",):
            double.drop_watches()
        case ("compact",):
            double.compact()
        case ("pause",):
            double.pause()
            return True
        case ("resume",):
            double.resume()
            return False
        case _:
            raise AssertionError(f"unknown operation {operation}")
    return paused


def _server_objects(double: RunningDouble, namespace: str) -> dict[str, Object]:
    from mtproxy.apidouble.resources import GroupResource

    def read() -> dict[str, Object]:
        items = double.app.cluster.store.items(GroupResource(group="", resource="configmaps"), namespace=namespace)
        return {obj["metadata"]["name"]: obj for obj in items}

    return double.call(read)


@pytest.mark.apidouble_only  # pause, writes into the double's store
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    initial=st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=len(NAMES)),
    operations=scenarios(),
    sync_first=st.booleans(),
)
async def test_store_and_handlers_converge_to_the_server_whatever_happens(
    double: RunningDouble, initial: dict[str, str], operations: list[tuple[Any, ...]], sync_first: bool
) -> None:
    namespace = f"p-{uuid.uuid4().hex[:10]}"
    await _seed(double, *(configmap(namespace, name, value) for name, value in initial.items()))
    client, http = open_kube(double.url)
    direct, slow = Recorder(), Recorder()

    async def slow_handler(change: Change) -> None:
        await trio.sleep(0)
        slow(change)

    informer = _informer(client, namespace, direct, slow_handler)
    paused = False
    async with http, trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        if sync_first:
            await informer.wait_synced()
        try:
            for operation in operations:
                if operation[0] == "sleep":
                    await trio.sleep(operation[1])
                else:
                    paused = await trio.to_thread.run_sync(_apply, double, namespace, operation, paused)
        finally:
            if paused:
                await trio.to_thread.run_sync(double.resume)
        expected = _versions(await trio.to_thread.run_sync(_server_objects, double, namespace))

        def converged() -> bool:
            stored = _versions(dict(informer.store.in_namespace(namespace)))
            return (
                informer.has_synced()
                and stored == expected
                and _versions(direct.view) == expected
                and _versions(slow.view) == expected
            )

        await wait_until(converged, timeout_s=10.0)
        nursery.cancel_scope.cancel()
    # what the example exercised, for --hypothesis-show-statistics
    stats = informer.statistics()
    event(f"relists after 410: {min(stats.relists_after_gone, 2)}")
    event(f"watches: {min(stats.watches, 3)}")
    event(f"paused: {any(op[0] == 'pause' for op in operations)}")
    final = await trio.to_thread.run_sync(_server_objects, double, namespace)
    assert {name: obj["data"] for name, obj in informer.store.in_namespace(namespace).items()} == {
        name: obj["data"] for name, obj in final.items()
    }
    assert direct.out_of_order == [] and slow.out_of_order == []
    assert direct.seen() == slow.seen(), "every handler sees the same changes in the same order"
