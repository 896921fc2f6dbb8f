"""Structural schema processing: pruning, defaulting, validation with Kubernetes field paths (pure)."""

from __future__ import annotations

from typing import Any

from mtproxy.apidouble.schema import ObjectSchema, field_path

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "limit": {"type": "integer", "minimum": 1, "default": 5},
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string", "maxLength": 3}, "weight": {"type": "integer", "default": 1}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "nested": {"type": "object", "default": {}, "properties": {
                    "level": {"type": "string", "default": "info"}}},
            },
        },
    },
}


def _apply(spec: dict[str, Any]) -> Any:
    return ObjectSchema(SCHEMA).apply({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "n", "x": 1},
                                       "spec": spec})


def test_defaults_apply_recursively_including_inside_defaults_and_items() -> None:
    outcome = _apply({"items": [{"name": "a"}]})
    assert outcome.object["spec"] == {"limit": 5, "items": [{"name": "a", "weight": 1}],
                                      "nested": {"level": "info"}}
    assert outcome.causes == ()


def test_pruning_reports_unknown_fields_but_keeps_metadata_and_preserved_trees() -> None:
    outcome = _apply({"bogus": 1, "items": [{"name": "a", "extra": 2}], "free": {"any": {"thing": 1}},
                      "labels": {"k": "v"}})
    assert outcome.unknown_fields == ("spec.bogus", "spec.items[0].extra")
    assert outcome.object["metadata"] == {"name": "n", "x": 1}
    assert outcome.object["spec"]["free"] == {"any": {"thing": 1}}
    assert outcome.object["spec"]["labels"] == {"k": "v"}


def test_null_is_dropped_then_defaulted_unless_nullable() -> None:
    outcome = _apply({"limit": None, "note": None})
    assert outcome.object["spec"]["limit"] == 5 and outcome.object["spec"]["note"] is None
    assert outcome.causes == ()


def test_int_or_string_accepts_both() -> None:
    assert _apply({"port": 80}).causes == () and _apply({"port": "http"}).causes == ()
    assert [c.field for c in _apply({"port": 1.5}).causes] == ["spec.port"]


def test_errors_carry_kubernetes_paths_reasons_and_messages() -> None:
    causes = _apply({"limit": 0, "items": [{"name": "toolong"}], "labels": {"k": 1}}).causes
    by_field = {cause.field: cause for cause in causes}
    assert by_field["spec.limit"].message == "Invalid value: 0: spec.limit in body should be greater than or equal to 1"
    assert by_field["spec.items[0].name"].reason == "FieldValueTooLong"
    assert by_field["spec.labels.k"].reason == "FieldValueTypeInvalid"


def test_field_path_rendering() -> None:
    assert field_path(["spec", "metrics", 0, "name"]) == "spec.metrics[0].name"
