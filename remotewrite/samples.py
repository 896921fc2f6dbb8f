"""Raw samples read from a Prometheus ``/api/v1/query`` matrix answer, exactly.

Timestamps come as seconds with up to three decimals (``1700000000.123``); they are
turned into integer milliseconds with ``round(t * 1000)``, which is exact for every value
Prometheus writes (the float error is far below half a millisecond). Values are strings
in shortest round-trip form, ``"NaN"``/``"+Inf"``/``"-Inf"`` included. Native histograms
(``histograms`` in a result) are not forwarded: they are counted per series so the
caller can report them, never silently dropped.

An answer of 100,000 series is millions of small objects, none in a cycle, so the cyclic
garbage collector is paused while an answer is parsed (``gcpause``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mtproxy.remotewrite.gcpause import collector_paused

__all__ = [
    "CollectedSeries",
    "InstantSample",
    "MalformedAnswer",
    "ParsedMatrix",
    "parse_matrix_answer",
    "parse_vector_answer",
]


class MalformedAnswer(ValueError):
    """The source's answer is not the matrix JSON this module reads."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectedSeries:
    """One series and its raw samples, oldest first."""

    labels: Mapping[str, str]
    samples: tuple[tuple[int, float], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedMatrix:
    """Every float series of an answer, plus how many native-histogram series were left out."""

    series: tuple[CollectedSeries, ...]
    skipped_histogram_series: int = 0


def _value(text: Any) -> float:
    if not isinstance(text, str):
        raise MalformedAnswer(f"sample value must be a string, got {type(text).__name__}")
    try:
        return float(text)
    except ValueError:
        raise MalformedAnswer(f"sample value {text[:40]!r} is not a number") from None


def _timestamp_ms(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedAnswer(f"sample timestamp must be a number, got {type(value).__name__}")
    return round(value * 1000)


def _result(body: bytes, result_type: str) -> list[Any]:
    """``data.result`` of a successful answer of the given type."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedAnswer(f"answer is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("status") != "success":
        error = document.get("error") if isinstance(document, dict) else None
        raise MalformedAnswer(f"answer is not a success: {str(error)[:256]}")
    data = document.get("data")
    if not isinstance(data, dict) or data.get("resultType") != result_type or not isinstance(data.get("result"), list):
        raise MalformedAnswer(f"answer is not a {result_type}")
    result: list[Any] = data["result"]
    return result


def parse_matrix_answer(body: bytes) -> ParsedMatrix:
    """Parse ``{"status":"success","data":{"resultType":"matrix","result":[…]}}``.

    Raises:
        MalformedAnswer: not JSON, not a success, not a matrix, or a malformed element.
    """
    with collector_paused():
        return _parse_matrix(body)


def _parse_matrix(body: bytes) -> ParsedMatrix:
    series: list[CollectedSeries] = []
    skipped = 0
    for element in _result(body, "matrix"):
        if not isinstance(element, dict) or not isinstance(element.get("metric"), dict):
            raise MalformedAnswer("matrix element without a metric")
        labels = element["metric"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise MalformedAnswer("metric labels must be strings")
        if element.get("histograms"):
            skipped += 1
        points = element.get("values") or []
        if not isinstance(points, list):
            raise MalformedAnswer("values must be a list")
        samples: list[tuple[int, float]] = []
        for point in points:
            if not isinstance(point, list) or len(point) != 2:
                raise MalformedAnswer("a sample must be [timestamp, value]")
            samples.append((_timestamp_ms(point[0]), _value(point[1])))
        if samples:
            series.append(CollectedSeries(labels=labels, samples=tuple(samples)))
    return ParsedMatrix(series=tuple(series), skipped_histogram_series=skipped)


@dataclass(frozen=True, slots=True, kw_only=True)
class InstantSample:
    """One element of an instant-vector answer: a live series and its newest value."""

    labels: Mapping[str, str]
    timestamp_ms: int
    value: float


def parse_vector_answer(body: bytes) -> tuple[InstantSample, ...]:
    """Parse ``{"status":"success","data":{"resultType":"vector","result":[…]}}``.

    Raises:
        MalformedAnswer: not JSON, not a success, not a vector, or a malformed element.
    """
    with collector_paused():
        return _parse_vector(body)


def _parse_vector(body: bytes) -> tuple[InstantSample, ...]:
    out: list[InstantSample] = []
    for element in _result(body, "vector"):
        if not isinstance(element, dict) or not isinstance(element.get("metric"), dict):
            raise MalformedAnswer("vector element without a metric")
        point = element.get("value")
        if point is None:
            continue  # a native histogram sample: not forwarded
        if not isinstance(point, list) or len(point) != 2:
            raise MalformedAnswer("a sample must be [timestamp, value]")
        out.append(
            InstantSample(labels=element["metric"], timestamp_ms=_timestamp_ms(point[0]), value=_value(point[1]))
        )
    return tuple(out)
