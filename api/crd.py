"""The MetricAccess CustomResourceDefinition, generated from the marshmallow schemas.

``mtproxy manifests`` writes the result to ``config/crd/bases/``; a test regenerates it
and fails on any difference, so the schemas stay the one source of truth. Field types,
``required``, ``default``, ``enum``, ``pattern``, ``minimum``/``maximum`` and
``min``/``max`` ``Length``/``Items``/``Properties`` come from the fields and their validators
(a map's value length from its ``value_max_length`` metadata); cross-field rules
(which endpoint block a target type needs, relabel rules, PromQL patterns) cannot be
stated in an openAPIV3Schema and are checked by ``mtproxy check`` and the controller.
"""

from __future__ import annotations

import enum
from typing import Any

import yaml
from marshmallow import Schema, fields, missing, validate

from mtproxy.api import metricaccess as m
from mtproxy.api.crd_descriptions import describe
from mtproxy.api.schemafields import StrictBoolean, StrictInteger
from mtproxy.api.schemas import MetricAccessSpecSchema, MetricAccessStatusSchema

__all__ = ["CRD_FILENAME", "PRINTER_COLUMNS", "metricaccess_crd", "render_crd_yaml", "schema_to_openapi"]

CRD_FILENAME = f"{m.GROUP}_{m.PLURAL}.yaml"

PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Source", "type": "string", "jsonPath": ".spec.source"},
    {"name": "Isolation", "type": "boolean", "jsonPath": ".spec.metricIsolation"},
    {"name": "Target", "type": "string", "jsonPath": ".spec.remoteWrite.target.type"},
    {"name": "Interval", "type": "string", "jsonPath": ".spec.remoteWrite.interval"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Series", "type": "integer", "jsonPath": ".status.remoteWrite.metricsCollected"},
    {"name": "Last Write", "type": "date", "jsonPath": ".status.remoteWrite.lastSuccessfulWrite"},
    {"name": "Reason", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)


def _default(field: fields.Field[Any]) -> Any:
    default = field.load_default
    if default is missing or default is None or callable(default):
        return missing
    if isinstance(default, enum.Enum):
        return default.value
    if isinstance(default, str | int | bool | float):
        return default
    return missing


def _field_to_openapi(field: fields.Field[Any]) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(field, fields.Nested):
        nested = field.schema
        out = schema_to_openapi(nested)
    elif isinstance(field, fields.List):
        out = {"type": "array", "items": _field_to_openapi(field.inner)}
    elif isinstance(field, fields.Dict):
        values: dict[str, Any] = {"type": "string"}
        if "value_max_length" in field.metadata:
            values["maxLength"] = field.metadata["value_max_length"]
        out = {"type": "object", "additionalProperties": values}
    elif isinstance(field, fields.Enum):
        out = {"type": "string", "enum": [member.value for member in field.enum]}
    elif isinstance(field, StrictBoolean | fields.Boolean):
        out = {"type": "boolean"}
    elif isinstance(field, StrictInteger | fields.Integer):
        out = {"type": "integer", "format": "int32"}
    elif isinstance(field, fields.String):
        out = {"type": "string"}
    else:
        out = {"x-kubernetes-int-or-string": True}
    for validator in _validators(field):
        _apply_validator(out, validator)
    for key in ("description", "pattern", "enum", "format"):
        if key in field.metadata:
            out[key] = field.metadata[key]
    default = _default(field)
    if default is not missing:
        out["default"] = default
    return out


def _validators(field: fields.Field[Any]) -> list[Any]:
    found: list[Any] = []
    for validator in field.validators:
        if isinstance(validator, validate.And):
            found.extend(validator.validators)
        else:
            found.append(validator)
    return found


def _apply_validator(out: dict[str, Any], validator: Any) -> None:
    if isinstance(validator, validate.Range):
        if validator.min is not None:
            out["minimum"] = validator.min
        if validator.max is not None:
            out["maximum"] = validator.max
    elif isinstance(validator, validate.Length):
        key = {"array": "Items", "object": "Properties"}.get(out.get("type", ""), "Length")
        if validator.min is not None:
            out[f"min{key}"] = validator.min
        if validator.max is not None:
            out[f"max{key}"] = validator.max
    elif isinstance(validator, validate.Regexp):
        out["pattern"] = validator.regex.pattern
    elif isinstance(validator, validate.OneOf):
        out["enum"] = list(validator.choices)
    elif isinstance(validator, validate.URL):
        out["pattern"] = r"^https?://"


def schema_to_openapi(schema: Schema) -> dict[str, Any]:
    """The structural openAPIV3Schema of one marshmallow schema (an ``object``)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in schema.fields.items():
        key = field.data_key or name
        properties[key] = _field_to_openapi(field)
        if field.required:
            required.append(key)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def metricaccess_crd() -> dict[str, Any]:
    """The whole CRD object."""
    spec_schema = schema_to_openapi(MetricAccessSpecSchema())
    spec_schema["description"] = "Which series a tenant namespace may read, and where to copy them."
    describe(spec_schema, "spec")
    status_schema = schema_to_openapi(MetricAccessStatusSchema())
    status_schema["description"] = "Written by the controller through the status subresource."
    describe(status_schema, "status")
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{m.PLURAL}.{m.GROUP}"},
        "spec": {
            "group": m.GROUP,
            "names": {
                "kind": m.KIND,
                "listKind": f"{m.KIND}List",
                "plural": m.PLURAL,
                "singular": m.KIND.lower(),
                "shortNames": ["ma"],
                "categories": ["monitoring"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": m.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(c) for c in PRINTER_COLUMNS],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "MetricAccess grants a tenant namespace read access to metrics "
                            "of the shared Prometheus and optionally forwards them.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crd_yaml() -> str:
    """The CRD as the YAML file committed under ``config/crd/bases/``."""
    header = "# Generated by `mtproxy manifests` from mtproxy.api.schemas. Do not edit by hand.\n"
    return header + yaml.safe_dump(metricaccess_crd(), sort_keys=False, width=1000, allow_unicode=True)
