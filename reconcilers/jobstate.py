"""Remote-write delivery progress kept in the cluster: one ConfigMap per job, no local disk.

Why a ConfigMap of the service's own, in its own namespace, and not the MetricAccess'
status: progress changes every batch, and writing it into the tenant's object would
wake every watcher of MetricAccess objects (kubectl -w, GitOps tools, our informers) as
often; tenants can edit their objects but not the service's namespace, so they cannot
rewind or forge another job's progress; and the service's RBAC stays narrow (ConfigMaps
in one namespace). The document is the state of ``mtproxy.remotewrite.state``:

- per destination, the *cursor* (end of the newest window fully delivered);
- per destination, the *marks* newer than that cursor (series delivered in a window still
  under way); a mark at or below the cursor can never matter again (a resumed cycle reads
  only samples after the cursor), so it is pruned, and in the steady state the document
  holds the cursors alone;
- per destination, the *in-flight* entries of a batch sent without an answer yet.

The pipeline records through the sync ``StateStore`` methods (kept in memory here) and
awaits ``make_durable`` before each send and at each cycle's end, so what a kill can
lose is settled by the in-flight record exactly as in files mode (the pipeline resends
those series alone first). Writes are updates carrying the resourceVersion this process
last saw, so a write from a replica that lost leadership meanwhile meets a 409: the
store re-reads the newest version and writes on top of it (the newest leader's state
wins because its term's writes come last), and says so in a warning.

Scale: a leadership term starts every job at once, and each job's first act is a
``restore``. Restores that start together are served by one read: a lone one GETs its
ConfigMap, several LIST the store's ConfigMaps (by label) once, and a restore never uses
a read sent before it was asked for, so each is still a read afresh. Every request of the
store passes a small concurrency limit (``max_concurrent_requests``): the store shares
the HTTP connection pool with the informers and the status writer, and a pool with
hundreds of queued requests spends its CPU matching them to connections (httpx's
dispatch is linear in the queue per completed request), on the event loop that also
renews the lease and answers health checks.

The state is gzip-compressed JSON under ``binaryData``; a document beyond
``max_bytes`` (a window of many tens of thousands of series under way) keeps its cursors
and in-flight entries and drops the marks, and a warning says a resume may resend
part of that window.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import trio

from mtproxy.controller import AlreadyExists, APIError, Conflict, KubeClient, NotFound, Resource
from mtproxy.remotewrite import JobState, MemoryStateStore, copy_state

__all__ = ["CONFIGMAPS", "ClusterStateStore", "ClusterStateStoreStatistics", "decode_state", "encode_state"]

logger = logging.getLogger(__name__)

CONFIGMAPS = Resource(group="", version="v1", plural="configmaps")
_KEY = "state.json.gz"
_JOB_ANNOTATION = "observability.ethos.io/remote-write-job"
_LABELS = {
    "app.kubernetes.io/name": "prometheus-multi-tenant-proxy",
    "app.kubernetes.io/component": "remote-write-state",
}
LABEL_SELECTOR = ",".join(f"{k}={v}" for k, v in _LABELS.items())


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterStateStoreStatistics:
    """Write counts of the store."""

    jobs: int
    writes: int
    write_failures: int
    conflicts: int
    restores: int
    oversized: int
    bytes_last_write: int


def config_map_name(job_key: str) -> str:
    """A stable, valid ConfigMap name for a ``namespace/name`` job key (hashed: names may be long)."""
    return "mtproxy-rw-state-" + hashlib.sha256(job_key.encode("utf-8")).hexdigest()[:24]


def _prune(state: JobState) -> JobState:
    pruned = copy_state(state)
    for destination, marks in pruned.marks.items():
        cursor = pruned.cursors.get(destination)
        if cursor is not None:
            pruned.marks[destination] = {digest: ts for digest, ts in marks.items() if ts > cursor}
    pruned.marks = {d: m for d, m in pruned.marks.items() if m}
    pruned.in_flight = {d: m for d, m in pruned.in_flight.items() if m}
    return pruned


def encode_state(state: JobState, *, with_marks: bool = True) -> bytes:
    """The compressed document of ``state`` (marks at or below each cursor left out)."""
    pruned = _prune(state)
    document = {
        "version": 1,
        "cursors": pruned.cursors,
        "marks": pruned.marks if with_marks else {},
        "in_flight": pruned.in_flight,
    }
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode("utf-8"), mtime=0)


def decode_state(blob: bytes) -> JobState:
    """The state of a document written by ``encode_state``.

    Raises:
        ValueError: The document is not one (corrupt, or of an unknown version).
    """
    try:
        document = json.loads(gzip.decompress(blob))
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(f"remote write state: unreadable document: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != 1:
        raise ValueError("remote write state: unknown document version")

    def table(name: str) -> dict[str, dict[str, int]]:
        value = document.get(name) or {}
        return {str(d): {str(h): int(t) for h, t in m.items()} for d, m in value.items()}

    return JobState(
        cursors={str(k): int(v) for k, v in (document.get("cursors") or {}).items()},
        marks=table("marks"),
        in_flight=table("in_flight"),
    )


class _RestoreRead:
    """One read serving every restore that joined it before it was sent."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.done = trio.Event()
        self.found: dict[str, dict[str, Any]] = {}
        """ConfigMap name -> ConfigMap, for the names that exist."""
        self.error: Exception | None = None
        self.abandoned = False
        """The task sending it was cancelled: whoever waited sends a read of its own."""


class ClusterStateStore:
    """A ``StateStore`` whose durable copy is a ConfigMap per job."""

    def __init__(
        self, client: KubeClient, namespace: str, *, max_bytes: int = 900_000, max_concurrent_requests: int = 8
    ) -> None:
        if not namespace:
            raise ValueError("namespace: must not be empty")
        if max_bytes < 1024:
            raise ValueError(f"max_bytes: must be at least 1024, got {max_bytes}")
        if max_concurrent_requests < 1:
            raise ValueError(f"max_concurrent_requests: must be at least 1, got {max_concurrent_requests}")
        self._client = client
        self._namespace = namespace
        self._max_bytes = max_bytes
        self._requests = trio.CapacityLimiter(max_concurrent_requests)
        self._joinable: _RestoreRead | None = None
        self._memory = MemoryStateStore()
        self._versions: dict[str, str] = {}
        """Per job, the resourceVersion of the ConfigMap as this process last wrote or read it."""
        self._dirty: set[str] = set()
        self._written_at: dict[str, float] = {}
        self._locks: dict[str, trio.Lock] = {}
        self._oversized_warned: set[str] = set()
        self._counts = {"writes": 0, "failures": 0, "conflicts": 0, "restores": 0, "oversized": 0, "bytes": 0}

    def statistics(self) -> ClusterStateStoreStatistics:
        """A snapshot for /metrics."""
        return ClusterStateStoreStatistics(
            jobs=len(self._versions),
            writes=self._counts["writes"],
            write_failures=self._counts["failures"],
            conflicts=self._counts["conflicts"],
            restores=self._counts["restores"],
            oversized=self._counts["oversized"],
            bytes_last_write=self._counts["bytes"],
        )

    # --- recording (sync, on the event loop) -------------------------------------------

    def load(self, job_key: str) -> JobState | None:
        return self._memory.load(job_key)

    def snapshot(self, job_key: str, state: JobState) -> Any:
        self._dirty.add(job_key)
        return self._memory.snapshot(job_key, state)

    def append_marks(self, job_key: str, destination: str, marks: list[tuple[str, int]]) -> None:
        self._dirty.add(job_key)
        self._memory.append_marks(job_key, destination, marks)

    def append_in_flight(self, job_key: str, destination: str, sending: list[tuple[str, int]]) -> None:
        self._dirty.add(job_key)
        self._memory.append_in_flight(job_key, destination, sending)

    def delete(self, job_key: str) -> None:
        self._memory.delete(job_key)
        self._dirty.discard(job_key)

    # --- the cluster copy ----------------------------------------------------------------

    def _lock(self, job_key: str) -> trio.Lock:
        return self._locks.setdefault(job_key, trio.Lock())

    async def restore(self, job_key: str) -> JobState | None:
        """Read the job's ConfigMap afresh (a quorum read), and record it as this process' copy."""
        async with self._lock(job_key):
            self._counts["restores"] += 1
            found = await self._read_afresh(job_key)
            if found is None:
                self._versions[job_key] = ""
                self._memory.delete(job_key)
                return None
            self._versions[job_key] = str(found["metadata"].get("resourceVersion", ""))
            blob = (found.get("binaryData") or {}).get(_KEY)
            if not blob:
                return None
            try:
                state = decode_state(base64.b64decode(blob))
            except ValueError as exc:
                logger.warning("remote write state unreadable", extra={"job": job_key, "error": str(exc)[:256]})
                return None
            self._memory.snapshot(job_key, state)
            self._dirty.discard(job_key)
            return state

    async def _read_afresh(self, job_key: str) -> dict[str, Any] | None:
        """The job's ConfigMap (None when there is none) from a read sent after this call began.

        Restores arriving together join one read: the first opens it and yields once, so
        that the others started in the same moment (a term starting every job) join, then
        closes it and sends it. One key is a GET, several a LIST by label.
        """
        name = config_map_name(job_key)
        while True:
            read = self._joinable
            if read is not None:
                read.keys.add(job_key)
                await read.done.wait()
            else:
                read = self._joinable = _RestoreRead()
                read.keys.add(job_key)
                try:
                    await trio.lowlevel.checkpoint()  # let the restores started with this one join
                finally:
                    if self._joinable is read:
                        self._joinable = None
                await self._send_read(read)
            if read.abandoned:
                continue
            if read.error is not None:
                # a new exception per caller: one instance raised in many tasks collects all their tracebacks
                raise _for_caller(read.error) from read.error
            return read.found.get(name)

    async def _send_read(self, read: _RestoreRead) -> None:
        try:
            async with self._requests:
                if len(read.keys) == 1:
                    (key,) = read.keys
                    name = config_map_name(key)
                    with contextlib.suppress(NotFound):
                        read.found[name] = await self._client.get(CONFIGMAPS, self._namespace, name)
                else:
                    items, _ = await self._client.list(CONFIGMAPS, self._namespace, label_selector=LABEL_SELECTOR)
                    wanted = {config_map_name(key) for key in read.keys}
                    for item in items:
                        name = str((item.get("metadata") or {}).get("name", ""))
                        if name in wanted:
                            read.found[name] = item
        except trio.Cancelled:
            read.abandoned = True
            raise
        except Exception as exc:
            read.error = exc  # raised to every caller of the read by _read_afresh
        finally:
            read.done.set()

    async def make_durable(self, job_key: str, *, max_age_ms: int = 0) -> None:
        if job_key not in self._dirty:
            await trio.lowlevel.checkpoint()
            return
        written_at = self._written_at.get(job_key)
        if max_age_ms and written_at is not None and (time.monotonic() - written_at) * 1000 < max_age_ms:
            await trio.lowlevel.checkpoint()
            return
        async with self._lock(job_key):
            if job_key not in self._dirty:
                return  # another destination of the job wrote it while this one waited
            state = self._memory.load(job_key) or JobState()
            self._dirty.discard(job_key)
            try:
                await self._write(job_key, state)
            except BaseException:
                self._dirty.add(job_key)
                self._counts["failures"] += 1
                raise
            self._written_at[job_key] = time.monotonic()

    async def _write(self, job_key: str, state: JobState) -> None:
        blob = encode_state(state)
        if len(blob) > self._max_bytes:
            self._counts["oversized"] += 1
            if job_key not in self._oversized_warned:
                self._oversized_warned.add(job_key)
                logger.warning(
                    "remote write state too large for the cluster",
                    extra={"job": job_key, "bytes": len(blob), "max_bytes": self._max_bytes},
                )
            blob = encode_state(state, with_marks=False)
        self._counts["bytes"] = len(blob)
        body = self._body(job_key, blob)
        version = self._versions.get(job_key)
        if version is None:  # never read: learn whether it exists first
            await self._refresh_version(job_key)
            version = self._versions.get(job_key, "")
        for _attempt in range(3):
            try:
                async with self._requests:
                    if version:
                        body["metadata"]["resourceVersion"] = version
                        written = await self._client.update(CONFIGMAPS, self._namespace, body)
                    else:
                        body["metadata"].pop("resourceVersion", None)
                        written = await self._client.create(CONFIGMAPS, self._namespace, body)
            except (Conflict, AlreadyExists, NotFound):
                self._counts["conflicts"] += 1
                logger.warning("remote write state changed by another writer", extra={"job": job_key})
                await self._refresh_version(job_key)
                version = self._versions.get(job_key, "")
                continue
            self._versions[job_key] = str(written["metadata"].get("resourceVersion", ""))
            self._counts["writes"] += 1
            return
        raise APIError(409, "Conflict", f"remote write state of {job_key}: three conflicting writes in a row")

    async def _refresh_version(self, job_key: str) -> None:
        try:
            async with self._requests:
                found = await self._client.get(CONFIGMAPS, self._namespace, config_map_name(job_key))
        except NotFound:
            self._versions[job_key] = ""
            return
        self._versions[job_key] = str(found["metadata"].get("resourceVersion", ""))

    def _body(self, job_key: str, blob: bytes) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": config_map_name(job_key),
                "namespace": self._namespace,
                "labels": dict(_LABELS),
                "annotations": {_JOB_ANNOTATION: job_key},
            },
            "binaryData": {_KEY: base64.b64encode(blob).decode("ascii")},
        }

    async def forget(self, job_key: str) -> None:
        """Delete the job's ConfigMap (its job went away)."""
        async with self._lock(job_key):
            self.delete(job_key)
            self._versions.pop(job_key, None)
            self._written_at.pop(job_key, None)
            with contextlib.suppress(NotFound):
                async with self._requests:
                    await self._client.delete(CONFIGMAPS, self._namespace, config_map_name(job_key))
        self._locks.pop(job_key, None)


def _for_caller(error: Exception) -> Exception:
    if isinstance(error, APIError):
        return APIError(error.status, error.reason, error.message)
    return RuntimeError(f"{type(error).__name__}: {error}")

