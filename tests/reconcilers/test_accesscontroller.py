"""The MetricAccess controller on a fake object source: failures stay with their object, spec work runs once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import trio
import trio.testing

from mtproxy.api import Config, GuardrailsConfig, RemoteWriteConfig
from mtproxy.controller import Change, ChangeType, Store, StoreReader
from mtproxy.proxy import AccessPolicy
from mtproxy.reconcilers import accesscontroller
from mtproxy.reconcilers.accesscontroller import MetricAccessController
from mtproxy.remotewrite.job import RemoteWriteJob


class _Source:
    """An informer stand-in: a store and handlers, changed by the test."""

    def __init__(self) -> None:
        self._store: Store[dict[str, Any]] = Store()
        self._handlers: list[Callable[[Change], None]] = []
        self.synced = trio.Event()

    @property
    def store(self) -> StoreReader[dict[str, Any]]:
        return self._store

    def add_handler(self, handler: Callable[[Change], None]) -> None:
        self._handlers.append(handler)

    def has_synced(self) -> bool:
        return self.synced.is_set()

    async def wait_synced(self) -> None:
        await self.synced.wait()

    def put(self, obj: dict[str, Any]) -> None:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        old = self._store.put(namespace, name, obj)
        kind = ChangeType.ADDED if old is None else ChangeType.UPDATED
        for handler in self._handlers:
            handler(Change(type=kind, namespace=namespace, name=name, old=old, new=obj))


def _object(namespace: str, name: str, generation: int, metrics: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": generation,
                     "resourceVersion": str(generation * 10 + len(extra))},
        "spec": {"source": namespace, "metrics": metrics, "metricIsolation": True},
        **extra,
    }


REMOTE_WRITE = {"enabled": True, "target": {"type": "prometheus"}, "prometheus": {"serviceName": "prom"}}


@pytest.fixture
def published() -> dict[str, Any]:
    return {"policies": {}, "jobs": {}}


def _controller(source: _Source, published: dict[str, Any], statuses: list[str]) -> MetricAccessController:
    def policies(value: Mapping[str, AccessPolicy]) -> None:
        published["policies"] = dict(value)

    def jobs(value: Mapping[str, RemoteWriteJob]) -> None:
        published["jobs"] = dict(value)

    return MetricAccessController(
        source,
        config=Config(
            guardrails=GuardrailsConfig(require_isolation=True), remote_write=RemoteWriteConfig(enabled=True)
        ),
        publish_policies=policies,
        publish_jobs=jobs,
        notify_status=statuses.append,
    )


async def test_everything_listed_is_published_before_started(published: dict[str, Any]) -> None:
    source = _Source()
    statuses: list[str] = []
    controller = _controller(source, published, statuses)
    source.put(_object("team-a", "a", 1, ["up"]))
    source.put(_object("team-b", "b", 1, ["up"], spec=None))  # overwritten below
    source.put({**_object("team-b", "b", 1, ["up"]), "spec": {**_object("team-b", "b", 1, ["up"])["spec"],
                                                                "remoteWrite": REMOTE_WRITE}})
    source.synced.set()
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        assert controller.has_synced()
        assert set(published["policies"]) == {"team-a", "team-b"}
        assert set(published["jobs"]) == {"team-b/b"}
        nursery.cancel_scope.cancel()


async def test_a_status_only_update_runs_no_spec_work_but_reaches_the_status_writer(
    published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    judged: list[str] = []
    real_judge = accesscontroller.judge

    def counting(raw: Any, config: Config) -> Any:
        judged.append(raw["metadata"]["name"])
        return real_judge(raw, config)

    monkeypatch.setattr(accesscontroller, "judge", counting)
    source = _Source()
    statuses: list[str] = []
    controller = _controller(source, published, statuses)
    source.put(_object("team-a", "a", 1, ["up"]))
    source.synced.set()
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        source.put(_object("team-a", "a", 1, ["up"], status={"conditions": [{"type": "Ready", "status": "True"}]}))
        await trio.testing.wait_all_tasks_blocked()
        assert judged == ["a"]
        assert statuses[-1] == "team-a/a"
        # a status the schema would reject changes nothing a tenant may see
        source.put(_object("team-a", "a", 1, ["up"], status={"conditions": "garbage", "observedGeneration": "x"}))
        await trio.testing.wait_all_tasks_blocked()
        assert judged == ["a"] and "team-a" in published["policies"]
        source.put(_object("team-a", "a", 2, ["up", "http_.*"]))
        await trio.testing.wait_all_tasks_blocked()
        assert judged == ["a", "a"]
        assert len(published["policies"]["team-a"].rules) == 2
        nursery.cancel_scope.cancel()


async def test_a_reconcile_that_raises_is_retried_and_stops_nobody_else(
    published: dict[str, Any], monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    real_judge = accesscontroller.judge
    failures = {"count": 0}

    def flaky(raw: Any, config: Config) -> Any:
        if raw["metadata"]["name"] == "cursed" and failures["count"] < 8:
            failures["count"] += 1
            raise RuntimeError("a bug in one object")
        return real_judge(raw, config)

    monkeypatch.setattr(accesscontroller, "judge", flaky)
    source = _Source()
    statuses: list[str] = []
    controller = _controller(source, published, statuses)
    source.synced.set()
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        source.put(_object("team-a", "cursed", 1, ["up"]))
        source.put(_object("team-b", "fine", 1, ["up"]))
        await trio.sleep(0.05)
        assert "team-b" in published["policies"]
        assert "team-a" not in published["policies"]
        await trio.sleep(30)  # the rate limiter's backoff
        assert failures["count"] == 8
        assert "team-a" in published["policies"]
        assert controller.statistics().controllers[0].errors == 8
        nursery.cancel_scope.cancel()


async def test_a_deleted_object_revokes_its_grant_and_job(published: dict[str, Any]) -> None:
    source = _Source()
    statuses: list[str] = []
    controller = _controller(source, published, statuses)
    source.put({**_object("team-a", "a", 1, ["up"]), "spec": {**_object("team-a", "a", 1, ["up"])["spec"],
                                                                "remoteWrite": REMOTE_WRITE}})
    source.synced.set()
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        assert "team-a/a" in published["jobs"]
        old = source._store.remove("team-a", "a")
        assert old is not None
        for handler in source._handlers:
            handler(Change(type=ChangeType.DELETED, namespace="team-a", name="a", old=old, new=old))
        await trio.testing.wait_all_tasks_blocked()
        assert published["policies"] == {} and published["jobs"] == {}
        assert controller.verdict("team-a/a") is None
        nursery.cancel_scope.cancel()
