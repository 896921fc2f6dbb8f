"""Decoding of the protobuf bodies kubectl's typed clients send (pure)."""

from __future__ import annotations

import pytest

from mtproxy.apidouble.errors import UnsupportedMediaTypeError
from mtproxy.apidouble.protobuf import decode_protobuf_object


def _varint(value: int) -> bytes:
    out = b""
    while True:
        byte = value & 0x7F
        value >>= 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return b"k8s\x00" + _field(1, type_meta) + _field(2, raw)


def test_namespace_and_config_map_decode_to_json_form() -> None:
    metadata = _field(1, b"team-a") + _field(11, _field(1, b"env") + _field(2, b"dev"))
    namespace = decode_protobuf_object(_envelope("v1", "Namespace", _field(1, metadata)))
    assert namespace == {"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": "team-a", "labels": {"env": "dev"}}}
    config = _field(1, _field(1, b"cfg")) + _field(2, _field(1, b"k") + _field(2, b"v"))
    assert decode_protobuf_object(_envelope("v1", "ConfigMap", config))["data"] == {"k": "v"}


def test_secret_data_is_base64_encoded() -> None:
    secret = _field(1, _field(1, b"s")) + _field(2, _field(1, b"k") + _field(2, b"\x00\x01")) + _field(3, b"Opaque")
    decoded = decode_protobuf_object(_envelope("v1", "Secret", secret))
    assert decoded["data"] == {"k": "AAE="} and decoded["type"] == "Opaque"


def test_other_kinds_are_unsupported_media_types() -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        decode_protobuf_object(_envelope("apps/v1", "Deployment", b""))
