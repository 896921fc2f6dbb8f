"""Where a job resumes after a restart: per-destination cursors and high-water marks.

A destination's *cursor* is the end of the newest window it has fully received; its
*marks* are the newest delivered timestamp per series (by a 64-bit hash of the output
label set, to keep the file small); its *in-flight* entries are the newest timestamps
per series of a request sent but not yet answered. ``FileStateStore`` (files mode,
``remote_write.state_dir``) writes a snapshot atomically at each window's end and
appends to a journal in between (the destinations of a job share its files; a snapshot
is captured on the event loop, where it also starts a new journal, and written in a
worker thread, so what other destinations journal meanwhile is never deleted with the
old journal): the in-flight entries of each batch before it is sent,
and its marks once it is answered. So a process killed mid-window resends nothing the
receiver is known to have, and knows exactly which request's fate it does not know (the
receiver may have stored a request whose answer the kill cut off), which the pipeline
then settles before sending newer samples. ``MemoryStateStore`` keeps nothing across
restarts (tests); Kubernetes mode keeps the same state in the cluster
(``mtproxy.reconcilers.jobstate``).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import trio

from mtproxy.remotewrite.watermarks import SeriesKey

__all__ = ["NO_WRITE", "FileStateStore", "JobState", "MemoryStateStore", "StateStore", "copy_state", "series_hash"]


def series_hash(key: SeriesKey) -> str:
    """A stable 64-bit hex digest of an output label set.

    BLAKE2b-64 of each name and value in UTF-8 (lone surrogates passed through), each name
    followed by 0xFF and each value by 0xFE: state files name series by it, so it never
    changes. An ASCII label set is joined as text and encoded once (Latin-1 writes the two
    separators as single bytes): the same bytes, without a step per label.
    """
    if key:
        try:
            text = ("\xfe".join(map("\xff".join, key)) + "\xfe").encode("latin-1")
        except UnicodeEncodeError:  # beyond Latin-1: not ASCII
            pass
        else:
            # ASCII labels: every other byte is below 0x80, and 0xFF/0xFE come once per label
            if (
                text.translate(None, b"\xfe\xff").isascii()
                and text.count(b"\xff") == len(key)
                and text.count(b"\xfe") == len(key)
            ):
                return hashlib.blake2b(text, digest_size=8).hexdigest()
    text = b"".join(
        [
            name.encode("utf-8", "surrogatepass") + b"\xff" + value.encode("utf-8", "surrogatepass") + b"\xfe"
            for name, value in key
        ]
    )
    return hashlib.blake2b(text, digest_size=8).hexdigest()


@dataclass(slots=True, kw_only=True)
class JobState:
    """Resume points of one job (mutable: the pipeline updates it as it goes)."""

    cursors: dict[str, int] = field(default_factory=dict)
    marks: dict[str, dict[str, int]] = field(default_factory=dict)
    in_flight: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per destination, series hash → newest timestamp of a request that has no answer yet."""


class StateStore(Protocol):
    """Persistence of job state.

    The sync methods record; ``make_durable`` is the barrier the pipeline awaits before it
    sends a batch (after ``append_in_flight``) and at the end of each cycle: once it
    returns, what was recorded survives a kill of the process. A store that writes as it
    records (files) returns at once; one that keeps the state in the cluster writes there.
    """

    def load(self, job_key: str) -> JobState | None: ...

    async def restore(self, job_key: str) -> JobState | None:
        """``load`` from the authoritative copy (a store kept elsewhere reads it afresh)."""
        ...

    async def make_durable(self, job_key: str, *, max_age_ms: int = 0) -> None:
        """Return once everything recorded for ``job_key`` so far would survive a restart.

        With ``max_age_ms``, a store that writes elsewhere may skip the write when its last
        one is younger than that: the pipeline passes its interval at a cycle's end, where
        losing the newest marks costs a resend that the in-flight record settles, not data.
        """
        ...

    async def forget(self, job_key: str) -> None:
        """``delete`` the job's state wherever it is kept (its job went away)."""
        ...

    def snapshot(self, job_key: str, state: JobState) -> Callable[[], None]:
        """Capture ``state`` now and return the write, to be run in a worker thread.

        The capture copies the state, and entries appended after it are kept until a
        snapshot holding them is written; so it is called on the event loop, between two
        changes of the state. Writes of several snapshots may overlap: the newest wins.
        """
        ...

    def append_marks(self, job_key: str, destination: str, marks: list[tuple[str, int]]) -> None: ...

    def append_in_flight(self, job_key: str, destination: str, sending: list[tuple[str, int]]) -> None: ...

    def delete(self, job_key: str) -> None: ...


class MemoryStateStore:
    """State that lives as long as the process (tests, Kubernetes mode)."""

    def __init__(self) -> None:
        self._states: dict[str, JobState] = {}

    def load(self, job_key: str) -> JobState | None:
        state = self._states.get(job_key)
        return None if state is None else _copy(state)

    async def restore(self, job_key: str) -> JobState | None:
        await trio.lowlevel.checkpoint()
        return self.load(job_key)

    async def make_durable(self, job_key: str, *, max_age_ms: int = 0) -> None:
        await trio.lowlevel.checkpoint()

    async def forget(self, job_key: str) -> None:
        await trio.lowlevel.checkpoint()
        self.delete(job_key)

    def snapshot(self, job_key: str, state: JobState) -> Callable[[], None]:
        self._states[job_key] = _copy(state)
        return _nothing

    def append_marks(self, job_key: str, destination: str, marks: list[tuple[str, int]]) -> None:
        state = self._states.setdefault(job_key, JobState())
        state.marks.setdefault(destination, {}).update(marks)
        in_flight = state.in_flight.get(destination)
        if in_flight:
            for digest, timestamp in marks:
                if in_flight.get(digest, timestamp) <= timestamp:
                    in_flight.pop(digest, None)

    def append_in_flight(self, job_key: str, destination: str, sending: list[tuple[str, int]]) -> None:
        self._states.setdefault(job_key, JobState()).in_flight.setdefault(destination, {}).update(sending)

    def delete(self, job_key: str) -> None:
        self._states.pop(job_key, None)


class FileStateStore:
    """One snapshot file and one journal per job under a directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._directory = Path(directory)
        self._directory.mkdir(parents=True, exist_ok=True)
        self._generations: dict[str, int] = {}
        """Per job, the number of the newest captured snapshot (event loop only)."""
        self._written: dict[str, int] = {}
        """Per job, the number of the snapshot on disk (worker threads, under the lock)."""
        self._write_lock = threading.Lock()

    def _paths(self, job_key: str) -> tuple[Path, Path]:
        safe = job_key.replace("/", "__")
        return self._directory / f"{safe}.json", self._directory / f"{safe}.journal"

    def _rotated(self, job_key: str) -> list[tuple[int, Path]]:
        """Journals set aside by captured snapshots not yet written, oldest first."""
        _, journal = self._paths(job_key)
        name = re.compile(re.escape(journal.name) + r"\.([0-9]+)")  # exactly: job names may hold dots
        found = []
        for path in self._directory.glob(f"{glob.escape(journal.name)}.*"):
            matched = name.fullmatch(path.name)
            if matched is not None:
                found.append((int(matched.group(1)), path))
        return sorted(found)

    def load(self, job_key: str) -> JobState | None:
        snapshot, journal = self._paths(job_key)
        if not snapshot.exists() and not journal.exists():
            return None
        state = JobState()
        if snapshot.exists():
            document = json.loads(snapshot.read_text(encoding="utf-8"))
            state.cursors = {str(k): int(v) for k, v in document.get("cursors", {}).items()}
            state.marks = {str(d): {str(h): int(t) for h, t in m.items()} for d, m in document.get("marks", {}).items()}
            state.in_flight = {
                str(d): {str(h): int(t) for h, t in m.items()} for d, m in document.get("in_flight", {}).items()
            }
        for path in [path for _, path in self._rotated(job_key)] + [journal]:
            if not path.exists():
                continue
            # replaying a set-aside journal over a newer snapshot changes nothing: marks only
            # move forward, and each batch's "sending" line comes before its mark line
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    destination, digest, timestamp, *sending = json.loads(line)
                except (ValueError, TypeError):
                    continue  # a torn last line from a kill mid-write
                if sending:
                    _apply_in_flight(state, str(destination), str(digest), int(timestamp))
                else:
                    _apply_mark(state, str(destination), str(digest), int(timestamp))
        return state

    async def restore(self, job_key: str) -> JobState | None:
        return await trio.to_thread.run_sync(self.load, job_key)

    async def make_durable(self, job_key: str, *, max_age_ms: int = 0) -> None:
        await trio.lowlevel.checkpoint()  # every append is written before it returns

    async def forget(self, job_key: str) -> None:
        await trio.to_thread.run_sync(self.delete, job_key)

    def snapshot(self, job_key: str, state: JobState) -> Callable[[], None]:
        snapshot, journal = self._paths(job_key)
        generation = self._generations.get(job_key)
        if generation is None:
            generation = max((number for number, _ in self._rotated(job_key)), default=0)
        generation += 1
        self._generations[job_key] = generation
        copy = _copy(state)
        if journal.exists():
            os.replace(journal, journal.with_name(f"{journal.name}.{generation}"))

        def write() -> None:
            text = json.dumps({"cursors": copy.cursors, "marks": copy.marks, "in_flight": copy.in_flight})
            with self._write_lock:
                if self._written.get(job_key, 0) >= generation:
                    return  # a newer snapshot is on disk already
                temporary = snapshot.with_suffix(".tmp")
                temporary.write_text(text, encoding="utf-8")
                os.replace(temporary, snapshot)
                self._written[job_key] = generation
                for number, path in self._rotated(job_key):
                    if number <= generation:
                        path.unlink(missing_ok=True)

        return write

    def append_marks(self, job_key: str, destination: str, marks: list[tuple[str, int]]) -> None:
        _, journal = self._paths(job_key)
        with journal.open("a", encoding="utf-8") as handle:
            handle.write(_journal_lines(destination, marks, ""))
            handle.flush()

    def append_in_flight(self, job_key: str, destination: str, sending: list[tuple[str, int]]) -> None:
        _, journal = self._paths(job_key)
        with journal.open("a", encoding="utf-8") as handle:
            handle.write(_journal_lines(destination, sending, ', "sending"'))
            handle.flush()

    def delete(self, job_key: str) -> None:
        for path in [*self._paths(job_key), *(path for _, path in self._rotated(job_key))]:
            path.unlink(missing_ok=True)


def _journal_lines(destination: str, entries: list[tuple[str, int]], tail: str) -> str:
    """``json.dumps([destination, digest, ts(, "sending")])`` per entry, one per line, byte for byte.

    A batch journals thousands of entries; a hex digest and an int need no escaping, so the
    line is formatted directly (any other digest goes through ``json.dumps``).
    """
    head = json.dumps(destination)
    out = []
    for digest, ts in entries:
        if digest.isascii() and digest.isalnum() and type(ts) is int:
            out.append(f'[{head}, "{digest}", {ts}{tail}]\n')
        else:
            out.append(json.dumps([destination, digest, ts, *(["sending"] if tail else [])]) + "\n")
    return "".join(out)


def _nothing() -> None:
    return None


NO_WRITE: Callable[[], None] = _nothing
"""What ``snapshot`` returns when there is nothing to write (the pipeline then skips the worker thread)."""


def copy_state(state: JobState) -> JobState:
    """A deep copy of ``state``."""
    return _copy(state)


def _copy(state: JobState) -> JobState:
    return JobState(
        cursors=dict(state.cursors),
        marks={k: dict(v) for k, v in state.marks.items()},
        in_flight={k: dict(v) for k, v in state.in_flight.items()},
    )


def _apply_mark(state: JobState, destination: str, digest: str, timestamp: int) -> None:
    """A batch was answered: the mark moves forward only, and settles what was in flight up to it."""
    marks = state.marks.setdefault(destination, {})
    if timestamp > marks.get(digest, -(2**63)):
        marks[digest] = timestamp
    in_flight = state.in_flight.get(destination, {})
    if in_flight.get(digest, timestamp) <= timestamp:
        in_flight.pop(digest, None)


def _apply_in_flight(state: JobState, destination: str, digest: str, timestamp: int) -> None:
    in_flight = state.in_flight.setdefault(destination, {})
    in_flight[digest] = max(timestamp, in_flight.get(digest, timestamp))
