"""State files: series hashes never change, and journal lines are the JSON the loader reads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mtproxy.remotewrite.state import FileStateStore, _journal_lines, series_hash
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
