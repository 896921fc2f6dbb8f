"""Parsing raw samples from a matrix answer: exact milliseconds, special values, clear errors."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtproxy.remotewrite.samples import MalformedAnswer, parse_matrix_answer


def _answer(result: list[object]) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_millisecond_timestamps_are_exact(ms: int) -> None:
    # Prometheus writes seconds with up to three decimals, trailing zeros dropped
    text = f"{ms // 1000}.{ms % 1000:03d}".rstrip("0").rstrip(".")
    prefix = b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"x"},"values":[['
    body = prefix + text.encode() + b',"1"]]}]}}'
    assert parse_matrix_answer(body).series[0].samples == ((ms, 1.0),)


def test_special_values_parse() -> None:
    parsed = parse_matrix_answer(
        _answer([{"metric": {"__name__": "x"}, "values": [[1, "NaN"], [2, "+Inf"], [3, "-Inf"]]}])
    )
    values = [value for _, value in parsed.series[0].samples]
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf


def test_histogram_series_are_counted_not_silently_dropped() -> None:
    parsed = parse_matrix_answer(_answer([{"metric": {"__name__": "h"}, "histograms": [[1, {"count": "1"}]]}]))
    assert parsed.series == ()
    assert parsed.skipped_histogram_series == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"not json", "not JSON", id="not-json"),
        pytest.param(b'{"status":"error","error":"boom"}', "boom", id="error-status"),
        pytest.param(b'{"status":"success","data":{"resultType":"vector","result":[]}}', "not a matrix", id="vector"),
        pytest.param(_answer([{"values": []}]), "without a metric", id="no-metric"),
        pytest.param(_answer([{"metric": {"a": 1}, "values": []}]), "strings", id="non-string-label"),
        pytest.param(_answer([{"metric": {}, "values": [[1, 2]]}]), "must be a string", id="numeric-value"),
        pytest.param(_answer([{"metric": {}, "values": [["1", "2"]]}]), "must be a number", id="string-timestamp"),
        pytest.param(_answer([{"metric": {}, "values": [[1]]}]), "\\[timestamp, value\\]", id="short-point"),
    ],
)
def test_malformed_answers_are_named(body: bytes, fragment: str) -> None:
    with pytest.raises(MalformedAnswer, match=fragment):
        parse_matrix_answer(body)
