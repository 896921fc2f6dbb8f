"""Decoding the protobuf request bodies that kubectl's typed commands send.

``kubectl create namespace|configmap|secret`` use client-go's typed clientset, which sends
``application/vnd.kubernetes.protobuf``: the ``k8s\\x00`` magic, then a
``runtime.Unknown`` envelope (``typeMeta``, ``raw``) whose ``raw`` is the object's own
message. The double decodes that envelope and the messages of Namespace, ConfigMap and
Secret (with the ObjectMeta fields a client sets on create) into the same JSON dicts a
JSON body gives; answers are always JSON, which client-go accepts. Any other kind, or a
malformed body, raises :class:`~.errors.UnsupportedMediaTypeError` /
:class:`~.errors.BadRequestError`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

from .errors import BadRequestError, UnsupportedMediaTypeError

__all__ = ["PROTOBUF", "decode_protobuf_object"]

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise BadRequestError("truncated protobuf varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield (field number, value): ints for varints, bytes for length-delimited fields."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            yield number, value
        elif wire_type == 2:
            length, position = _varint(data, position)
            yield number, data[position:position + length]
            position += length
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        else:
            raise BadRequestError(f"unsupported protobuf wire type {wire_type}")


def _text(value: int | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(value: int | bytes) -> tuple[str, bytes]:
    key, raw = "", b""
    for number, item in _fields(value if isinstance(value, bytes) else b""):
        if number == 1:
            key = _text(item)
        elif number == 2 and isinstance(item, bytes):
            raw = item
    return key, raw


def _object_meta(data: bytes) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    names = {1: "name", 2: "generateName", 3: "namespace", 6: "resourceVersion", 5: "uid"}
    for number, value in _fields(data):
        if number in names:
            metadata[names[number]] = _text(value)
        elif number in (11, 12):
            key, raw = _entry(value)
            metadata.setdefault("labels" if number == 11 else "annotations", {})[key] = raw.decode()
        elif number == 14:
            metadata.setdefault("finalizers", []).append(_text(value))
    return metadata


def _string_or_bytes_map(target: dict[str, Any], name: str, value: int | bytes, *, as_base64: bool) -> None:
    key, raw = _entry(value)
    target.setdefault(name, {})[key] = base64.b64encode(raw).decode() if as_base64 else raw.decode()


def _namespace(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in _fields(data):
        if number == 1 and isinstance(value, bytes):
            obj["metadata"] = _object_meta(value)
        elif number == 2 and isinstance(value, bytes):
            obj["spec"] = {"finalizers": [_text(v) for n, v in _fields(value) if n == 1]}
    return obj


def _config_map(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in _fields(data):
        if number == 1 and isinstance(value, bytes):
            obj["metadata"] = _object_meta(value)
        elif number in (2, 3):
            _string_or_bytes_map(obj, "data" if number == 2 else "binaryData", value, as_base64=number == 3)
        elif number == 4:
            obj["immutable"] = bool(value)
    return obj


def _secret(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in _fields(data):
        if number == 1 and isinstance(value, bytes):
            obj["metadata"] = _object_meta(value)
        elif number in (2, 4):
            _string_or_bytes_map(obj, "data" if number == 2 else "stringData", value, as_base64=number == 2)
        elif number == 3:
            obj["type"] = _text(value)
        elif number == 5:
            obj["immutable"] = bool(value)
    return obj


_DECODERS: dict[tuple[str, str], Callable[[bytes], dict[str, Any]]] = {
    ("v1", "Namespace"): _namespace,
    ("v1", "ConfigMap"): _config_map,
    ("v1", "Secret"): _secret,
}


def decode_protobuf_object(body: bytes) -> dict[str, Any]:
    """Return the JSON form of a protobuf-encoded Namespace, ConfigMap or Secret.

    Raises:
        BadRequestError: the body is not a Kubernetes protobuf envelope.
        UnsupportedMediaTypeError: the kind is not one the double decodes.
    """
    if not body.startswith(_MAGIC):
        raise BadRequestError("protobuf body does not start with the Kubernetes magic number")
    api_version = kind = ""
    raw = b""
    for number, value in _fields(body[len(_MAGIC):]):
        if number == 1 and isinstance(value, bytes):
            for meta_number, meta_value in _fields(value):
                if meta_number == 1:
                    api_version = _text(meta_value)
                elif meta_number == 2:
                    kind = _text(meta_value)
        elif number == 2 and isinstance(value, bytes):
            raw = value
    decoder = _DECODERS.get((api_version, kind))
    if decoder is None:
        raise UnsupportedMediaTypeError(
            f"the double decodes protobuf only for v1 Namespace, ConfigMap and Secret, not {api_version} {kind}; "
            "send application/json"
        )
    return {"apiVersion": api_version, "kind": kind, **decoder(raw)}
