"""Raw series of a Prometheus matrix answer, cut straight from its bytes.

A forwarder reads the same series every cycle. Building the JSON tree of a 100,000-series
answer (a dict, nine strings and two lists per series), then a sorted tuple per series to
look its relabel outcome up, cost more than everything else the pipeline does
(bench/bench_remote_write.py). So the answer is cut at its structural delimiters instead,
and each series is handed on as its *identity* (the raw text between the braces of
``"metric":{…}``, a ``bytes`` the caller keys its caches with, so the labels of a series it
already knows are never decoded again) and its samples.

Why cutting at delimiters is exact: in valid JSON a quote inside a string is always escaped,
so ``{"metric":{``, ``},"values":[`` and ``]]}``-then-``,{"metric":{`` (each holding an
unescaped quote right after a structural character) occur only as structure, never inside a
label name or value. Every piece is checked, so what is accepted is valid JSON of exactly
the expected shape:

- the envelope: ``{"status":"success","data":{"resultType":"matrix","result":[`` … ``]}}``;
- each element: ``{"metric":{<labels>},"values":[<points>]}``;
- points: ``[<seconds>,"<value>"]`` comma-separated, seconds an optional minus, digits and
  at most one fraction (``_SECONDS``), values whatever ``float`` reads (``"NaN"``,
  ``"+Inf"`` included), with no quote or backslash inside;
- labels: checked by whoever first decodes an identity (:func:`decode_labels`: a flat
  object of strings, else ``MalformedAnswer``, as the full parser would say). The caller
  decodes each identity it does not know and recognises the others byte for byte, so
  none goes unchecked, and none is decoded here: a decoded label set per series, held
  until the whole answer is cut, was the largest thing in memory.

Anything else (native histograms, or any ``"histograms"`` text such as a label of that
name; warnings; another layout from a future Prometheus) sends the whole answer through the
full JSON parser (``samples.parse_matrix_answer``), whose
identities are the labels re-encoded (:func:`identity_of`): the same series and samples,
only slower. Timestamps become integer milliseconds exactly as that parser makes them
(``round(float(seconds) * 1000)``; the texts repeat across series, so each is converted once,
in a bounded memo).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from mtproxy.remotewrite.gcpause import collector_paused
from mtproxy.remotewrite.samples import MalformedAnswer, parse_matrix_answer

__all__ = ["RawSeries", "Samples", "ScannedMatrix", "decode_labels", "identity_of", "scan_matrix_answer"]

Samples = tuple[tuple[int, float], ...]
"""(milliseconds, value) pairs, oldest first."""

RawSeries = tuple[bytes, Samples]
"""(identity, samples): the identity's labels are ``decode_labels(identity)``."""

_HEAD = b'{"status":"success","data":{"resultType":"matrix","result":['
_TAIL = b"]}}"
_ELEMENT = b'{"metric":{'
_VALUES = b'},"values":['
_POINTS_END = b"]]}"
_SECONDS = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?")
_MEMO_LIMIT = 1 << 16
_milliseconds: dict[bytes, int] = {}


class _Unexpected(Exception):
    """The answer is not in the layout the scanner reads; the full parser takes it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannedMatrix:
    """Every float series of an answer, plus how many native-histogram series were left out."""

    series: list[RawSeries]
    skipped_histogram_series: int = 0


def decode_labels(identity: bytes) -> dict[str, str]:
    """The labels of an identity (the text of a flat JSON object of strings, without braces).

    Raises:
        MalformedAnswer: not such an object.
    """
    text = b"{" + identity + b"}"
    try:
        labels = orjson.loads(text)
    except orjson.JSONDecodeError:  # orjson refuses lone surrogates (\\ud800), which json reads
        try:
            labels = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedAnswer(f"metric labels are not a JSON object: {exc}") from None
    if not isinstance(labels, dict) or not all(map(str.__instancecheck__, labels.values())):
        raise MalformedAnswer("metric labels must be strings")
    return labels


def identity_of(labels: Mapping[str, str]) -> bytes:
    """An identity for labels that came without one (the full parser's): their compact JSON."""
    return json.dumps(labels, separators=(",", ":"))[1:-1].encode("ascii")


def scan_matrix_answer(body: bytes, *, after_ms: int) -> ScannedMatrix:
    """The series of ``{"status":"success","data":{"resultType":"matrix","result":[…]}}``.

    Args:
        body: The answer.
        after_ms: Only samples newer than this are kept (a series left without any is left
            out): Prometheus 2 includes a range's start, and windows are ``(start, end]``.

    Raises:
        MalformedAnswer: not JSON, not a success, not a matrix, or a malformed element (the
            labels of a series excepted: see the module docstring).
    """
    if body.startswith(_HEAD) and b'"histograms"' not in body:
        try:
            with collector_paused():
                return ScannedMatrix(series=_scan(body, after_ms))
        except _Unexpected:
            pass
    parsed = parse_matrix_answer(body)
    series: list[RawSeries] = []
    for one in parsed.series:
        samples = tuple(sample for sample in one.samples if sample[0] > after_ms)
        if samples:
            series.append((identity_of(one.labels), samples))
    return ScannedMatrix(series=series, skipped_histogram_series=parsed.skipped_histogram_series)


def _scan(body: bytes, after_ms: int) -> list[RawSeries]:
    out: list[RawSeries] = []
    position = len(_HEAD)
    if body[position:] == _TAIL:
        return out
    find = body.find
    memo_get = _milliseconds.get
    element_length = len(_ELEMENT)
    values_length = len(_VALUES)
    while True:
        if not body.startswith(_ELEMENT, position):
            raise _Unexpected
        values_at = find(_VALUES, position)
        points_end = find(_POINTS_END, values_at)
        if values_at < 0 or points_end < 0:
            raise _Unexpected
        identity = body[position + element_length : values_at]
        # [s,"v"],[s,"v"]: drop the outer [ and "], split into s,"v points
        points = body[values_at + values_length + 1 : points_end - 1]
        if body[values_at + values_length] != 0x5B or body[points_end - 1] != 0x22:  # [ and "
            raise _Unexpected
        samples: list[tuple[int, float]] = []
        try:
            for point in points.split(b'"],['):
                seconds, value = point.split(b',"')
                ms = memo_get(seconds)
                if ms is None:
                    ms = _to_ms(seconds)
                number = float(value)
                if ms > after_ms:
                    samples.append((ms, number))
        except ValueError:  # a point not of two parts, or a value float() does not read
            raise _Unexpected from None
        if samples:
            out.append((identity, tuple(samples)))
        position = points_end + len(_POINTS_END)
        if body[position : position + 1] != b",":
            break
        position += 1
    if body[position:] != _TAIL:
        raise _Unexpected
    return out


def _to_ms(seconds: bytes) -> int:
    if _SECONDS.fullmatch(seconds) is None:
        raise _Unexpected
    ms = round(float(seconds) * 1000)
    if len(_milliseconds) >= _MEMO_LIMIT:
        _milliseconds.clear()
    _milliseconds[seconds] = ms
    return ms
