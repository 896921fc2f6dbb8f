"""Structural-schema processing of custom objects: pruning, defaulting, then validation.

:class:`ObjectSchema` wraps one CRD version's ``openAPIV3Schema`` and applies it the way
the apiextensions server does on every create, update and patch:

1. **Pruning.** Fields not named by ``properties`` are dropped unless the schema has
   ``additionalProperties`` or ``x-kubernetes-preserve-unknown-fields: true``; the root's
   ``apiVersion``, ``kind`` and ``metadata`` (and those of ``x-kubernetes-embedded-resource``
   objects) are kept. The dropped paths are reported so the caller can warn or, under
   ``fieldValidation=Strict``, refuse.
2. **Defaulting.** A ``null`` field whose schema is not ``nullable`` is removed, then every
   missing property with a ``default`` gets a copy of it, recursively (defaults inside
   defaults apply too, through ``items`` and ``additionalProperties`` as well).
3. **Validation** with jsonschema's Draft 4 validator, which shares OpenAPI v3's keywords
   (boolean ``exclusiveMinimum``); ``nullable`` and ``x-kubernetes-int-or-string`` are
   translated, other ``x-kubernetes-*`` keywords are tolerated. Errors become
   :class:`~.errors.FieldCause` values with Kubernetes field paths (``spec.metrics[0]``)
   and the real server's reasons and message shapes.

Not reproduced: CEL rules (``x-kubernetes-validations``), ``x-kubernetes-list-type``
uniqueness, ``format`` checks, the structural-schema checks on the CRD itself, and
defaulting on read of objects stored before a default was added.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from .errors import FieldCause

__all__ = ["ObjectSchema", "SchemaOutcome", "field_path"]

_ROOT_KEPT = ("apiVersion", "kind", "metadata")
_DROPPED_KEYWORDS = frozenset({"nullable", "default", "example", "externalDocs", "format", "description"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaOutcome:
    """The result of applying a schema to one object."""

    object: dict[str, Any]
    """The pruned and defaulted object."""
    unknown_fields: tuple[str, ...]
    """Field paths that pruning removed, e.g. ``spec.bogus``."""
    causes: tuple[FieldCause, ...]
    """Validation failures; empty when the object is valid."""


def field_path(parts: Iterable[str | int]) -> str:
    """Render path parts as a Kubernetes field path: ``spec.metrics[0].name``."""
    rendered = ""
    for part in parts:
        if isinstance(part, int):
            rendered += f"[{part}]"
        else:
            rendered += f".{part}" if rendered else str(part)
    return rendered


class ObjectSchema:
    """One CRD version's ``openAPIV3Schema``, compiled once and applied per write."""

    def __init__(self, openapi_v3_schema: Mapping[str, Any]) -> None:
        self.raw: dict[str, Any] = copy.deepcopy(dict(openapi_v3_schema))
        self._validator = jsonschema.Draft4Validator(_to_jsonschema(self.raw))

    def apply(self, obj: Mapping[str, Any]) -> SchemaOutcome:
        """Prune, default and validate a copy of ``obj``."""
        unknown: list[str] = []
        pruned = _prune(copy.deepcopy(dict(obj)), self.raw, [], unknown, root=True)
        defaulted = _default(pruned, self.raw)
        assert isinstance(defaulted, dict)
        causes = self.validate(defaulted)
        return SchemaOutcome(object=defaulted, unknown_fields=tuple(unknown), causes=causes)

    def validate(self, obj: Mapping[str, Any]) -> tuple[FieldCause, ...]:
        """Return the validation failures of an already pruned and defaulted object."""
        causes: list[FieldCause] = []
        errors = sorted(self._validator.iter_errors(obj), key=lambda err: [str(p) for p in err.absolute_path])
        for error in errors:
            causes.extend(_causes_of(error))
        return tuple(causes)


def _prune(value: Any, schema: Mapping[str, Any], path: list[str | int], unknown: list[str], *,
           root: bool = False) -> Any:
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        embedded = root or schema.get("x-kubernetes-embedded-resource") is True
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if embedded and (key == "metadata" or (key in _ROOT_KEPT and key not in properties)):
                kept[key] = item  # ObjectMeta is never pruned by the custom resource's schema
            elif key in properties:
                kept[key] = _prune(item, properties[key], [*path, key], unknown)
            elif isinstance(additional, dict):
                kept[key] = _prune(item, additional, [*path, key], unknown)
            elif additional is True or preserve:
                kept[key] = item
            else:
                unknown.append(field_path([*path, key]))
        return kept
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(item, schema["items"], [*path, index], unknown) for index, item in enumerate(value)]
    return value


def _default(value: Any, schema: Mapping[str, Any]) -> Any:
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        for key, sub in properties.items():
            if key in value and value[key] is None and not sub.get("nullable"):
                del value[key]
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = _default(value[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in value:
                if key not in properties:
                    value[key] = _default(value[key], additional)
        return value
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_default(item, schema["items"]) for item in value]
    return value


def _to_jsonschema(schema: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, Mapping):
            converted[key] = {name: _to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            converted[key] = _to_jsonschema(value)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            converted[key] = [_to_jsonschema(sub) for sub in value]
        elif key.startswith("x-kubernetes-") or key in _DROPPED_KEYWORDS:
            continue
        else:
            converted[key] = value
    if schema.get("x-kubernetes-int-or-string") is True:
        converted["type"] = ["integer", "string"]
    if schema.get("nullable") is True:
        if isinstance(converted.get("type"), str):
            converted["type"] = [converted["type"], "null"]
        elif isinstance(converted.get("type"), list):
            converted["type"] = [*converted["type"], "null"]
        if isinstance(converted.get("enum"), list):
            converted["enum"] = [*converted["enum"], None]
    return converted


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        return "\"" + _go_type(value) + "\""
    return json.dumps(value)


def _causes_of(error: jsonschema.ValidationError) -> list[FieldCause]:
    parts = list(error.absolute_path)
    path = field_path(parts)
    keyword = str(error.validator)
    expected = error.validator_value
    value = error.instance
    shown = _show(value)
    if keyword == "required":
        missing = [name for name in expected if isinstance(value, dict) and name not in value]
        return [
            FieldCause(field=field_path([*parts, name]), message="Required value", reason="FieldValueRequired")
            for name in missing
        ]
    if keyword == "enum":
        supported = ", ".join(json.dumps(option) for option in expected)
        return [FieldCause(field=path, reason="FieldValueNotSupported",
                           message=f"Unsupported value: {shown}: supported values: {supported}")]
    if keyword == "type":
        wanted = expected if isinstance(expected, str) else "/".join(str(t) for t in expected)
        return [FieldCause(field=path, reason="FieldValueTypeInvalid",
                           message=f"Invalid value: \"{_go_type(value)}\": {path} in body must be of type "
                                   f"{wanted}: {shown}")]
    if keyword == "maxLength":
        return [FieldCause(field=path, reason="FieldValueTooLong",
                           message=f"Too long: may not be more than {expected} bytes")]
    if keyword == "maxItems":
        return [FieldCause(field=path, reason="FieldValueTooMany",
                           message=f"Too many: {len(value)}: must have at most {expected} items")]
    templates = {
        "pattern": f"should match '{expected}'",
        "minLength": f"should be at least {expected} chars long",
        "minimum": f"should be greater than or equal to {expected}",
        "maximum": f"should be less than or equal to {expected}",
        "minItems": f"should have at least {expected} items",
        "minProperties": f"should have at least {expected} properties",
        "maxProperties": f"should have at most {expected} properties",
        "multipleOf": f"should be a multiple of {expected}",
    }
    detail = templates.get(keyword)
    message = f"{path} in body {detail}" if detail else error.message
    return [FieldCause(field=path, reason="FieldValueInvalid", message=f"Invalid value: {shown}: {message}")]
