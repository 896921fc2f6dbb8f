"""The MetricAccess controller and the status writer on an API server (the double and the real one).

The informer, the controller and the writer run as the service wires them; the job
runner is replaced by a table of job statuses each test sets, so forwarding states can
be driven exactly. Every check reads the object back from the server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from mtproxy.api import Config, GuardrailsConfig, RemoteWriteConfig
from mtproxy.cmd.service import METRICACCESSES
from mtproxy.controller import EVENTS, EVENTS_V1, EventRecorder, Informer, KubeClient, NotFound
from mtproxy.proxy import AccessPolicy
from mtproxy.reconcilers.accesscontroller import MetricAccessController
from mtproxy.reconcilers.statuswriter import StatusWriter, merge_patch
from mtproxy.remotewrite.pipeline import PipelineStatistics
from mtproxy.remotewrite.runner import JobStatus
from mtproxy.remotewrite.senders import SenderStatistics


def _object(namespace: str, name: str, metrics: list[str], *, isolation: bool = True, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": namespace, "metrics": metrics, "metricIsolation": isolation, **spec},
    }


REMOTE_WRITE = {"enabled": True, "target": {"type": "prometheus"}, "prometheus": {"serviceName": "prom"}}


@dataclass
class _Harness:
    kube: KubeClient
    namespace: str
    controller: MetricAccessController
    writer: StatusWriter
    policies: dict[str, AccessPolicy]
    jobs: dict[str, JobStatus] = field(default_factory=dict)
    judged: list[str] = field(default_factory=list)

    async def get(self, name: str) -> dict[str, Any]:
        return await self.kube.get(METRICACCESSES, self.namespace, name)

    async def create(self, name: str, metrics: list[str], **spec: Any) -> dict[str, Any]:
        return await self.kube.create(METRICACCESSES, self.namespace, _object(self.namespace, name, metrics, **spec))

    async def replace_spec(self, name: str, metrics: list[str], **spec: Any) -> dict[str, Any]:
        current = await self.get(name)
        current["spec"] = _object(self.namespace, name, metrics, **spec)["spec"]
        return await self.kube.update(METRICACCESSES, self.namespace, current)

    async def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        status = (await self.get(name)).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)

    async def wait_condition(self, name: str, kind: str, status: str, reason: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] | None = None
        with trio.move_on_after(15):
            while True:
                found = await self.condition(name, kind)
                if found and found["status"] == status and (reason is None or found["reason"] == reason):
                    return found
                await trio.sleep(0.05)
        raise AssertionError(f"{name}: condition {kind} is {found}, not {status}/{reason}")

    async def events(self) -> list[tuple[str, str, str]]:
        """(type, reason, message) of every Event in the namespace, either API."""
        found: list[tuple[str, str, str]] = []
        for resource, text in ((EVENTS_V1, "note"), (EVENTS, "message")):
            try:
                items, _ = await self.kube.list(resource, self.namespace)
            except NotFound:
                continue
            found.extend((str(e.get("type")), str(e.get("reason")), str(e.get(text) or "")) for e in items)
        return found


def _job_status(key: str, *, failure: str | None, error: str | None = None, cycles: int = 1) -> JobStatus:
    target = PipelineStatistics(
        destination="http://prom/api/v1/write",
        healthy=failure is None,
        cursor_ms=1_700_000_000_000,
        samples_forwarded=42,
        stale_markers_sent=0,
        samples_dropped=0,
        series_last_cycle=3,
        last_success_ms=1_700_000_000_000 if failure is None else None,
        last_error=error,
        cycle_failure=failure,
        highest_sent_ms=1_700_000_000_000,
        sender=SenderStatistics(
            destination="http://prom/api/v1/write",
            requests=3,
            retries=1,
            samples_sent=42,
            samples_dropped_by_reason=(),
            last_error=error,
            last_success_monotonic=None,
            healthy=failure is None,
        ),
    )
    return JobStatus(
        key=key,
        active=True,
        last_collection_ms=1_700_000_000_000,
        last_successful_write_ms=1_700_000_000_000 if failure is None else None,
        series_collected=3,
        samples_forwarded=42,
        last_error=error,
        destinations=(target,),
        collisions=0,
        cycles_completed=cycles,
        failure_reason=failure,
        last_cycle_ms=1_700_000_000_000,
    )


@pytest.fixture
def config() -> Config:
    return Config(
        guardrails=GuardrailsConfig(require_isolation=True),
        remote_write=RemoteWriteConfig(enabled=True),
    )


@pytest.fixture
async def harness(kube: KubeClient, namespace: str, config: Config) -> AsyncIterator[_Harness]:
    informer = Informer(kube, METRICACCESSES, namespace=namespace)
    policies: dict[str, AccessPolicy] = {}
    holder: list[_Harness] = []

    def publish(published: Any) -> None:
        policies.clear()
        policies.update(published)

    writer_box: list[StatusWriter] = []
    controller = MetricAccessController(
        informer,
        config=config,
        publish_policies=publish,
        notify_status=lambda key: writer_box[0].enqueue(key),
    )
    writer = StatusWriter(
        kube,
        METRICACCESSES,
        store=informer.store,
        verdict_of=controller.verdict,
        job_status_of=lambda key: holder[0].jobs.get(key),
        forwarding_enabled=True,
        status_interval_s=0.5,
        recorder=EventRecorder(kube, controller="test/mtproxy", instance="test"),
    )
    writer_box.append(writer)
    harness = _Harness(kube=kube, namespace=namespace, controller=controller, writer=writer, policies=policies)
    holder.append(harness)
    original_judge = controller._judge

    def counting_judge(ns: str, name: str) -> bool:
        changed = original_judge(ns, name)
        if changed:
            harness.judged.append(f"{ns}/{name}")
        return changed

    controller._judge = counting_judge  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        await nursery.start(controller.run)
        await nursery.start(writer.run)
        yield harness
        nursery.cancel_scope.cancel()


async def test_a_valid_object_becomes_ready_with_every_observed_generation(harness: _Harness) -> None:
    created = await harness.create("app", ["up", "http_.*"])
    ready = await harness.wait_condition("app", "Ready", "True", "Ready")
    obj = await harness.get("app")
    generation = created["metadata"]["generation"]
    assert obj["status"]["observedGeneration"] == generation
    assert {c["type"]: c["observedGeneration"] for c in obj["status"]["conditions"]} == {
        "Valid": generation,
        "Ready": generation,
    }
    assert obj["status"]["validatedMetrics"] == ["up", "http_.*"]
    assert dt.datetime.strptime(ready["lastTransitionTime"], "%Y-%m-%dT%H:%M:%SZ")
    assert harness.namespace in harness.policies


async def test_an_invalid_regex_is_reported_with_its_field_path_and_a_warning_event(harness: _Harness) -> None:
    await harness.create("bad", ["up", "foo(("])
    await harness.create("good", ["up"])
    valid = await harness.wait_condition("bad", "Valid", "False", "InvalidSpec")
    assert "spec.metrics[1]" in valid["message"]
    ready = await harness.wait_condition("bad", "Ready", "False", "InvalidSpec")
    assert ready["observedGeneration"] == (await harness.get("bad"))["metadata"]["generation"]
    await harness.wait_condition("good", "Ready", "True")
    await wait_until_async(lambda: _has_event(harness, "Warning", "InvalidSpec", "spec.metrics[1]"))
    assert harness.policies[harness.namespace].rules  # the good object still grants

    await harness.replace_spec("bad", ["up", "foo.*"])
    await harness.wait_condition("bad", "Ready", "True")
    obj = await harness.get("bad")
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 2


async def test_a_guardrail_denial_names_the_guardrail_and_grants_nothing(harness: _Harness) -> None:
    await harness.create("open", ['{namespace="team-b"}'], isolation=False)
    valid = await harness.wait_condition("open", "Valid", "False", "PolicyDenied")
    assert "guardrails.require_isolation" in valid["message"]
    assert harness.namespace not in harness.policies
    await wait_until_async(lambda: _has_event(harness, "Warning", "PolicyDenied", "guardrails.require_isolation"))
    await harness.replace_spec("open", ["up"], isolation=True)
    await harness.wait_condition("open", "Ready", "True")
    assert harness.namespace in harness.policies


async def test_our_own_status_writes_cause_no_spec_work_and_no_more_writes(harness: _Harness) -> None:
    await harness.create("steady", ["up"])
    await harness.wait_condition("steady", "Ready", "True")
    await trio.sleep(1.5)  # three status intervals
    writes = harness.writer.statistics().writes
    assert harness.judged.count(f"{harness.namespace}/steady") == 1
    await trio.sleep(1.5)
    assert harness.writer.statistics().writes == writes
    assert harness.judged.count(f"{harness.namespace}/steady") == 1


async def test_a_wiped_status_is_written_again(harness: _Harness) -> None:
    await harness.create("wiped", ["up"])
    before = await harness.wait_condition("wiped", "Ready", "True")
    obj = await harness.get("wiped")
    path = METRICACCESSES.path(harness.namespace, "wiped", subresource="status")
    wiped = await harness.kube.request(
        "PATCH", path, body={"status": None}, content_type="application/merge-patch+json"
    )
    assert not wiped.get("status")  # the writer may already be rewriting it: read only the patch's answer
    wiped_version = int(wiped["metadata"]["resourceVersion"])
    await wait_until_async(
        lambda: _rewritten_after(harness, "wiped", wiped_version)
    )
    after = await harness.wait_condition("wiped", "Ready", "True")
    assert after["observedGeneration"] == obj["metadata"]["generation"]
    assert after["lastTransitionTime"] >= before["lastTransitionTime"]


async def test_forwarding_failures_and_recovery_show_in_conditions_and_events(harness: _Harness) -> None:
    key = f"{harness.namespace}/fwd"
    await harness.create("fwd", ["up"], remoteWrite=REMOTE_WRITE)
    pending = await harness.wait_condition("fwd", "Ready", "False", "ForwardingPending")
    assert (await harness.condition("fwd", "Forwarding") or {}).get("status") == "Unknown"
    assert pending["observedGeneration"] == 1

    harness.jobs[key] = _job_status(key, failure="SecretUnavailable", error="secret team-a/rw-token not found")
    harness.writer.enqueue(key)
    failing = await harness.wait_condition("fwd", "Forwarding", "False", "SecretUnavailable")
    assert "rw-token" in failing["message"]
    await harness.wait_condition("fwd", "Ready", "False", "SecretUnavailable")
    await wait_until_async(lambda: _has_event(harness, "Warning", "ForwardingFailed", "SecretUnavailable"))

    harness.jobs[key] = _job_status(key, failure=None)
    harness.writer.enqueue(key)
    await harness.wait_condition("fwd", "Forwarding", "True", "Forwarding")
    await harness.wait_condition("fwd", "Ready", "True")
    await wait_until_async(lambda: _has_event(harness, "Normal", "ForwardingRecovered", ""))
    obj = await harness.get("fwd")
    remote_write = obj["status"]["remoteWrite"]
    assert remote_write["active"] is True and remote_write["metricsCollected"] == 3
    assert remote_write["samplesForwarded"] == 42 and remote_write["targets"][0]["healthy"] is True
    assert "lastError" not in remote_write  # the recovered error is removed, not left behind


async def test_nothing_is_written_while_not_leading(
    kube: KubeClient, namespace: str, config: Config
) -> None:
    informer = Informer(kube, METRICACCESSES, namespace=namespace)
    writer_box: list[StatusWriter] = []
    controller = MetricAccessController(
        informer, config=config, publish_policies=lambda _: None, notify_status=lambda k: writer_box[0].enqueue(k)
    )
    writer = StatusWriter(
        kube, METRICACCESSES, store=informer.store, verdict_of=controller.verdict,
        job_status_of=lambda key: None, forwarding_enabled=True, status_interval_s=0.5,
    )
    writer_box.append(writer)
    await kube.create(METRICACCESSES, namespace, _object(namespace, "quiet", ["up"]))
    async with trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        await nursery.start(controller.run)
        await trio.sleep(1)
        assert not (await kube.get(METRICACCESSES, namespace, "quiet")).get("status")
        assert controller.verdict(f"{namespace}/quiet") is not None
        # leadership begins: the term's first pass writes every status
        async with trio.open_nursery() as term:
            await term.start(writer.run)
            await wait_until_async(lambda: _ready(kube, namespace, "quiet"))
            term.cancel_scope.cancel()
        nursery.cancel_scope.cancel()


async def _rewritten_after(harness: _Harness, name: str, version: int) -> bool:
    obj = await harness.get(name)
    return int(obj["metadata"]["resourceVersion"]) > version and bool(obj.get("status"))


async def _ready(kube: KubeClient, namespace: str, name: str) -> bool:
    status = (await kube.get(METRICACCESSES, namespace, name)).get("status") or {}
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])


async def _has_event(harness: _Harness, kind: str, reason: str, text: str) -> bool:
    return any(t == kind and r == reason and text in m for t, r, m in await harness.events())


async def wait_until_async(predicate: Callable[[], Any], *, timeout_s: float = 15.0) -> None:
    with trio.move_on_after(timeout_s):
        while not await predicate():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"condition not met within {timeout_s} s")


def test_merge_patch_nulls_what_went_away_and_keeps_what_stayed() -> None:
    current = {"a": 1, "b": {"x": 1, "y": 2}, "c": [1, 2]}
    desired = {"a": 1, "b": {"x": 3}, "c": [1]}
    assert merge_patch(current, desired) == {"b": {"x": 3, "y": None}, "c": [1]}
    assert merge_patch(None, {"a": 1}) == {"a": 1}
    assert merge_patch({"a": 1}, {"a": 1}) == {}





async def test_objects_outside_the_watched_namespaces_get_no_status(
    kube: KubeClient, namespace: str, config: Config, kube_server: Any
) -> None:
    other = f"{namespace}-x"
    await trio.to_thread.run_sync(
        kube_server.seed, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}}]
    )
    informer = Informer(kube, METRICACCESSES)  # cluster-wide, as with several watched namespaces
    writer_box: list[StatusWriter] = []
    watched = frozenset({namespace})
    controller = MetricAccessController(
        informer, config=config, publish_policies=lambda _: None, notify_status=lambda k: writer_box[0].enqueue(k),
        namespaces=watched,
    )
    writer = StatusWriter(
        kube, METRICACCESSES, store=informer.store, verdict_of=controller.verdict,
        job_status_of=lambda key: None, forwarding_enabled=True, status_interval_s=0.5, namespaces=watched,
    )
    writer_box.append(writer)
    await kube.create(METRICACCESSES, namespace, _object(namespace, "mine", ["up"]))
    await kube.create(METRICACCESSES, other, _object(other, "theirs", ["up"]))
    async with trio.open_nursery() as nursery:
        await nursery.start(informer.run)
        await nursery.start(controller.run)
        await nursery.start(writer.run)
        await wait_until_async(lambda: _ready(kube, namespace, "mine"))
        await trio.sleep(1)
        assert not (await kube.get(METRICACCESSES, other, "theirs")).get("status")
        statistics = writer.statistics().controller
        assert statistics is not None and statistics.queue_depth == 0
        nursery.cancel_scope.cancel()


async def test_many_objects_are_written_concurrently_while_the_api_server_is_slow(
    harness: _Harness, kube: KubeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_flight, most = 0, 0
    patch_status = kube.patch_status

    async def slow_patch_status(*args: Any, **kwargs: Any) -> dict[str, Any]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await trio.sleep(0.3)
            return await patch_status(*args, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(kube, "patch_status", slow_patch_status)
    names = [f"app-{i}" for i in range(12)]
    for name in names:
        await harness.create(name, ["up"])
    for name in names:
        await harness.wait_condition(name, "Ready", "True")
    assert most >= 4  # not two at a time: the writer keeps up with 1,000 objects on a slow API server
