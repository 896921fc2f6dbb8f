"""Tests for api/durations.py: Go and Prometheus duration strings, to and from milliseconds."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtproxy.api import format_duration, parse_duration_ms
from mtproxy.api.durations import DURATION_PATTERN


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        pytest.param("0s", 0, id="zero"),
        pytest.param("30s", 30_000, id="seconds"),
        pytest.param("500ms", 500, id="milliseconds"),
        pytest.param("5m", 300_000, id="minutes"),
        pytest.param("1h", 3_600_000, id="hours"),
        pytest.param("1d", 86_400_000, id="prometheus-day"),
        pytest.param("1w", 604_800_000, id="prometheus-week"),
        pytest.param("1y", 31_536_000_000, id="prometheus-year-of-365-days"),
        pytest.param("1m30s", 90_000, id="go-compound"),
        pytest.param("1h30m", 5_400_000, id="prometheus-compound"),
        pytest.param("1.5m", 90_000, id="go-fraction"),
        pytest.param("0.5s", 500, id="fraction-of-a-second"),
        pytest.param("1000us", 1, id="microseconds"),
        pytest.param("1000µs", 1, id="micro-sign"),
        pytest.param("1000000ns", 1, id="nanoseconds"),
        pytest.param("2h45m30s250ms", 9_930_250, id="every-unit-together"),
    ],
)
def test_parse_duration_ms_returns_exact_milliseconds(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("", "not a duration", id="empty"),
        pytest.param("30", "not a duration: '30' (use a unit", id="bare-number-poison-pill"),
        pytest.param("abc", "not a duration", id="word"),
        pytest.param("1x", "not a duration", id="unknown-unit"),
        pytest.param("1S", "not a duration", id="uppercase-unit"),
        pytest.param("-1s", "not a duration", id="negative"),
        pytest.param("+1s", "not a duration", id="plus-sign"),
        pytest.param(" 30s", "not a duration", id="leading-space"),
        pytest.param("30s ", "not a duration", id="trailing-space"),
        pytest.param("1h 30m", "not a duration", id="inner-space"),
        pytest.param(".5s", "not a duration", id="no-integer-part"),
        pytest.param("1.s", "not a duration", id="no-fraction-digits"),
        pytest.param("s", "not a duration", id="unit-only"),
        pytest.param("1us", "not a whole number of milliseconds", id="sub-millisecond"),
        pytest.param("1.0005s", "not a whole number of milliseconds", id="fraction-below-a-millisecond"),
    ],
)
def test_parse_duration_ms_refuses_with_a_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration_ms(text)
    assert fragment in str(caught.value)


def test_parse_duration_ms_refuses_a_non_string() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_ms(30)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(1, "1ms", id="one-millisecond"),
        pytest.param(500, "500ms", id="milliseconds"),
        pytest.param(1_001, "1s1ms", id="second-and-millisecond"),
        pytest.param(30_000, "30s", id="seconds"),
        pytest.param(90_000, "1m30s", id="minute-and-a-half"),
        pytest.param(5_400_000, "1h30m", id="hour-and-a-half"),
        pytest.param(86_400_000, "1d", id="day"),
        pytest.param(90_061_001, "1d1h1m1s1ms", id="every-unit"),
    ],
)
def test_format_duration_writes_prometheus_canonical_form(ms: int, text: str) -> None:
    assert format_duration(ms) == text


def test_format_duration_refuses_negative_and_names_the_parameter() -> None:
    with pytest.raises(ValueError, match=r"^ms: must not be negative"):
        format_duration(-1)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**15))
def test_format_then_parse_returns_the_same_milliseconds(ms: int) -> None:
    assert parse_duration_ms(format_duration(ms)) == ms


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789.smhdwyunµ -+", max_size=12) | st.text(max_size=12))
def test_parse_duration_ms_raises_only_value_error_on_any_text(text: str) -> None:
    try:
        ms = parse_duration_ms(text)
    except ValueError:
        return
    assert ms >= 0


def test_crd_pattern_accepts_what_the_parser_accepts() -> None:
    for text in ("30s", "1m30s", "1.5m", "500ms", "1000µs", "1d"):
        assert re.match(DURATION_PATTERN, text)
    for text in ("30", "-1s", "1h 30m"):
        assert not re.match(DURATION_PATTERN, text)
