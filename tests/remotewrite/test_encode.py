"""The hand encoder writes exactly what the protobuf runtime writes, with the spec's guarantees."""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path

import snappy
from hypothesis import given
from hypothesis import strategies as st

from mtproxy.remotewrite import prompb
from mtproxy.remotewrite.encode import (
    STALE_NAN,
    compress_block,
    encode_label_set,
    encode_labels,
    encode_series,
    encode_write_request,
    is_stale_marker,
)

label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,12}", fullmatch=True)
label_sets = st.dictionaries(label_names, st.text(min_size=1, max_size=20), min_size=1, max_size=8)
samples = st.lists(st.tuples(st.integers(min_value=-(2**62), max_value=2**62), st.floats(allow_nan=False)), max_size=5)


def _reference(series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> bytes:
    request = prompb.WriteRequest()
    for labels, points in series:
        entry = request.timeseries.add()
        for name in sorted(labels, key=lambda n: n.encode()):
            if labels[name]:
                entry.labels.add(name=name, value=labels[name])
        for timestamp, value in points:
            entry.samples.add(value=value, timestamp=timestamp)
    return bytes(request.SerializeToString())


@given(st.lists(st.tuples(label_sets, samples), max_size=4))
def test_hand_encoding_equals_protobuf_runtime(series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> None:
    mine = encode_write_request(encode_series(encode_labels(labels.items()), points) for labels, points in series)
    assert mine == _reference(series)


canonical_label_sets = st.dictionaries(
    st.one_of(label_names, st.text(min_size=1, max_size=130)),
    st.one_of(st.text(min_size=1, max_size=20), st.text(alphabet="ab", min_size=100, max_size=140)),
    max_size=6,
).map(lambda labels: tuple(sorted(labels.items())))


@given(canonical_label_sets)
def test_canonical_label_sets_encode_as_any_label_set_does(labels: tuple[tuple[str, str], ...]) -> None:
    assert encode_label_set(labels) == encode_labels(labels)


def test_labels_are_sorted_by_bytes_and_empty_values_dropped() -> None:
    block = encode_labels([("b", "1"), ("a", ""), ("B", "2"), ("__name__", "m")])
    decoded = prompb.TimeSeries.FromString(block)
    assert [(label.name, label.value) for label in decoded.labels] == [("B", "2"), ("__name__", "m"), ("b", "1")]


def test_conflicting_duplicate_label_is_refused() -> None:
    try:
        encode_labels([("a", "1"), ("a", "2")])
    except ValueError as exc:
        assert "'a' given twice" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected ValueError")


def test_stale_marker_bits_survive_encoding_and_compression() -> None:
    payload = encode_write_request([encode_series(encode_labels([("__name__", "up")]), [(1, STALE_NAN)])])
    decoded = prompb.WriteRequest.FromString(snappy.decompress(compress_block(payload)))
    value = decoded.timeseries[0].samples[0].value
    assert is_stale_marker(value)
    assert struct.pack("<d", value) == b"\x02\x00\x00\x00\x00\x00\xf0\x7f"
    assert not is_stale_marker(math.nan)


def test_compression_is_block_format_not_framed() -> None:
    assert not compress_block(b"x" * 100).startswith(b"\xff\x06\x00\x00sNaPpY")


def test_descriptor_matches_the_committed_proto_file() -> None:
    text = (Path(prompb.__file__).parent / "remote.proto").read_text()
    declared = set(re.findall(r"^\s*(?:repeated\s+)?\w+\s+(\w+)\s*=\s*(\d+);", text, re.MULTILINE))
    built = {
        (field.name, str(field.number))
        for message in (prompb.WriteRequest, prompb.TimeSeries, prompb.Label, prompb.Sample)
        for field in message.DESCRIPTOR.fields
    }
    assert declared == built
