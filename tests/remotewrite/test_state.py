"""Series hashes name series in state files: they must never change."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from mtproxy.remotewrite.state import series_hash
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
