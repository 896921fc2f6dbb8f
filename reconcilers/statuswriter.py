"""Writes each MetricAccess' status back, and records Events, on the elected leader only.

A controller on the ``controller`` package's work queue (key: the object), started anew
for every leadership term in the leader-only level, so the moment leadership is lost
its workers are cancelled and nothing more is written. Each term begins by visiting
every object. Keys come from the MetricAccess controller (a new verdict, a status
someone else changed, the periodic resync) and from the job runner (a cycle ended).

A reconcile reads the object from the informer's store, its verdict and its job's
status, computes the status they call for (``reconcilers.status``), and writes only
when it differs: conditions at once, counters at most every ``status_interval_s``. The
write is a merge patch of the ``status`` subresource carrying the resourceVersion it was
computed from; on 409 the object is read again and the status recomputed (at most three
times), so a status is never written over a newer object blindly. Keys that a patch
would drop are sent as null, as RFC 7386 requires.

Each worker waits for one API round trip at a time, so the writer's throughput is
``workers`` over the API server's write latency. A term's first visit writes every object,
and at ``status_interval`` every forwarding object is written again each interval (1,000
objects at 30 s: 33 writes/s), so the default is 8 workers: two would need answers within
60 ms to keep up, which a busy API server does not give. The client's rate limit still
bounds the load on the API server.

Events follow the status: a Warning ``InvalidSpec``/``PolicyDenied`` when an object
(generation) becomes not in force, a Warning ``ForwardingFailed`` when forwarding turns
False, a Normal ``ForwardingRecovered`` when it turns True again. They are decided by
comparing the status in the cluster with the one being written, so a new leader does not
repeat the Events its predecessor recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from mtproxy.api import API_VERSION, KIND
from mtproxy.controller import (
    Conflict,
    Controller,
    ControllerStatistics,
    EventRecorder,
    KubeClient,
    NotFound,
    Request,
    Resource,
    Result,
    StoreReader,
)
from mtproxy.reconcilers.status import (
    CONDITION_FORWARDING,
    CONDITION_VALID,
    condition_of,
    desired_status,
    needs_write,
)
from mtproxy.reconcilers.verdict import Verdict, fingerprint_of
from mtproxy.remotewrite.runner import JobStatus

__all__ = ["StatusWriter", "StatusWriterStatistics", "merge_patch"]

logger = logging.getLogger(__name__)

RawObject = dict[str, Any]
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusWriterStatistics:
    """Write counts, and the controller of the current term (None when not leading)."""

    writes: int
    conflicts: int
    skipped: int
    events: int
    leading: bool
    controller: ControllerStatistics | None


def merge_patch(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7386 merge patch turning ``current`` into ``desired`` (removed keys become null)."""
    patch: dict[str, Any] = {}
    current = current or {}
    for key in current:
        if key not in desired:
            patch[key] = None
    for key, value in desired.items():
        old = current.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            inner = merge_patch(old, value)
            if inner:
                patch[key] = inner
        elif old != value or key not in current:
            patch[key] = value
    return patch


class StatusWriter:
    """The leader-only status controller."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        *,
        store: StoreReader[RawObject],
        verdict_of: Callable[[str], Verdict | None],
        job_status_of: Callable[[str], JobStatus | None],
        forwarding_enabled: bool,
        status_interval_s: float = 30.0,
        recorder: EventRecorder | None = None,
        workers: int = 8,
        namespaces: frozenset[str] | None = None,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        if status_interval_s <= 0:
            raise ValueError(f"status_interval_s: must be positive, got {status_interval_s}")
        self._client = client
        self._resource = resource
        self._store = store
        self._verdict_of = verdict_of
        self._job_status_of = job_status_of
        self._forwarding_enabled = forwarding_enabled
        self._interval_s = status_interval_s
        self._recorder = recorder
        self._workers = workers
        self._namespaces = namespaces
        """Only objects in these namespaces get a status (None: every namespace)."""
        self._now = wall_clock
        self._controller: Controller | None = None
        self._counters_at: dict[str, float] = {}
        self._counts = {"writes": 0, "conflicts": 0, "skipped": 0, "events": 0}

    def enqueue(self, key: str) -> None:
        """Ask for the object's status to be checked (ignored while not leading)."""
        namespace, _, name = key.partition("/")
        if self._controller is not None and (self._namespaces is None or namespace in self._namespaces):
            self._controller.enqueue(namespace, name)

    def statistics(self) -> StatusWriterStatistics:
        """A snapshot."""
        return StatusWriterStatistics(
            writes=self._counts["writes"],
            conflicts=self._counts["conflicts"],
            skipped=self._counts["skipped"],
            events=self._counts["events"],
            leading=self._controller is not None,
            controller=None if self._controller is None else self._controller.statistics(),
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """One leadership term: visit every object, then follow the keys until cancelled."""
        controller = Controller("status", self._reconcile, workers=self._workers)
        self._counters_at.clear()
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(controller.run)
                self._controller = controller
                for namespace in self._store.namespaces():
                    if self._namespaces is not None and namespace not in self._namespaces:
                        continue
                    for name in self._store.in_namespace(namespace):
                        controller.enqueue(namespace, name)
                task_status.started()
        finally:
            self._controller = None

    async def _reconcile(self, request: Request) -> Result:
        key = f"{request.namespace}/{request.name}"
        raw = self._store.get(request.namespace, request.name)
        if raw is None:
            self._counters_at.pop(key, None)
            return Result()
        for _attempt in range(_ATTEMPTS):
            verdict = self._verdict_of(key)
            if verdict is None:
                # Not judged (yet): the MetricAccess controller enqueues the key once it has a
                # verdict. Objects of namespaces the service does not watch never get one (the
                # informer lists every namespace when several are watched): requeueing them
                # would revisit each of them every second for ever.
                return Result()
            if verdict.fingerprint != fingerprint_of(raw):
                return Result(requeue_after_s=1.0)  # the object changed; its verdict follows and re-enqueues
            outcome = await self._write_once(key, raw, verdict)
            if outcome is not None:
                return outcome
            try:
                raw = await self._client.get(self._resource, request.namespace, request.name)
            except NotFound:
                return Result()
        raise Conflict(409, "Conflict", f"status of {key}: {_ATTEMPTS} conflicting writes in a row")

    async def _write_once(self, key: str, raw: RawObject, verdict: Verdict) -> Result | None:
        """Write the status if needed; the Result, or None after a conflict (read again)."""
        job = self._job_status_of(key)
        now = trio.current_time()
        due = now - self._counters_at.get(key, -1e18) >= self._interval_s
        current = raw.get("status") if isinstance(raw.get("status"), Mapping) else None
        desired = desired_status(
            verdict,
            job,
            current=current,
            now=self._now(),
            forwarding_enabled=self._forwarding_enabled,
            refresh_counters=due,
        )
        wants_counters = verdict.forwarding_requested and verdict.in_force and job is not None
        if not needs_write(current, desired, counters_due=due):
            self._counts["skipped"] += 1
            return self._next_visit(key, wants_counters, now)
        if not due:  # a condition changed: the write happens anyway, so it carries fresh counters
            desired = desired_status(
                verdict,
                job,
                current=current,
                now=self._now(),
                forwarding_enabled=self._forwarding_enabled,
                refresh_counters=True,
            )
        patch = merge_patch(current, desired)
        metadata = raw.get("metadata") or {}
        try:
            await self._client.patch_status(
                self._resource,
                str(metadata.get("namespace") or ""),
                str(metadata.get("name") or ""),
                patch,
                resource_version=str(metadata.get("resourceVersion") or "") or None,
            )
        except Conflict:
            self._counts["conflicts"] += 1
            return None
        except NotFound:
            return Result()
        self._counts["writes"] += 1
        if "lastUpdated" in desired and desired.get("lastUpdated") != (current or {}).get("lastUpdated"):
            self._counters_at[key] = now
        logger.debug("status written", extra={"metricaccess": key, "generation": verdict.generation})
        await self._record_events(raw, verdict, current, desired)
        return self._next_visit(key, wants_counters, now)

    def _next_visit(self, key: str, wants_counters: bool, now: float) -> Result:
        if not wants_counters:
            return Result()
        remaining = self._interval_s - (now - self._counters_at.get(key, now))
        return Result(requeue_after_s=max(1.0, remaining))

    async def _record_events(
        self, raw: RawObject, verdict: Verdict, current: Mapping[str, Any] | None, desired: Mapping[str, Any]
    ) -> None:
        if self._recorder is None:
            return
        involved = {"apiVersion": raw.get("apiVersion", API_VERSION), "kind": raw.get("kind", KIND),
                    "metadata": raw.get("metadata") or {}}
        events: list[tuple[bool, str, str]] = []
        new_valid = condition_of(desired, CONDITION_VALID)
        old_valid = condition_of(current, CONDITION_VALID)
        if new_valid is not None and new_valid.get("status") == "False" and (
            old_valid is None
            or old_valid.get("status") != "False"
            or old_valid.get("reason") != new_valid.get("reason")
            or old_valid.get("observedGeneration") != new_valid.get("observedGeneration")
            or old_valid.get("message") != new_valid.get("message")
        ):
            events.append((True, str(new_valid.get("reason")), str(new_valid.get("message"))))
        new_forwarding = condition_of(desired, CONDITION_FORWARDING)
        old_forwarding = condition_of(current, CONDITION_FORWARDING)
        new_state = None if new_forwarding is None else new_forwarding.get("status")
        old_state = None if old_forwarding is None else old_forwarding.get("status")
        if new_state == "False" and old_state != "False":
            message = f"{new_forwarding.get('reason')}: {new_forwarding.get('message')}"  # type: ignore[union-attr]
            events.append((True, "ForwardingFailed", message))
        elif new_state == "True" and old_state == "False":
            events.append((False, "ForwardingRecovered", str(new_forwarding.get("message"))))  # type: ignore[union-attr]
        for warning, reason, message in events:
            if await self._recorder.record(involved, warning=warning, reason=reason, message=message):
                self._counts["events"] += 1
