"""Where a job resumes after a restart: per-destination cursors and high-water marks.

A destination's *cursor* is the end of the newest window it has fully received; its
*marks* are the newest delivered timestamp per series (by a 64-bit hash of the output
label set, to keep the file small). ``FileStateStore`` (files mode,
``remote_write.state_dir``) writes a snapshot atomically at each window's end and
appends the marks of every acknowledged batch to a journal in between, so a process
killed mid-window resends nothing the receiver already has (the one gap: a kill between
the receiver's 2xx and the journal write, a few microseconds). ``MemoryStateStore``
keeps nothing across restarts; Kubernetes mode resumes from ``status.lastCollection``
instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mtproxy.remotewrite.watermarks import SeriesKey

__all__ = ["FileStateStore", "JobState", "MemoryStateStore", "StateStore", "series_hash"]


def series_hash(key: SeriesKey) -> str:
    """A stable 64-bit hex digest of an output label set."""
    digest = hashlib.blake2b(digest_size=8)
    for name, value in key:
        digest.update(
            name.encode("utf-8", "surrogatepass") + b"\xff" + value.encode("utf-8", "surrogatepass") + b"\xfe"
        )
    return digest.hexdigest()


@dataclass(slots=True, kw_only=True)
class JobState:
    """Resume points of one job (mutable: the pipeline updates it as it goes)."""

    cursors: dict[str, int] = field(default_factory=dict)
    marks: dict[str, dict[str, int]] = field(default_factory=dict)


class StateStore(Protocol):
    """Persistence of job state."""

    def load(self, job_key: str) -> JobState | None: ...

    def save(self, job_key: str, state: JobState) -> None: ...

    def append_marks(self, job_key: str, destination: str, marks: list[tuple[str, int]]) -> None: ...

    def delete(self, job_key: str) -> None: ...


class MemoryStateStore:
    """State that lives as long as the process (tests, Kubernetes mode)."""

    def __init__(self) -> None:
        self._states: dict[str, JobState] = {}

    def load(self, job_key: str) -> JobState | None:
        state = self._states.get(job_key)
        return (
            None
            if state is None
            else JobState(cursors=dict(state.cursors), marks={k: dict(v) for k, v in state.marks.items()})
        )

    def save(self, job_key: str, state: JobState) -> None:
        self._states[job_key] = JobState(
            cursors=dict(state.cursors), marks={k: dict(v) for k, v in state.marks.items()}
        )

    def append_marks(self, job_key: str, destination: str, marks: list[tuple[str, int]]) -> None:
        state = self._states.setdefault(job_key, JobState())
        state.marks.setdefault(destination, {}).update(marks)

    def delete(self, job_key: str) -> None:
        self._states.pop(job_key, None)


class FileStateStore:
    """One snapshot file and one journal per job under a directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._directory = Path(directory)
        self._directory.mkdir(parents=True, exist_ok=True)

    def _paths(self, job_key: str) -> tuple[Path, Path]:
        safe = job_key.replace("/", "__")
        return self._directory / f"{safe}.json", self._directory / f"{safe}.journal"

    def load(self, job_key: str) -> JobState | None:
        snapshot, journal = self._paths(job_key)
        if not snapshot.exists() and not journal.exists():
            return None
        state = JobState()
        if snapshot.exists():
            document = json.loads(snapshot.read_text(encoding="utf-8"))
            state.cursors = {str(k): int(v) for k, v in document.get("cursors", {}).items()}
            state.marks = {str(d): {str(h): int(t) for h, t in m.items()} for d, m in document.get("marks", {}).items()}
        if journal.exists():
            for line in journal.read_text(encoding="utf-8").splitlines():
                try:
                    destination, digest, timestamp = json.loads(line)
                except ValueError:
                    continue  # a torn last line from a kill mid-write
                marks = state.marks.setdefault(str(destination), {})
                if int(timestamp) > marks.get(str(digest), -(2**63)):
                    marks[str(digest)] = int(timestamp)
        return state

    def save(self, job_key: str, state: JobState) -> None:
        snapshot, journal = self._paths(job_key)
        temporary = snapshot.with_suffix(".tmp")
        temporary.write_text(json.dumps({"cursors": state.cursors, "marks": state.marks}), encoding="utf-8")
        os.replace(temporary, snapshot)
        journal.unlink(missing_ok=True)

    def append_marks(self, job_key: str, destination: str, marks: list[tuple[str, int]]) -> None:
        _, journal = self._paths(job_key)
        with journal.open("a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps([destination, digest, ts]) + "\n" for digest, ts in marks))
            handle.flush()

    def delete(self, job_key: str) -> None:
        for path in self._paths(job_key):
            path.unlink(missing_ok=True)
