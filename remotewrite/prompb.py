"""Remote-write 1.0 protobuf message classes, built at import from the project's own schema.

``remote.proto`` beside this module is the schema (the subset of Prometheus' ``prompb``
this project sends). No generated ``_pb2`` module is committed: generated code pins the
protoc version against the runtime's, so the descriptor is assembled here with
``descriptor_pb2`` and turned into classes by the protobuf runtime (upb). The fast
encoder in ``encode.py`` writes the same bytes by hand; these classes are its reference
and the decoder tests and receivers use.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["FIELDS", "Label", "Sample", "TimeSeries", "WriteRequest"]

_F = descriptor_pb2.FieldDescriptorProto

FIELDS: dict[str, tuple[tuple[str, int, int, int, str], ...]] = {
    "WriteRequest": (("timeseries", 1, _F.LABEL_REPEATED, _F.TYPE_MESSAGE, ".prometheus.TimeSeries"),),
    "TimeSeries": (
        ("labels", 1, _F.LABEL_REPEATED, _F.TYPE_MESSAGE, ".prometheus.Label"),
        ("samples", 2, _F.LABEL_REPEATED, _F.TYPE_MESSAGE, ".prometheus.Sample"),
    ),
    "Label": (("name", 1, _F.LABEL_OPTIONAL, _F.TYPE_STRING, ""), ("value", 2, _F.LABEL_OPTIONAL, _F.TYPE_STRING, "")),
    "Sample": (
        ("value", 1, _F.LABEL_OPTIONAL, _F.TYPE_DOUBLE, ""),
        ("timestamp", 2, _F.LABEL_OPTIONAL, _F.TYPE_INT64, ""),
    ),
}
"""(name, number, label, type, type_name) per field, per message: the schema as data."""


def _build() -> dict[str, Any]:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="mtproxy/remotewrite/remote.proto", package="prometheus", syntax="proto3"
    )
    for message_name, fields in FIELDS.items():
        message = file_proto.message_type.add(name=message_name)
        for name, number, label, kind, type_name in fields:
            field = message.field.add(name=name, number=number, label=label, type=kind)
            if type_name:
                field.type_name = type_name
        if message_name == "WriteRequest":
            message.reserved_range.add(start=2, end=3)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{name}")) for name in FIELDS}


_CLASSES = _build()
WriteRequest: Any = _CLASSES["WriteRequest"]
TimeSeries: Any = _CLASSES["TimeSeries"]
Label: Any = _CLASSES["Label"]
Sample: Any = _CLASSES["Sample"]
