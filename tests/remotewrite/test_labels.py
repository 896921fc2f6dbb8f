"""Extra labels: Prometheus' honor_labels table (remote-write-notes §6), row by row."""

from __future__ import annotations

import pytest

from mtproxy.remotewrite.labels import merge_extra_labels

E2, E3, E4, E5 = ("exported_" * n for n in (2, 3, 4, 5))

HONOR_FALSE = [
    pytest.param({"n": "1"}, {"n": "2"}, {"exported_n": "1", "n": "2"}, id="conflict-moves-to-exported"),
    pytest.param(
        {"n": "1"},
        {"n": "2", "exported_n": "2"},
        {"n": "2", "exported_n": "2", E2 + "n": "1"},
        id="exported-name-taken-prefix-again",
    ),
    pytest.param({"n": ""}, {}, {}, id="empty-series-label-removed-without-extras"),
    pytest.param(
        {"foo": "1", "exported_foo": "2"},
        {"foo": "3"},
        {"foo": "3", "exported_foo": "2", E2 + "foo": "1"},
        id="series-exported-label-kept",
    ),
    pytest.param(
        {"exported_foo": "1"}, {"exported_foo": "2"}, {"exported_foo": "2", E2 + "foo": "1"}, id="extra-named-exported"
    ),
    pytest.param(
        {"foo": "1", "exported_foo": "2"},
        {"foo": "3", "exported_foo": "4"},
        {"foo": "3", "exported_foo": "4", E2 + "foo": "1", E3 + "foo": "2"},
        id="two-conflicts",
    ),
    pytest.param(
        {"foo": "3", "exported_foo": "4", E3 + "foo": "5"},
        {"foo": "0", E2 + "foo": "1", E3 + "foo": "2"},
        {"foo": "0", "exported_foo": "4", E2 + "foo": "1", E3 + "foo": "2", E4 + "foo": "3", E5 + "foo": "5"},
        id="deep-chain-shortest-first",
    ),
    pytest.param({"a": "1"}, {"b": "2"}, {"a": "1", "b": "2"}, id="no-conflict-adds"),
    pytest.param({"a": "1"}, {"a": ""}, {"exported_a": "1"}, id="empty-extra-removes-and-exports"),
]


@pytest.mark.parametrize(("series", "extra", "expected"), HONOR_FALSE)
def test_honor_labels_false_matches_prometheus(
    series: dict[str, str], extra: dict[str, str], expected: dict[str, str]
) -> None:
    cleaned = {k: v for k, v in series.items() if v}
    result = merge_extra_labels(cleaned, extra, honor_labels=False)
    assert result == expected


@pytest.mark.parametrize(
    ("series", "extra", "expected"),
    [
        pytest.param({"n": "1"}, {"n": "2"}, {"n": "1"}, id="series-value-wins"),
        pytest.param({"a": "1"}, {"tenant": "t"}, {"a": "1", "tenant": "t"}, id="missing-label-added"),
        pytest.param({}, {"tenant": ""}, {}, id="empty-extra-adds-nothing"),
    ],
)
def test_honor_labels_true_keeps_series_values(
    series: dict[str, str], extra: dict[str, str], expected: dict[str, str]
) -> None:
    assert merge_extra_labels(series, extra, honor_labels=True) == expected


def test_input_is_not_mutated() -> None:
    series = {"n": "1"}
    merge_extra_labels(series, {"n": "2"}, honor_labels=False)
    assert series == {"n": "1"}
