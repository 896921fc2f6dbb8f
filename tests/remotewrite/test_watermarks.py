"""Watermarks: each sentence of the module's contract."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mtproxy.remotewrite.watermarks import SeriesKey, Watermarks

A: SeriesKey = (("__name__", "a"),)
B: SeriesKey = (("__name__", "b"),)


def test_unmarked_series_sends_everything_in_order() -> None:
    assert Watermarks().pending(A, [(1, 1.0), (2, 2.0)]) == [(1, 1.0), (2, 2.0)]


def test_pending_is_strictly_newer_than_the_mark() -> None:
    marks = Watermarks()
    marks.acknowledge(A, 2)
    assert marks.pending(A, [(1, 1.0), (2, 2.0), (3, 3.0)]) == [(3, 3.0)]


def test_acknowledge_never_moves_back() -> None:
    marks = Watermarks()
    marks.acknowledge(A, 5)
    marks.acknowledge(A, 3)
    assert marks.mark(A) == 5


def test_missing_series_gets_one_stale_marker_then_is_forgotten() -> None:
    marks = Watermarks()
    marks.acknowledge(A, 5)
    marks.acknowledge(B, 5)
    assert marks.stale_markers([B], at_ms=10) == [A]
    marks.forget(A)
    assert marks.stale_markers([B], at_ms=20) == []
    assert marks.pending(A, [(1, 1.0)]) == [(1, 1.0)]


def test_no_stale_marker_at_or_before_the_last_sample() -> None:
    marks = Watermarks()
    marks.acknowledge(A, 10)
    assert marks.stale_markers([], at_ms=10) == []


@given(st.lists(st.lists(st.integers(0, 50), max_size=10), max_size=10))
def test_overlapping_windows_deliver_each_sample_exactly_once(windows: list[list[int]]) -> None:
    marks = Watermarks()
    delivered: list[int] = []
    for window in windows:
        samples = [(ts, float(ts)) for ts in sorted(set(window))]
        batch = marks.pending(A, samples)
        delivered.extend(ts for ts, _ in batch)
        if batch:
            marks.acknowledge(A, batch[-1][0])
    assert delivered == sorted(set(delivered))  # strictly increasing: no duplicate, no out-of-order
    seen = {ts for window in windows for ts in window}
    assert (max(delivered) if delivered else None) == (max(seen) if seen else None)


def test_vanished_names_the_gone_series_and_those_silent_too_long_never_the_live_ones() -> None:
    marks: Watermarks[SeriesKey] = Watermarks()
    marks.acknowledge(A, 90)  # went away: the source says so
    marks.acknowledge(B, 40)  # silent since 40, before the source's lookback starts: not live either
    live: SeriesKey = (("__name__", "live"),)
    marks.acknowledge(live, 95)
    assert sorted(marks.vanished({A}, at_ms=100, quiet_until_ms=50)) == [A, B]
    assert marks.vanished(set(), at_ms=100, quiet_until_ms=30) == []


def test_vanished_never_marks_at_or_before_the_last_sample() -> None:
    marks: Watermarks[SeriesKey] = Watermarks()
    marks.acknowledge(A, 100)
    assert marks.vanished({A}, at_ms=100, quiet_until_ms=100) == []


def test_acknowledge_all_moves_each_mark_forward_only() -> None:
    marks: Watermarks[SeriesKey] = Watermarks()
    marks.acknowledge(A, 5)
    marks.acknowledge_all([(A, 3), (B, 7), (B, 9)])
    assert (marks.mark(A), marks.mark(B), len(marks)) == (5, 9, 2)


def test_pending_hands_back_the_samples_themselves_when_all_are_new() -> None:
    marks: Watermarks[SeriesKey] = Watermarks()
    samples = ((3, 3.0), (4, 4.0))
    assert marks.pending(A, samples) is samples
    marks.acknowledge(A, 2)
    assert marks.pending(A, samples) is samples
