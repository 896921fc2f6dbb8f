"""State files: series hashes never change, and journal lines are the JSON the loader reads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mtproxy.remotewrite.state import FileStateStore, JobState, _journal_lines, series_hash
from mtproxy.remotewrite.watermarks import SeriesKey

label_sets = st.dictionaries(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8), max_size=6).map(
    lambda labels: tuple(sorted(labels.items()))
)


def _as_first_written(key: SeriesKey) -> str:
    """The definition the state files were first written with, step by step."""
    digest = hashlib.blake2b(digest_size=8)
    for name, value in key:
        digest.update(
            name.encode("utf-8", "surrogatepass") + b"\xff" + value.encode("utf-8", "surrogatepass") + b"\xfe"
        )
    return digest.hexdigest()


@given(label_sets)
def test_series_hash_is_the_definition_state_files_use(key: SeriesKey) -> None:
    assert series_hash(key) == _as_first_written(key)


def test_series_hash_of_labels_that_look_like_its_separators_or_are_surrogates() -> None:
    for key in [(("a", "\xff"),), (("\xfe", "\xff\xfe"),), (("a", "\ud800"),), (("é", "ÿ"),), ()]:
        assert series_hash(key) == _as_first_written(key)


def test_series_hash_values_are_pinned() -> None:
    assert series_hash((("__name__", "up"), ("job", "node"), ("zone", "é"))) == "07938f5d950c320c"
    assert series_hash(()) == "e4a6a0577479b2b4"


@given(
    st.text(max_size=12),
    st.lists(st.tuples(st.one_of(st.from_regex(r"[0-9a-f]{16}", fullmatch=True), st.text(max_size=6)), st.integers())),
)
def test_journal_lines_are_the_json_lines_the_loader_reads(destination: str, entries: list[tuple[str, int]]) -> None:
    expected_marks = "".join(json.dumps([destination, digest, ts]) + "\n" for digest, ts in entries)
    expected_sending = "".join(json.dumps([destination, digest, ts, "sending"]) + "\n" for digest, ts in entries)
    assert _journal_lines(destination, entries, "") == expected_marks
    assert _journal_lines(destination, entries, ', "sending"') == expected_sending


def test_a_journal_written_and_read_back_gives_the_marks_and_in_flight_entries(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.append_in_flight("ns/job", 'tenant "a"', [("00ff", 5), ("0abc", 7)])
    store.append_marks("ns/job", 'tenant "a"', [("00ff", 5)])
    loaded = store.load("ns/job")
    assert loaded is not None
    assert loaded.marks == {'tenant "a"': {"00ff": 5}}
    assert loaded.in_flight == {'tenant "a"': {"0abc": 7}}


# -- snapshots while other destinations of the job keep journaling ---------------------------


def _state(**marks: dict[str, int]) -> JobState:
    return JobState(cursors={d: 1000 for d in marks}, marks={d: dict(m) for d, m in marks.items()})


def test_entries_journaled_while_a_snapshot_is_written_survive_it(tmp_path: Path) -> None:
    """Replica b journals between the capture and the write of replica a's snapshot."""
    store = FileStateStore(tmp_path)
    state = _state(a={"00aa": 1}, b={"00bb": 1})
    write = store.snapshot("ns/job", state)
    store.append_in_flight("ns/job", "b", [("00bb", 2)])
    store.append_marks("ns/job", "b", [("00bb", 2)])
    store.append_in_flight("ns/job", "b", [("00cc", 3)])
    write()
    loaded = store.load("ns/job")
    assert loaded is not None
    assert loaded.marks == {"a": {"00aa": 1}, "b": {"00bb": 2}}
    assert loaded.in_flight == {"b": {"00cc": 3}}


def test_a_snapshot_captured_but_never_written_loses_nothing(tmp_path: Path) -> None:
    """A kill between capture and write: the previous snapshot and both journals still hold it all."""
    store = FileStateStore(tmp_path)
    store.snapshot("ns/job", _state(a={"00aa": 1}))()
    store.append_marks("ns/job", "a", [("00aa", 5)])
    store.snapshot("ns/job", _state(a={"00aa": 5}))  # captured; the process dies before writing
    store.append_marks("ns/job", "a", [("00aa", 9)])
    loaded = FileStateStore(tmp_path).load("ns/job")
    assert loaded is not None
    assert loaded.marks == {"a": {"00aa": 9}}


def test_overlapping_writes_keep_the_newest_snapshot_and_every_later_entry(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    older = store.snapshot("ns/job", _state(a={"00aa": 1}))
    store.append_marks("ns/job", "a", [("00aa", 2)])
    newer = store.snapshot("ns/job", _state(a={"00aa": 2}, b={"00bb": 7}))
    store.append_marks("ns/job", "b", [("00bb", 8)])
    newer()
    older()  # finishes last: must not put the older snapshot back
    loaded = store.load("ns/job")
    assert loaded is not None
    assert loaded.marks == {"a": {"00aa": 2}, "b": {"00bb": 8}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ns__job.journal", "ns__job.json"]


def test_a_set_aside_journal_replayed_over_a_newer_snapshot_changes_nothing(tmp_path: Path) -> None:
    """A kill after the snapshot is written but before its set-aside journal is deleted."""
    store = FileStateStore(tmp_path)
    store.append_in_flight("ns/job", "a", [("00aa", 4)])
    store.append_marks("ns/job", "a", [("00aa", 4)])
    kept = (tmp_path / "ns__job.journal").read_bytes()
    store.snapshot("ns/job", _state(a={"00aa": 9}))()
    (tmp_path / "ns__job.journal.1").write_bytes(kept)  # as if the delete never happened
    loaded = FileStateStore(tmp_path).load("ns/job")
    assert loaded is not None
    assert loaded.marks == {"a": {"00aa": 9}}
    assert not any(loaded.in_flight.values())


def test_journals_of_a_job_whose_name_extends_another_are_not_mixed(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.append_marks("ns/a.journal", "x", [("00aa", 1)])
    store.snapshot("ns/a.journal", _state(x={}))  # sets aside ns__a.journal.journal.1, not written
    store.append_marks("ns/a", "y", [("00bb", 2)])
    loaded = store.load("ns/a")
    assert loaded is not None
    assert loaded.marks == {"y": {"00bb": 2}}
    store.delete("ns/a.journal")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ns__a.journal"]
