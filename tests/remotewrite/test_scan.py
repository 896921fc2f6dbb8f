"""The byte scanner reads exactly what the full JSON parser reads, and says so when it cannot."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mtproxy.remotewrite.scan as scan_module
from mtproxy.remotewrite.samples import MalformedAnswer, parse_matrix_answer
from mtproxy.remotewrite.scan import decode_labels, identity_of, scan_matrix_answer

# Label text that looks like the delimiters the scanner cuts at, or needs escaping.
_TRICKY = ['},"values":[', '{"metric":{', "]]}", '"],[', ',"', '"', "\\", "\n", "é", "\u2028", "<&>", ""]
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,12}", fullmatch=True)
label_values = st.one_of(st.sampled_from(_TRICKY), st.text(max_size=12))
label_sets = st.dictionaries(label_names, label_values, min_size=1, max_size=6)
millis = st.integers(min_value=0, max_value=4_102_444_800_000)
values = st.one_of(st.floats(allow_nan=False).map(repr), st.sampled_from(["NaN", "+Inf", "-Inf", "0", "-0", "1e-300"]))
series_lists = st.lists(st.tuples(label_sets, st.lists(st.tuples(millis, values), min_size=1, max_size=4)), max_size=5)


def _seconds(ms: int) -> str:
    """As Prometheus writes a timestamp: seconds, up to three decimals, trailing zeros dropped."""
    return f"{ms // 1000}.{ms % 1000:03d}".rstrip("0").rstrip(".")


def _answer(series: list[tuple[dict[str, str], list[tuple[int, str]]]], *, ensure_ascii: bool = False) -> bytes:
    """A matrix answer laid out as Prometheus writes it (compact, keys in this order)."""
    elements = []
    for labels, points in series:
        rendered = ",".join(f'[{_seconds(ms)},"{value}"]' for ms, value in sorted(dict(points).items()))
        metric = json.dumps(labels, separators=(",", ":"), ensure_ascii=ensure_ascii)
        elements.append(f'{{"metric":{metric},"values":[{rendered}]}}')
    return ('{"status":"success","data":{"resultType":"matrix","result":[' + ",".join(elements) + "]}}").encode()


def _decoded(body: bytes, *, after_ms: int = -1) -> list[tuple[dict[str, str], tuple[tuple[int, float], ...]]]:
    scanned = scan_matrix_answer(body, after_ms=after_ms)
    return [(decode_labels(identity), samples) for identity, samples in scanned.series]


def _reference(body: bytes, *, after_ms: int = -1) -> list[tuple[dict[str, str], tuple[tuple[int, float], ...]]]:
    out = []
    for series in parse_matrix_answer(body).series:
        samples = tuple(s for s in series.samples if s[0] > after_ms)
        if samples:
            out.append((dict(series.labels), samples))
    return out


def _same(a: list[Any], b: list[Any]) -> bool:
    """Equal, NaN equal to NaN (and nothing else)."""

    def key(item: tuple[dict[str, str], tuple[tuple[int, float], ...]]) -> Any:
        labels, samples = item
        return labels, tuple((ms, "nan" if math.isnan(v) else v) for ms, v in samples)

    return [key(x) for x in a] == [key(x) for x in b]


def _refuse(body: bytes) -> object:
    raise AssertionError("the full parser was used")


@pytest.fixture
def full_parser_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "parse_matrix_answer", _refuse)


@given(series_lists, st.booleans(), st.integers(min_value=-1, max_value=4_102_444_800_000))
def test_scan_reads_what_the_full_parser_reads_without_it(
    series: list[tuple[dict[str, str], list[tuple[int, str]]]], ensure_ascii: bool, after_ms: int
) -> None:
    body = _answer(series, ensure_ascii=ensure_ascii)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan_module, "parse_matrix_answer", _refuse)
        scanned = _decoded(body, after_ms=after_ms)
    assert _same(scanned, _reference(body, after_ms=after_ms))


@given(millis)
def test_millisecond_timestamps_are_exact(ms: int) -> None:
    body = _answer([({"__name__": "x"}, [(ms, "1")])])
    assert _decoded(body) == [({"__name__": "x"}, ((ms, 1.0),))]


@pytest.mark.usefixtures("full_parser_forbidden")
def test_a_prometheus_answer_is_cut_not_parsed_and_identities_are_the_raw_label_text() -> None:
    body = (
        b'{"status":"success","data":{"resultType":"matrix","result":['
        b'{"metric":{"__name__":"up","job":"a \\"b\\""},"values":[[1700000000,"1"],[1700000015.5,"NaN"]]},'
        b'{"metric":{"__name__":"up","job":"c"},"values":[[1700000000.125,"-Inf"]]}]}}'
    )
    scanned = scan_matrix_answer(body, after_ms=0).series
    assert [identity for identity, _ in scanned] == [b'"__name__":"up","job":"a \\"b\\""', b'"__name__":"up","job":"c"']
    assert decode_labels(scanned[0][0]) == {"__name__": "up", "job": 'a "b"'}
    assert scanned[0][1][0] == (1_700_000_000_000, 1.0)
    assert scanned[0][1][1][0] == 1_700_000_015_500 and math.isnan(scanned[0][1][1][1])
    assert scanned[1][1] == ((1_700_000_000_125, -math.inf),)


@pytest.mark.usefixtures("full_parser_forbidden")
def test_samples_at_or_before_after_ms_are_left_out_and_so_are_series_left_empty() -> None:
    body = _answer([({"__name__": "a"}, [(1000, "1"), (2000, "2")]), ({"__name__": "b"}, [(1000, "3")])])
    assert _decoded(body, after_ms=1000) == [({"__name__": "a"}, ((2000, 2.0),))]


@pytest.mark.usefixtures("full_parser_forbidden")
def test_an_empty_result_is_no_series() -> None:
    assert scan_matrix_answer(_answer([]), after_ms=0).series == []


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(
            {
                "status": "success",
                "data": {
                    "resultType": "matrix",
                    "result": [
                        {"metric": {"__name__": "h"}, "histograms": [[1, {"count": "1", "sum": "1", "buckets": []}]]},
                        {"metric": {"__name__": "f"}, "values": [[1, "2"]]},
                    ],
                },
            },
            id="native-histogram",
        ),
        pytest.param(
            {
                "status": "success",
                "data": {
                    "resultType": "matrix",
                    "result": [
                        {"metric": {"__name__": "f"}, "values": [[1, "2"]]},
                    ],
                },
                "warnings": ["some warning"],
            },
            id="warnings",
        ),
        pytest.param(
            {
                "data": {"result": [{"values": [[1, "2"]], "metric": {"__name__": "f"}}], "resultType": "matrix"},
                "status": "success",
            },
            id="other-key-order",
        ),
    ],
)
def test_other_layouts_go_through_the_full_parser(document: dict[str, Any]) -> None:
    for body in (json.dumps(document).encode(), json.dumps(document, separators=(",", ":")).encode()):
        scanned = scan_matrix_answer(body, after_ms=-1)
        assert _same(_decoded(body), _reference(body))
        assert scanned.skipped_histogram_series == parse_matrix_answer(body).skipped_histogram_series


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"not json", "not JSON", id="not-json"),
        pytest.param(b'{"status":"error","error":"boom"}', "boom", id="error-status"),
        pytest.param(b'{"status":"success","data":{"resultType":"vector","result":[]}}', "not a matrix", id="vector"),
        pytest.param(_answer([({"a": "b"}, [(1000, "x")])]), "not a number", id="value-not-a-number"),
        pytest.param(
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,2]]}]}}',
            "must be a string",
            id="numeric-value",
        ),
        pytest.param(
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[["1","2"]]}]}}',
            "must be a number",
            id="string-timestamp",
        ),
        pytest.param(
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"]]}',
            "not JSON",
            id="truncated",
        ),
    ],
)
def test_malformed_answers_are_refused_as_the_full_parser_refuses_them(body: bytes, fragment: str) -> None:
    with pytest.raises(MalformedAnswer, match=fragment):
        scan_matrix_answer(body, after_ms=0)


@pytest.mark.parametrize(
    "identity",
    [b'"a":1', b'"a":{"b":"c"}', b'"a":"b"},{"c":"d"', b'"a"', b"", b'"a":"\xff"'],
)
def test_labels_that_are_not_a_flat_object_of_strings_are_refused_when_decoded(identity: bytes) -> None:
    if identity == b"":
        assert decode_labels(identity) == {}
        return
    with pytest.raises(MalformedAnswer):
        decode_labels(identity)


def test_a_lone_surrogate_escape_decodes_as_the_full_parser_reads_it() -> None:
    assert decode_labels(b'"a":"\\ud800"') == {"a": "\ud800"}


@given(label_sets)
def test_identity_of_decoded_labels_round_trips(labels: dict[str, str]) -> None:
    assert decode_labels(identity_of(labels)) == labels
