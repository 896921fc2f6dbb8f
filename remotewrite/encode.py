"""Remote-write 1.0 request bodies: protobuf written by hand, then snappy block format.

Building protobuf messages object by object is the bottleneck of a Python forwarder
(about 210k series/s); writing the bytes directly, with each series' label bytes cached,
is 3-4x faster (remote-write-notes §8.2). So a series is encoded once as its label block
(``encode_labels``, cacheable by the caller per label set) and each request concatenates
label blocks with sample bytes. ``prompb`` holds the reference message classes; tests
check both produce identical bytes.

Guarantees of ``encode_write_request``: labels sorted by name (byte order) and unique,
empty values dropped (the spec forbids them; Prometheus would store ``{a=""}`` as a
distinct series), samples in the order given (callers send them in timestamp order),
values' bits kept exactly, so a staleness marker (``STALE_NAN_BITS``) survives.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import snappy

__all__ = [
    "REMOTE_WRITE_HEADERS",
    "STALE_NAN",
    "STALE_NAN_BITS",
    "compress_block",
    "encode_labels",
    "encode_series",
    "encode_write_request",
    "is_stale_marker",
]

STALE_NAN_BITS = 0x7FF0000000000002
"""Prometheus' staleness marker, a signalling NaN; ``math.isnan`` cannot tell it from others."""
STALE_NAN: float = struct.unpack("<d", STALE_NAN_BITS.to_bytes(8, "little"))[0]

REMOTE_WRITE_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
"""The headers every remote-write 1.0 request carries (plus a User-Agent)."""

_DOUBLE = struct.Struct("<d")


def is_stale_marker(value: float) -> bool:
    """Whether ``value`` has exactly the staleness marker's bits."""
    return _DOUBLE.pack(value) == _STALE_BYTES


_STALE_BYTES = _DOUBLE.pack(STALE_NAN)
_ZERO_BYTES = bytes(8)


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 as protobuf writes it: ten bytes, two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(payload)) + payload


def encode_labels(labels: Iterable[tuple[str, str]]) -> bytes:
    """The ``TimeSeries.labels`` block of one series: sorted, unique, no empty values.

    Raises:
        ValueError: a label name appears twice with different values, or a name is empty.
    """
    chosen: dict[str, str] = {}
    for name, value in labels:
        if not name:
            raise ValueError("labels: empty label name")
        if name in chosen and chosen[name] != value:
            raise ValueError(f"labels: {name!r} given twice with different values")
        chosen[name] = value
    out = bytearray()
    for name in sorted(chosen, key=lambda n: n.encode("utf-8")):
        value = chosen[name]
        if value == "":
            continue
        pair = _field(0x0A, name.encode("utf-8")) + _field(0x12, value.encode("utf-8"))
        out += _field(0x0A, pair)
    return bytes(out)


def _sample(timestamp_ms: int, value: float) -> bytes:
    packed = _DOUBLE.pack(value)
    # proto3 leaves zero fields out; +0.0 is all zero bits (-0.0 is not, and is kept)
    body = b"" if packed == _ZERO_BYTES else b"\x09" + packed
    if timestamp_ms:
        body += b"\x10" + _varint(timestamp_ms)
    return _field(0x12, body)


def encode_series(label_block: bytes, samples: Sequence[tuple[int, float]]) -> bytes:
    """One ``WriteRequest.timeseries`` entry from a cached label block and (ms, value) samples."""
    body = label_block + b"".join(_sample(ts, value) for ts, value in samples)
    return _field(0x0A, body)


def encode_write_request(series: Iterable[bytes]) -> bytes:
    """The uncompressed ``WriteRequest`` of already encoded series entries."""
    return b"".join(series)


def compress_block(payload: bytes) -> bytes:
    """Snappy **block** format, as remote write requires (the framed format is refused)."""
    compressed: bytes = snappy.compress(payload)
    return compressed
