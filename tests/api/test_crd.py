"""Tests for api/crd.py: the committed CRD is current, and every sample validates against it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from marshmallow import ValidationError

from mtproxy.api import (
    CRD_FILENAME,
    PRINTER_COLUMNS,
    MetricAccessSchema,
    flatten_messages,
    metricaccess_crd,
    render_crd_yaml,
)

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "config" / "crd" / "bases" / CRD_FILENAME


def _documents_of_kind(paths: list[Path]) -> list[Any]:
    params = []
    for path in paths:
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(document, dict) and document.get("kind") == "MetricAccess":
                params.append(pytest.param(document, id=f"{path.relative_to(REPO)}#{index + 1}"))
    return params


SAMPLES = _documents_of_kind(
    sorted((REPO / "examples").rglob("*.yaml")) + sorted((REPO / "config" / "samples").glob("*.yaml"))
)


def _to_json_schema(node: Any) -> Any:
    """openAPIV3Schema as JSON Schema: the Kubernetes extensions become what they mean."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_json_schema(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", True)
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        out.pop("nullable")
    return out


@pytest.fixture(scope="module")
def committed_crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text(encoding="utf-8"))
    return crd


@pytest.fixture(scope="module")
def version(committed_crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = committed_crd["spec"]["versions"]
    result: dict[str, Any] = only
    return result


@pytest.fixture(scope="module")
def validator(version: dict[str, Any]) -> jsonschema.Draft202012Validator:
    schema = _to_json_schema(version["schema"]["openAPIV3Schema"])
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_crd_is_current() -> None:
    committed = CRD_PATH.read_text(encoding="utf-8")
    assert committed == render_crd_yaml(), (
        f"{CRD_PATH.relative_to(REPO)} is out of date with mtproxy.api.schemas; run `make manifests` and commit it"
    )


def test_rendered_crd_parses_back_to_the_crd_object() -> None:
    assert yaml.safe_load(render_crd_yaml()) == metricaccess_crd()


def test_crd_identity_is_the_originals(committed_crd: dict[str, Any], version: dict[str, Any]) -> None:
    assert committed_crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert committed_crd["kind"] == "CustomResourceDefinition"
    assert committed_crd["metadata"]["name"] == "metricaccesses.observability.ethos.io"
    spec = committed_crd["spec"]
    assert spec["group"] == "observability.ethos.io"
    assert spec["scope"] == "Namespaced"
    names = spec["names"]
    assert (names["kind"], names["listKind"], names["plural"], names["singular"]) == (
        "MetricAccess",
        "MetricAccessList",
        "metricaccesses",
        "metricaccess",
    )
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)


def test_short_name_ma_and_category_monitoring(committed_crd: dict[str, Any]) -> None:
    assert committed_crd["spec"]["names"]["shortNames"] == ["ma"]
    assert committed_crd["spec"]["names"]["categories"] == ["monitoring"]


def test_status_subresource_is_on(version: dict[str, Any]) -> None:
    assert version["subresources"] == {"status": {}}


def test_printer_columns_show_source_isolation_target_interval_ready_series_last_write_reason_age(
    version: dict[str, Any],
) -> None:
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    default_view = [c["name"] for c in version["additionalPrinterColumns"] if c.get("priority", 0) == 0]
    assert default_view == [
        "Source", "Isolation", "Target", "Interval", "Ready", "Series", "Last Write", "Reason", "Age"
    ]
    assert columns["Source"]["jsonPath"] == ".spec.source"
    assert columns["Isolation"]["jsonPath"] == ".spec.metricIsolation"
    assert columns["Target"]["jsonPath"] == ".spec.remoteWrite.target.type"
    assert columns["Interval"]["jsonPath"] == ".spec.remoteWrite.interval"
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    assert columns["Last Write"]["type"] == "date"
    assert columns["Series"]["type"] == "integer"
    assert [dict(c) for c in PRINTER_COLUMNS] == version["additionalPrinterColumns"]


def _at(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    node = schema
    for key in path:
        node = node["items"] if key == "[]" else node["properties"][key]
    return node


@pytest.mark.parametrize(
    ("path", "default"),
    [
        pytest.param(("spec", "remoteWrite", "interval"), "30s", id="interval"),
        pytest.param(("spec", "remoteWrite", "prometheus", "servicePort"), 9090, id="prometheus-port"),
        pytest.param(("spec", "remoteWrite", "target", "prometheus", "servicePort"), 9090, id="nested-prometheus-port"),
        pytest.param(("spec", "remoteWrite", "pushgateway", "servicePort"), 9091, id="pushgateway-port"),
        pytest.param(("spec", "remoteWrite", "metricRelabelings", "[]", "action"), "replace", id="relabel-action"),
        pytest.param(("spec", "remoteWrite", "metricRelabelings", "[]", "separator"), ";", id="relabel-separator"),
        pytest.param(("spec", "remoteWrite", "metricRelabelings", "[]", "regex"), "(.*)", id="relabel-regex"),
        pytest.param(("spec", "remoteWrite", "metricRelabelings", "[]", "replacement"), "$1", id="relabel-replacement"),
        pytest.param(("spec", "metricIsolation"), False, id="metric-isolation"),
        pytest.param(("spec", "remoteWrite", "honorLabels"), False, id="honor-labels"),
    ],
)
def test_crd_states_the_defaults(version: dict[str, Any], path: tuple[str, ...], default: Any) -> None:
    assert _at(version["schema"]["openAPIV3Schema"], *path)["default"] == default


@pytest.mark.parametrize(
    ("path", "required"),
    [
        pytest.param(("spec",), ["source", "metrics"], id="spec"),
        pytest.param(("spec", "remoteWrite"), ["enabled", "target"], id="remote-write"),
        pytest.param(("spec", "remoteWrite", "target"), ["type"], id="target"),
        pytest.param(("spec", "remoteWrite", "prometheus"), ["serviceName"], id="prometheus"),
        pytest.param(("spec", "remoteWrite", "pushgateway"), ["serviceName", "jobName"], id="pushgateway"),
        pytest.param(("spec", "remoteWrite", "remoteWrite"), ["url"], id="endpoint"),
        pytest.param(("spec", "remoteWrite", "remoteWrite", "basicAuth"), ["username", "passwordSecret"], id="auth"),
        pytest.param(
            ("spec", "remoteWrite", "remoteWrite", "basicAuth", "passwordSecret"), ["name", "key"], id="secret"
        ),
    ],
)
def test_crd_requires_the_originals_required_fields(
    version: dict[str, Any], path: tuple[str, ...], required: list[str]
) -> None:
    assert sorted(_at(version["schema"]["openAPIV3Schema"], *path)["required"]) == sorted(required)


def test_there_are_samples_of_both_target_layouts() -> None:
    layouts = set()
    for param in SAMPLES:
        (document,) = param.values
        remote_write = document["spec"].get("remoteWrite", {})
        if "prometheus" in remote_write:
            layouts.add("sibling")
        if "prometheus" in remote_write.get("target", {}):
            layouts.add("nested")
    assert layouts == {"sibling", "nested"}


@pytest.mark.parametrize("document", SAMPLES)
def test_every_sample_validates_against_the_crd_schema(
    validator: jsonschema.Draft202012Validator, document: dict[str, Any]
) -> None:
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize("document", SAMPLES)
def test_every_sample_loaded_and_dumped_still_validates_against_the_crd_schema(
    validator: jsonschema.Draft202012Validator, document: dict[str, Any]
) -> None:
    schema = MetricAccessSchema()
    dumped = schema.dump(schema.load(document))
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(dumped)]
    assert errors == []


def _quickstart() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        (REPO / "config" / "samples" / "observability_v1alpha1_metricaccess.yaml").read_text()
    )
    return document


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param(("spec", "remoteWrite", "prometheus", "servicePort"), "9090", id="string-port"),
        pytest.param(("spec", "remoteWrite", "prometheus", "servicePort"), 70000, id="port-out-of-range"),
        pytest.param(("spec", "metricIsolation"), "yes", id="string-bool"),
        pytest.param(("spec", "remoteWrite", "interval"), "30", id="interval-without-unit"),
        pytest.param(("spec", "remoteWrite", "target", "type"), "kafka", id="unknown-target-type"),
        pytest.param(("spec", "metrics"), [], id="no-metrics"),
        pytest.param(("spec", "source"), "", id="empty-source"),
        pytest.param(("spec", "remoteWrite", "prometheus", "serviceName"), "Bad_Name", id="service-name"),
        pytest.param(("spec", "remoteWrite", "metricRelabelings"), [{"action": "explode"}], id="unknown-action"),
    ],
)
def test_the_crd_schema_refuses_what_check_refuses(
    validator: jsonschema.Draft202012Validator, path: tuple[str, ...], value: Any
) -> None:
    document = _quickstart()
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert list(validator.iter_errors(document)), "the CRD accepted it"
    with pytest.raises(Exception):  # noqa: B017 - marshmallow's ValidationError; any refusal will do
        MetricAccessSchema().load(document)


@pytest.mark.parametrize("action", ["drop", "Drop", "DROP", "labeldrop", "LabelDrop", "labelDrop", "Labeldrop"])
def test_check_and_the_crd_agree_on_relabel_action_spellings(
    validator: jsonschema.Draft202012Validator, action: str
) -> None:
    document = _quickstart()
    document["spec"]["remoteWrite"]["metricRelabelings"] = [{"regex": "tmp_.*", "action": action}]
    try:
        MetricAccessSchema().load(document)
        check_accepts = True
    except Exception:  # marshmallow's ValidationError
        check_accepts = False
    crd_accepts = not list(validator.iter_errors(document))
    assert check_accepts == crd_accepts


# --- every spec field is bounded (issue 15, finding 2) -------------------------------------------


def _unbounded(node: dict[str, Any], path: str) -> list[str]:
    """Paths under ``node`` the API server would store at any size: strings without maxLength or
    enum, arrays without maxItems, maps without maxProperties."""
    found: list[str] = []
    kind = node.get("type")
    if kind == "string" and "maxLength" not in node and "enum" not in node:
        found.append(path)
    elif kind == "array":
        if "maxItems" not in node:
            found.append(path)
        found.extend(_unbounded(node["items"], f"{path}[]"))
    elif kind == "object":
        for name, child in node.get("properties", {}).items():
            found.extend(_unbounded(child, f"{path}.{name}"))
        values = node.get("additionalProperties")
        if isinstance(values, dict):
            if "maxProperties" not in node:
                found.append(path)
            found.extend(_unbounded(values, f"{path}.*"))
    return found


def test_every_spec_string_list_and_map_has_a_size_limit(version: dict[str, Any]) -> None:
    assert _unbounded(_at(version["schema"]["openAPIV3Schema"], "spec"), "spec") == []


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        pytest.param(("spec", "metrics"), ["up"] * 1001, "spec.metrics: must have at most 1000 items", id="metrics"),
        pytest.param(
            ("spec", "metrics"), ["a" * 16_385], "spec.metrics[0]: must have at most 16384 characters", id="pattern"
        ),
        pytest.param(("spec", "source"), "s" * 1025, "spec.source: must have at most 1024 characters", id="source"),
        pytest.param(
            ("spec", "labelSelectors"),
            {f"l{i}": "v" for i in range(65)},
            "spec.labelSelectors: must have at most 64 entries",
            id="label-selectors",
        ),
        pytest.param(
            ("spec", "labelSelectors"),
            {"env": "v" * 4097},
            "spec.labelSelectors.env: must have at most 4096 characters",
            id="label-selector-value",
        ),
    ],
)
def test_the_crd_limits_are_the_ones_the_loader_enforces(
    validator: jsonschema.Draft202012Validator, path: tuple[str, ...], value: Any, problem: str
) -> None:
    document = _quickstart()
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert len(list(validator.iter_errors(document))) == 1
    with pytest.raises(ValidationError) as caught:
        MetricAccessSchema().load(document)
    assert [str(p) for p in flatten_messages(caught.value.messages)] == [problem]


def test_every_spec_and_status_field_is_described_for_kubectl_explain() -> None:
    from mtproxy.api.crd import metricaccess_crd

    root = metricaccess_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    missing: list[str] = []

    def walk(schema: dict[str, Any], path: str) -> None:
        for name, child in (schema.get("properties") or {}).items():
            if not child.get("description"):
                missing.append(f"{path}.{name}")
            walk(child, f"{path}.{name}")
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], f"{path}[]")

    walk(root["properties"]["spec"], "spec")
    walk(root["properties"]["status"], "status")
    assert missing == []


def test_the_printer_columns_show_ready_series_last_write_and_reason_by_default() -> None:
    from mtproxy.api.crd import PRINTER_COLUMNS

    default = [column["name"] for column in PRINTER_COLUMNS if not column.get("priority")]
    assert {"Ready", "Series", "Last Write", "Reason"} <= set(default)
