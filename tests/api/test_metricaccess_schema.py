"""Tests for api/schemas.py and api/metricaccess.py: round trips, defaults, both target layouts,
and one row per way a manifest can be wrong, each with its exact field path."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from marshmallow import ValidationError

from mtproxy.api import (
    API_VERSION,
    KIND,
    BasicAuth,
    Condition,
    ConditionStatus,
    FieldProblem,
    MetricAccess,
    MetricAccessSchema,
    MetricAccessSpec,
    MetricAccessStatus,
    ObjectMeta,
    PrometheusTarget,
    PushgatewayTarget,
    RelabelAction,
    RelabelConfig,
    RemoteWriteEndpoint,
    RemoteWriteSpec,
    RemoteWriteStatus,
    SecretKeyRef,
    TargetStatus,
    TargetType,
    TLSConfig,
    flatten_messages,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

Doc = dict[str, Any]
Patch = Callable[[Doc], None]


# --- helpers -------------------------------------------------------------------------------


def _load(document: Doc) -> MetricAccess:
    result: MetricAccess = MetricAccessSchema().load(document)
    return result


def _dump(obj: MetricAccess) -> Doc:
    result: Doc = MetricAccessSchema().dump(obj)
    return result


def _problems(document: Doc) -> list[FieldProblem]:
    """The field problems of an invalid document (fails the test if it is valid)."""
    with pytest.raises(ValidationError) as caught:
        MetricAccessSchema().load(document)
    return flatten_messages(caught.value.messages)


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _walk(document: Doc, path: str) -> tuple[Any, str | int]:
    """The container holding the last segment of ``path`` (created as dicts on the way) and that key."""
    keys: list[str | int] = [int(i) if i else name for name, i in _SEGMENT.findall(path)]
    node: Any = document
    for key in keys[:-1]:
        node = node[key] if isinstance(key, int) else node.setdefault(key, {})
    return node, keys[-1]


def set_(path: str, value: Any) -> Patch:
    """A patch that sets ``path`` (``spec.metrics[1]``, ``spec.remoteWrite.interval``) to ``value``."""

    def patch(document: Doc) -> None:
        node, key = _walk(document, path)
        node[key] = copy.deepcopy(value)

    return patch


def drop(path: str) -> Patch:
    """A patch that removes the field at ``path``."""

    def patch(document: Doc) -> None:
        node, key = _walk(document, path)
        del node[key]

    return patch


def both(*patches: Patch) -> Patch:
    def patch(document: Doc) -> None:
        for p in patches:
            p(document)

    return patch


def relabel(**rule: Any) -> Patch:
    """Replace the second metricRelabelings entry (index 1) with ``rule``."""
    return set_("spec.remoteWrite.metricRelabelings[1]", rule)


def valid_manifest() -> Doc:
    """A valid manifest that has every block, so any row can break any level of it."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "my-app-metrics", "namespace": "my-team"},
        "spec": {
            "source": "my-team",
            "metricIsolation": True,
            "metrics": ["http_requests_total", "http_.*", '{job="my-app"}'],
            "labelSelectors": {"environment": "production"},
            "remoteWrite": {
                "enabled": True,
                "interval": "30s",
                "target": {"type": "prometheus"},
                "prometheus": {
                    "serviceName": "prometheus-operated",
                    "servicePort": 9090,
                    "replicas": 2,
                    "statefulSetName": "prometheus-my-app",
                },
                "pushgateway": {"serviceName": "pushgateway", "servicePort": 9091, "jobName": "push"},
                "remoteWrite": {
                    "url": "https://receiver.example.com/api/v1/write",
                    "basicAuth": {"username": "u", "passwordSecret": {"name": "auth", "key": "password"}},
                    "headers": {"X-Tenant": "my-team"},
                    "tlsConfig": {"insecureSkipVerify": False},
                },
                "extraLabels": {"tenant": "my-team"},
                "honorLabels": True,
                "metricRelabelings": [
                    {"sourceLabels": ["__name__"], "regex": "container_(.*)", "targetLabel": "metrics_path"},
                    {"sourceLabels": ["__name__"], "regex": "etcd_debugging_.*", "action": "drop"},
                ],
            },
        },
    }


def test_the_base_manifest_of_the_invalid_table_is_valid() -> None:
    assert _load(valid_manifest()).spec.remote_write is not None


# --- round trips ---------------------------------------------------------------------------

_SECRET = SecretKeyRef(name="auth", key="password")
_META = ObjectMeta(
    name="my-app-metrics",
    namespace="my-team",
    uid="0b7c9e1a-1111-2222-3333-444455556666",
    resource_version="12345",
    generation=7,
    creation_timestamp="2024-05-01T10:00:00Z",
    labels={"app.kubernetes.io/part-of": "shop"},
    annotations={"note": 'a\nmultiline "value"'},
)
_EVERY_RELABEL_ACTION = (
    RelabelConfig(source_labels=("__name__",), regex="container_(.*)", target_label="metrics_path", replacement="/x"),
    RelabelConfig(source_labels=("job", "instance"), separator="@", target_label="${1}_copy", regex="(.+)@.*"),
    RelabelConfig(source_labels=("__name__",), regex="keep_.*", action=RelabelAction.KEEP),
    RelabelConfig(source_labels=("__name__",), regex="drop_.*", action=RelabelAction.DROP),
    RelabelConfig(source_labels=("a",), target_label="b", action=RelabelAction.KEEPEQUAL),
    RelabelConfig(source_labels=("a",), target_label="b", action=RelabelAction.DROPEQUAL),
    RelabelConfig(source_labels=("instance",), modulus=8, target_label="shard", action=RelabelAction.HASHMOD),
    RelabelConfig(regex="__meta_(.+)", replacement="meta_$1", action=RelabelAction.LABELMAP),
    RelabelConfig(regex="pod_template_hash", action=RelabelAction.LABELDROP),
    RelabelConfig(regex="job|instance|__name__", action=RelabelAction.LABELKEEP),
    RelabelConfig(source_labels=("method",), target_label="method", action=RelabelAction.LOWERCASE),
    RelabelConfig(source_labels=("code",), target_label="code", action=RelabelAction.UPPERCASE),
)
_FULL_STATUS = MetricAccessStatus(
    observed_generation=7,
    conditions=(
        Condition(
            type="Ready",
            status=ConditionStatus.TRUE,
            reason="Forwarding",
            message="2 targets healthy",
            last_transition_time="2024-05-01T10:01:00Z",
            observed_generation=7,
        ),
        Condition(type="Degraded", status=ConditionStatus.UNKNOWN, reason="Starting"),
    ),
    last_updated="2024-05-01T10:02:00Z",
    validated_metrics=("http_requests_total", "http_.*"),
    remote_write=RemoteWriteStatus(
        active=True,
        last_collection="2024-05-01T10:02:00Z",
        last_successful_write="2024-05-01T10:02:01Z",
        metrics_collected=42,
        samples_forwarded=10_000_000,
        last_error="none so far",
        targets=(
            TargetStatus(endpoint="http://a:9090/api/v1/write", healthy=True, last_success_time="2024-05-01T10:02:01Z"),
            TargetStatus(endpoint="http://b:9090/api/v1/write", healthy=False, last_error="connection refused"),
        ),
    ),
)


def _object(remote_write: RemoteWriteSpec | None, *, status: MetricAccessStatus | None = None) -> MetricAccess:
    return MetricAccess(
        metadata=_META,
        spec=MetricAccessSpec(
            source="my-team",
            metrics=("http_requests_total", "http_.*", '{job="my-app"}', 'up{job="a\\"b",env!~"dev|test"}'),
            metric_isolation=True,
            label_selectors={"environment": "production", "team": "webapp"},
            remote_write=remote_write,
        ),
        status=status,
    )


ROUND_TRIP_OBJECTS = [
    pytest.param(
        MetricAccess(metadata=ObjectMeta(name="minimal"), spec=MetricAccessSpec(source="s", metrics=("up",))),
        id="minimal-defaults-only",
    ),
    pytest.param(_object(None, status=MetricAccessStatus()), id="no-remote-write-empty-status"),
    pytest.param(
        _object(
            RemoteWriteSpec(
                enabled=True,
                target_type=TargetType.PROMETHEUS,
                interval="1m30s",
                prometheus=PrometheusTarget(
                    service_name="prometheus-operated",
                    service_port=9091,
                    replicas=3,
                    stateful_set_name="prometheus-my-app",
                    target_namespace="other-team",
                ),
                extra_labels={"tenant": "my-team", "managed_by": "multi-tenant-proxy"},
                honor_labels=True,
                metric_relabelings=_EVERY_RELABEL_ACTION,
            ),
            status=_FULL_STATUS,
        ),
        id="prometheus-replicas-every-relabel-action-full-status",
    ),
    pytest.param(
        _object(
            RemoteWriteSpec(
                enabled=False,
                target_type=TargetType.PUSHGATEWAY,
                interval="24h",
                pushgateway=PushgatewayTarget(service_name="pushgateway", job_name="remote-write", service_port=9999),
            )
        ),
        id="pushgateway-disabled",
    ),
    pytest.param(
        _object(
            RemoteWriteSpec(
                enabled=True,
                target_type=TargetType.REMOTE_WRITE,
                interval="5s",
                remote_write=RemoteWriteEndpoint(
                    url="https://receiver.example.com/api/v1/write",
                    basic_auth=BasicAuth(username="monitoring-user", password_secret=_SECRET),
                    headers={"X-Tenant": "my-team", "X-Scope-OrgID": "a"},
                    tls_config=TLSConfig(insecure_skip_verify=True, ca_secret=SecretKeyRef(name="ca", key="ca.crt")),
                ),
            )
        ),
        id="remote-write-basic-auth-tls",
    ),
    pytest.param(
        _object(
            RemoteWriteSpec(
                enabled=True,
                target_type=TargetType.REMOTE_WRITE,
                remote_write=RemoteWriteEndpoint(url="http://vm:8428/api/v1/write", bearer_token_secret=_SECRET),
            )
        ),
        id="remote-write-bearer-token",
    ),
    pytest.param(
        _object(
            RemoteWriteSpec(
                enabled=True,
                target_type=TargetType.PROMETHEUS,
                prometheus=PrometheusTarget(service_name="p"),
                pushgateway=PushgatewayTarget(service_name="pg", job_name="j"),
                remote_write=RemoteWriteEndpoint(url="http://x/api/v1/write"),
            )
        ),
        id="every-endpoint-block-at-once",
    ),
]


@pytest.mark.parametrize("obj", ROUND_TRIP_OBJECTS)
def test_load_of_dump_equals_the_original_object(obj: MetricAccess) -> None:
    assert _load(_dump(obj)) == obj


@pytest.mark.parametrize("obj", ROUND_TRIP_OBJECTS)
def test_dump_survives_json_and_yaml_serialisation(obj: MetricAccess) -> None:
    dumped = _dump(obj)
    assert _load(json.loads(json.dumps(dumped))) == obj
    assert _load(yaml.safe_load(yaml.safe_dump(dumped))) == obj


def test_dump_writes_no_nulls_and_puts_api_version_and_kind_first() -> None:
    dumped = _dump(_object(None))
    assert list(dumped)[:2] == ["apiVersion", "kind"]
    assert dumped["apiVersion"] == "observability.ethos.io/v1alpha1"
    assert dumped["kind"] == "MetricAccess"
    assert "null" not in json.dumps(dumped)
    assert "status" not in dumped


@pytest.mark.parametrize("path", sorted(EXAMPLES.rglob("*.yaml")), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_manifest_round_trips(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == KIND]
    for document in documents:
        obj = _load(document)
        assert _load(_dump(obj)) == obj


# --- defaults ------------------------------------------------------------------------------


def _minimal_with_remote_write(target_type: str, block: Doc, *, relabelings: list[Doc] | None = None) -> Doc:
    key = {"prometheus": "prometheus", "pushgateway": "pushgateway", "remote_write": "remoteWrite"}[target_type]
    remote_write: Doc = {"enabled": True, "target": {"type": target_type}, key: block}
    if relabelings is not None:
        remote_write["metricRelabelings"] = relabelings
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "a"},
        "spec": {"source": "a", "metrics": ["up"], "remoteWrite": remote_write},
    }


def test_spec_defaults_are_the_originals() -> None:
    spec = _load(_minimal_with_remote_write("prometheus", {"serviceName": "p"})).spec
    assert spec.metric_isolation is False
    assert spec.label_selectors == {}
    assert spec.remote_write is not None
    assert spec.remote_write.interval == "30s"
    assert spec.remote_write.interval_ms == 30_000
    assert spec.remote_write.extra_labels == {}
    assert spec.remote_write.honor_labels is False
    assert spec.remote_write.metric_relabelings == ()
    assert spec.remote_write.prometheus == PrometheusTarget(service_name="p", service_port=9090)
    assert spec.remote_write.prometheus.target_namespace is None
    assert spec.remote_write.prometheus.replicas is None


def test_pushgateway_port_defaults_to_9091() -> None:
    spec = _load(_minimal_with_remote_write("pushgateway", {"serviceName": "pg", "jobName": "j"})).spec
    assert spec.remote_write is not None
    assert spec.remote_write.pushgateway == PushgatewayTarget(service_name="pg", job_name="j", service_port=9091)


def test_relabel_defaults_are_prometheus_defaults() -> None:
    document = _minimal_with_remote_write("prometheus", {"serviceName": "p"}, relabelings=[{"targetLabel": "x"}])
    spec = _load(document).spec
    assert spec.remote_write is not None
    (rule,) = spec.remote_write.metric_relabelings
    assert rule == RelabelConfig(
        source_labels=None,
        separator=";",
        regex="(.*)",
        modulus=0,
        target_label="x",
        replacement="$1",
        action=RelabelAction.REPLACE,
    )


def test_metadata_namespace_defaults_to_empty_and_key_is_namespace_slash_name() -> None:
    obj = _load(_minimal_with_remote_write("prometheus", {"serviceName": "p"}))
    assert obj.metadata.namespace == ""
    assert _load(valid_manifest()).key == "my-team/my-app-metrics"


@pytest.mark.parametrize(
    ("spelling", "action"),
    [
        pytest.param("drop", RelabelAction.DROP, id="lowercase"),
        pytest.param("Drop", RelabelAction.DROP, id="capitalised"),
        pytest.param("LabelDrop", RelabelAction.LABELDROP, id="camel-case"),
    ],
)
def test_relabel_action_is_read_case_insensitively_and_dumped_lowercase(spelling: str, action: RelabelAction) -> None:
    rule: Doc = {"regex": "x", "action": spelling}
    if action is RelabelAction.DROP:
        rule["sourceLabels"] = ["__name__"]
    obj = _load(_minimal_with_remote_write("prometheus", {"serviceName": "p"}, relabelings=[rule]))
    assert obj.spec.remote_write is not None
    assert obj.spec.remote_write.metric_relabelings[0].action is action
    assert _dump(obj)["spec"]["remoteWrite"]["metricRelabelings"][0]["action"] == action.value


def test_status_ignores_fields_it_does_not_know() -> None:
    document = valid_manifest()
    document["status"] = {"remoteWrite": {"active": True, "futureField": 1}, "somethingNew": "x"}
    status = _load(document).status
    assert status == MetricAccessStatus(remote_write=RemoteWriteStatus(active=True))


# --- the two target layouts ----------------------------------------------------------------

_BLOCKS: dict[str, tuple[str, Doc]] = {
    "prometheus": ("prometheus", {"serviceName": "prometheus-operated", "servicePort": 9090}),
    "pushgateway": ("pushgateway", {"serviceName": "pushgateway", "jobName": "remote-write-metrics"}),
    "remote_write": ("remoteWrite", {"url": "https://x.example.com/api/v1/write", "headers": {"X-A": "b"}}),
}


def _layout(target_type: str, *, nested: bool, sibling: bool) -> Doc:
    key, block = _BLOCKS[target_type]
    document = _minimal_with_remote_write(target_type, block)
    remote_write = document["spec"]["remoteWrite"]
    if not sibling:
        del remote_write[key]
    if nested:
        remote_write["target"][key] = copy.deepcopy(block)
    return document


@pytest.mark.parametrize("target_type", sorted(_BLOCKS))
def test_endpoint_nested_under_target_loads_as_the_sibling_block(target_type: str) -> None:
    sibling = _load(_layout(target_type, nested=False, sibling=True))
    nested = _load(_layout(target_type, nested=True, sibling=False))
    assert nested == sibling


@pytest.mark.parametrize("target_type", sorted(_BLOCKS))
def test_the_same_endpoint_in_both_places_is_accepted(target_type: str) -> None:
    assert _load(_layout(target_type, nested=True, sibling=True)) == _load(
        _layout(target_type, nested=False, sibling=True)
    )


@pytest.mark.parametrize("target_type", sorted(_BLOCKS))
def test_dump_writes_the_sibling_layout_with_only_type_under_target(target_type: str) -> None:
    key, block = _BLOCKS[target_type]
    dumped = _dump(_load(_layout(target_type, nested=True, sibling=False)))["spec"]["remoteWrite"]
    assert dumped["target"] == {"type": target_type}
    for field, value in block.items():
        assert dumped[key][field] == value


@pytest.mark.parametrize("target_type", sorted(_BLOCKS))
def test_differing_nested_and_sibling_blocks_are_an_error_naming_both_paths(target_type: str) -> None:
    key, _ = _BLOCKS[target_type]
    document = _layout(target_type, nested=True, sibling=True)
    document["spec"]["remoteWrite"]["target"][key]["extra"] = "differs"
    problems = _problems(document)
    assert [p.path for p in problems] == [f"spec.remoteWrite.{key}"]
    assert f"spec.remoteWrite.{key}" in problems[0].message
    assert f"spec.remoteWrite.target.{key}" in problems[0].message
    assert "keep one" in problems[0].message


def test_both_quickstart_layouts_of_the_readme_describe_the_same_target() -> None:
    def access(name: str) -> MetricAccess:  # each file is its Namespace, then the MetricAccess
        (document,) = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d.get("kind") == KIND]
        return _load(document)

    sibling = access("quickstart-my-app.yaml")
    nested = access("quickstart-my-app-nested-target.yaml")
    assert sibling.spec.remote_write is not None
    assert nested.spec.remote_write is not None
    # The nested example leaves out the relabelings; everything else is the same object.
    assert dataclasses.replace(sibling.spec.remote_write, metric_relabelings=()) == nested.spec.remote_write
    assert dataclasses.replace(sibling.spec, remote_write=None) == dataclasses.replace(nested.spec, remote_write=None)


def test_errors_in_a_nested_endpoint_block_name_the_nested_path() -> None:
    document = _layout("prometheus", nested=True, sibling=False)
    document["spec"]["remoteWrite"]["target"]["prometheus"]["servicePort"] = "9090"
    assert [p.path for p in _problems(document)] == ["spec.remoteWrite.target.prometheus.servicePort"]


# --- one row per way to be wrong -----------------------------------------------------------

_RW = "spec.remoteWrite"
_PROM = f"{_RW}.prometheus"
_PUSH = f"{_RW}.pushgateway"
_EP = f"{_RW}.remoteWrite"
_BA = f"{_EP}.basicAuth"
_RL = f"{_RW}.metricRelabelings[1]"
_BOUNDS = "must be a duration between 5s and"

INVALID_MANIFESTS = [
    # wrong types
    pytest.param(set_("spec.metricIsolation", "yes"), "spec.metricIsolation", "must be a boolean", id="bool-as-yes"),
    pytest.param(
        set_("spec.metricIsolation", "true"), "spec.metricIsolation", "must be a boolean", id="bool-as-string"
    ),
    pytest.param(set_(f"{_RW}.enabled", "true"), f"{_RW}.enabled", "must be a boolean", id="enabled-as-string"),
    pytest.param(set_(f"{_RW}.enabled", 1), f"{_RW}.enabled", "must be a boolean", id="enabled-as-int"),
    pytest.param(set_(f"{_RW}.honorLabels", "no"), f"{_RW}.honorLabels", "must be a boolean", id="honor-labels-as-no"),
    pytest.param(set_(f"{_PROM}.servicePort", "9090"), f"{_PROM}.servicePort", "must be an integer", id="port-string"),
    pytest.param(set_(f"{_PROM}.servicePort", 9090.5), f"{_PROM}.servicePort", "must be an integer", id="port-float"),
    pytest.param(set_(f"{_PROM}.servicePort", True), f"{_PROM}.servicePort", "must be an integer", id="port-bool"),
    pytest.param(set_(f"{_PROM}.replicas", "2"), f"{_PROM}.replicas", "must be an integer", id="replicas-string"),
    pytest.param(set_("spec.source", 3), "spec.source", "must be a string", id="source-int"),
    pytest.param(set_("spec.source", 1.5), "spec.source", "must be a string", id="source-float"),
    pytest.param(set_("spec.metrics", "up"), "spec.metrics", "not a valid list", id="metrics-not-a-list"),
    pytest.param(set_("spec.metrics[1]", 3), "spec.metrics[1]", "must be a string", id="metrics-item-int"),
    pytest.param(set_("spec.labelSelectors", ["a"]), "spec.labelSelectors", "map of string", id="selectors-list"),
    pytest.param(set_("spec.labelSelectors.env", 1), "spec.labelSelectors.env", "must be a string", id="selector-int"),
    pytest.param(set_(f"{_RW}.extraLabels.a", 1), f"{_RW}.extraLabels.a", "must be a string", id="extra-label-int"),
    pytest.param(set_(f"{_RW}.interval", 30), f"{_RW}.interval", "must be a string", id="interval-int"),
    pytest.param(set_(_RW, "yes"), _RW, "invalid input type", id="remote-write-string"),
    pytest.param(set_(f"{_RW}.target", "prometheus"), f"{_RW}.target", "invalid input type", id="target-string"),
    pytest.param(set_(f"{_EP}.headers", "X-A: b"), f"{_EP}.headers", "map of string", id="headers-string"),
    pytest.param(set_(f"{_RL}.modulus", 2.5), f"{_RL}.modulus", "must be an integer", id="modulus-float"),
    pytest.param(set_(f"{_RL}.sourceLabels", "a"), f"{_RL}.sourceLabels", "not a valid list", id="source-labels-str"),
    pytest.param(set_("spec", None), "spec", "may not be null", id="spec-null"),
    # missing required fields, at every level
    pytest.param(drop("apiVersion"), "apiVersion", "missing data for required field", id="missing-api-version"),
    pytest.param(drop("kind"), "kind", "missing data for required field", id="missing-kind"),
    pytest.param(drop("metadata"), "metadata", "missing data for required field", id="missing-metadata"),
    pytest.param(drop("metadata.name"), "metadata.name", "missing data for required field", id="missing-name"),
    pytest.param(drop("spec"), "spec", "missing data for required field", id="missing-spec"),
    pytest.param(drop("spec.metrics"), "spec.metrics", "missing data for required field", id="missing-metrics"),
    pytest.param(drop("spec.source"), "spec.source", "missing data for required field", id="missing-source"),
    pytest.param(drop(f"{_RW}.enabled"), f"{_RW}.enabled", "missing data", id="missing-remote-write-enabled"),
    pytest.param(drop(f"{_RW}.target"), f"{_RW}.target", "missing data", id="missing-target"),
    pytest.param(drop(f"{_RW}.target.type"), f"{_RW}.target.type", "missing data", id="missing-target-type"),
    pytest.param(drop(f"{_PROM}.serviceName"), f"{_PROM}.serviceName", "missing data", id="missing-prom-service"),
    pytest.param(drop(f"{_PUSH}.serviceName"), f"{_PUSH}.serviceName", "missing data", id="missing-push-service"),
    pytest.param(drop(f"{_PUSH}.jobName"), f"{_PUSH}.jobName", "missing data", id="missing-push-job-name"),
    pytest.param(drop(f"{_EP}.url"), f"{_EP}.url", "missing data", id="missing-remote-write-url"),
    pytest.param(drop(f"{_BA}.username"), f"{_BA}.username", "missing data", id="missing-basic-auth-username"),
    pytest.param(drop(f"{_BA}.passwordSecret"), f"{_BA}.passwordSecret", "missing data", id="missing-password-secret"),
    pytest.param(
        drop(f"{_BA}.passwordSecret.name"), f"{_BA}.passwordSecret.name", "missing data", id="missing-secret-name"
    ),
    pytest.param(
        drop(f"{_BA}.passwordSecret.key"),
        f"{_BA}.passwordSecret.key",
        "missing data",
        id="missing-secret-key",
    ),
    pytest.param(set_("spec.source", ""), "spec.source", "shorter than minimum length 1", id="empty-source"),
    pytest.param(set_(f"{_PUSH}.jobName", ""), f"{_PUSH}.jobName", "shorter than minimum length 1", id="empty-job"),
    # bad enums
    pytest.param(set_(f"{_RW}.target.type", "kafka"), f"{_RW}.target.type", "must be one of", id="target-type-kafka"),
    pytest.param(
        set_(f"{_RW}.target.type", "Prometheus"), f"{_RW}.target.type", "must be one of", id="target-type-case"
    ),
    pytest.param(
        set_(f"{_RW}.target.type", "remoteWrite"), f"{_RW}.target.type", "remote_write", id="target-type-camel"
    ),
    # unknown fields at each level
    pytest.param(set_("status2", {}), "status2", "unknown field", id="unknown-top-level"),
    pytest.param(set_("spec.namespace", "x"), "spec.namespace", "unknown field", id="unknown-in-spec"),
    pytest.param(set_(f"{_RW}.timeout", "1s"), f"{_RW}.timeout", "unknown field", id="unknown-in-remote-write"),
    pytest.param(set_(f"{_RW}.target.url", "x"), f"{_RW}.target.url", "unknown field", id="unknown-in-target"),
    pytest.param(set_(f"{_PROM}.port", 1), f"{_PROM}.port", "unknown field", id="unknown-in-prometheus"),
    pytest.param(set_(f"{_PUSH}.job", "x"), f"{_PUSH}.job", "unknown field", id="unknown-in-pushgateway"),
    pytest.param(set_(f"{_EP}.bearerToken", "x"), f"{_EP}.bearerToken", "unknown field", id="unknown-in-endpoint"),
    pytest.param(set_(f"{_BA}.password", "x"), f"{_BA}.password", "unknown field", id="unknown-in-basic-auth"),
    pytest.param(
        set_(f"{_BA}.passwordSecret.namespace", "x"),
        f"{_BA}.passwordSecret.namespace",
        "unknown field",
        id="unknown-in-password-secret",
    ),
    pytest.param(set_(f"{_EP}.tlsConfig.ca", "x"), f"{_EP}.tlsConfig.ca", "unknown field", id="unknown-in-tls"),
    pytest.param(set_(f"{_RL}.source_labels", ["a"]), f"{_RL}.source_labels", "unknown field", id="unknown-in-rule"),
    # interval
    pytest.param(set_(f"{_RW}.interval", "30"), f"{_RW}.interval", "not a duration", id="interval-without-unit"),
    pytest.param(set_(f"{_RW}.interval", "abc"), f"{_RW}.interval", "not a duration", id="interval-abc"),
    pytest.param(set_(f"{_RW}.interval", ""), f"{_RW}.interval", "not a duration", id="interval-empty"),
    pytest.param(set_(f"{_RW}.interval", "-30s"), f"{_RW}.interval", "not a duration", id="interval-negative"),
    pytest.param(set_(f"{_RW}.interval", "1s"), f"{_RW}.interval", _BOUNDS, id="interval-1s-below-5s"),
    pytest.param(set_(f"{_RW}.interval", "4999ms"), f"{_RW}.interval", _BOUNDS, id="interval-just-below-5s"),
    pytest.param(set_(f"{_RW}.interval", "25h"), f"{_RW}.interval", _BOUNDS, id="interval-25h-above-24h"),
    pytest.param(set_(f"{_RW}.interval", "24h1ms"), f"{_RW}.interval", _BOUNDS, id="interval-just-above-24h"),
    # ports and replicas
    pytest.param(set_(f"{_PROM}.servicePort", 0), f"{_PROM}.servicePort", "greater than or equal to 1", id="port-0"),
    pytest.param(
        set_(f"{_PROM}.servicePort", 70000), f"{_PROM}.servicePort", "less than or equal to 65535", id="port-70000"
    ),
    pytest.param(
        set_(f"{_PUSH}.servicePort", 0), f"{_PUSH}.servicePort", "greater than or equal to 1", id="push-port-0"
    ),
    pytest.param(set_(f"{_PROM}.replicas", 0), f"{_PROM}.replicas", "greater than or equal to 1", id="replicas-0"),
    pytest.param(
        drop(f"{_PROM}.statefulSetName"),
        f"{_PROM}.replicas",
        "statefulSetName must be given",
        id="replicas-without-sts",
    ),
    pytest.param(drop(f"{_PROM}.replicas"), f"{_PROM}.replicas", "must be given together", id="sts-without-replicas"),
    # relabel rules, every check Prometheus makes
    pytest.param(
        relabel(sourceLabels=["instance"], targetLabel="shard", action="hashmod"),
        f"{_RL}.modulus",
        "hashmod action requires a non-zero modulus",
        id="hashmod-without-modulus",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], targetLabel="a-b", modulus=2, action="hashmod"),
        f"{_RL}.targetLabel",
        "'a-b' is invalid for hashmod action",
        id="hashmod-invalid-target-label",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], regex="(.*)"),
        f"{_RL}.targetLabel",
        "replace action requires targetLabel",
        id="replace-without-target-label",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], targetLabel="1abc"),
        f"{_RL}.targetLabel",
        "'1abc' is invalid for replace action",
        id="replace-target-label-starts-with-digit",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], targetLabel="a-b"),
        f"{_RL}.targetLabel",
        "'a-b' is invalid for replace action",
        id="replace-target-label-with-dash",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], targetLabel="$1-x"),
        f"{_RL}.targetLabel",
        "is invalid for replace action",
        id="replace-templated-target-label-with-dash",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], regex="tmp_.*", action="labeldrop"),
        f"{_RL}.action",
        "labeldrop action requires only regex",
        id="labeldrop-with-source-labels",
    ),
    pytest.param(
        relabel(regex="tmp_.*", targetLabel="x", action="labelkeep"),
        f"{_RL}.action",
        "labelkeep action requires only regex",
        id="labelkeep-with-target-label",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], targetLabel="b", regex="x", action="keepequal"),
        f"{_RL}.action",
        "keepequal action requires only sourceLabels and targetLabel",
        id="keepequal-with-regex",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], action="dropequal"),
        f"{_RL}.targetLabel",
        "dropequal action requires targetLabel",
        id="dropequal-without-target-label",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], targetLabel="b", replacement="x", action="lowercase"),
        f"{_RL}.replacement",
        "replacement can not be set for lowercase action",
        id="lowercase-with-replacement",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], targetLabel="1x", action="uppercase"),
        f"{_RL}.targetLabel",
        "'1x' is invalid for uppercase action",
        id="uppercase-invalid-target-label",
    ),
    pytest.param(
        relabel(regex="__meta_(.+)", replacement="bad-name", action="labelmap"),
        f"{_RL}.replacement",
        "'bad-name' is invalid for labelmap action",
        id="labelmap-invalid-replacement",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], regex="(?<=x)y", targetLabel="b"),
        f"{_RL}.regex",
        "invalid RE2 regex '(?<=x)y'",
        id="regex-lookbehind-is-not-re2",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], regex="(a", targetLabel="b"),
        f"{_RL}.regex",
        "invalid RE2 regex",
        id="regex-unbalanced",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], action="explode"),
        f"{_RL}.action",
        "unknown relabel action 'explode'",
        id="unknown-action",
    ),
    pytest.param(relabel(sourceLabels=["a"], action=""), f"{_RL}.action", "unknown relabel action", id="empty-action"),
    pytest.param(
        relabel(sourceLabels=["a-b"], targetLabel="c"),
        f"{_RL}.sourceLabels[0]",
        "invalid label name 'a-b'",
        id="invalid-source-label",
    ),
    pytest.param(
        relabel(sourceLabels=["a"], targetLabel="b", modulus=-1),
        f"{_RL}.modulus",
        "greater than or equal to 0",
        id="negative-modulus",
    ),
    # metrics patterns
    pytest.param(set_("spec.metrics", []), "spec.metrics", "shorter than minimum length 1", id="metrics-empty"),
    pytest.param(set_("spec.metrics[1]", ""), "spec.metrics[1]", "must not be empty", id="pattern-empty"),
    pytest.param(
        set_("spec.metrics[1]", "(?<=x)"), "spec.metrics[1]", "invalid RE2 regex '(?<=x)'", id="pattern-bad-regex"
    ),
    pytest.param(
        set_("spec.metrics[2]", 'up{job=~"("}'), "spec.metrics[2]", "not a valid selector", id="pattern-bad-selector"
    ),
    pytest.param(
        set_("spec.metrics[2]", "rate(up[5m]"), "spec.metrics[2]", "invalid RE2 regex", id="pattern-unbalanced"
    ),
    pytest.param(
        set_("spec.metrics[0]", 'sum(up{job="a"})'),
        "spec.metrics[0]",
        "plain vector selector",
        id="pattern-aggregation",
    ),
    # headers, label maps
    pytest.param(
        set_(f"{_EP}.headers.Authorization", "Bearer x"),
        f"{_EP}.headers",
        "reserved header(s) may not be set: Authorization",
        id="reserved-header-authorization",
    ),
    pytest.param(
        set_(f"{_EP}.headers.content-encoding", "gzip"),
        f"{_EP}.headers",
        "reserved header(s) may not be set: content-encoding",
        id="reserved-header-any-case",
    ),
    pytest.param(
        set_(f"{_EP}.bearerTokenSecret", {"name": "t", "key": "token"}),
        f"{_EP}.bearerTokenSecret",
        "not both",
        id="basic-auth-and-bearer-token",
    ),
    pytest.param(
        set_(f"{_RW}.extraLabels.__tenant", "x"),
        f"{_RW}.extraLabels",
        "'__tenant' is reserved",
        id="extra-label-dunder",
    ),
    pytest.param(
        set_(f"{_RW}.extraLabels.a-b", "x"), f"{_RW}.extraLabels", "invalid label name 'a-b'", id="extra-label-dash"
    ),
    pytest.param(
        set_("spec.labelSelectors.a-b", "x"), "spec.labelSelectors", "invalid label name 'a-b'", id="selector-dash"
    ),
    pytest.param(
        set_("spec.labelSelectors.1team", "x"), "spec.labelSelectors", "invalid label name '1team'", id="selector-digit"
    ),
    # which endpoint block a target type needs
    pytest.param(drop(_PROM), _PROM, "required when target.type is prometheus", id="prometheus-type-without-block"),
    pytest.param(
        both(set_(f"{_RW}.target.type", "pushgateway"), drop(_PUSH)),
        _PUSH,
        "required when target.type is pushgateway",
        id="pushgateway-type-without-block",
    ),
    pytest.param(
        both(set_(f"{_RW}.target.type", "remote_write"), drop(_EP)),
        _EP,
        "required when target.type is remote_write",
        id="remote-write-type-without-block",
    ),
    # identity and metadata
    pytest.param(set_("apiVersion", "observability.ethos.io/v1"), "apiVersion", "must be equal to", id="api-version"),
    pytest.param(set_("apiVersion", "v1"), "apiVersion", "observability.ethos.io/v1alpha1", id="api-version-core"),
    pytest.param(set_("kind", "Pod"), "kind", "must be equal to MetricAccess", id="kind-pod"),
    pytest.param(set_("kind", "metricaccess"), "kind", "must be equal to MetricAccess", id="kind-lowercase"),
    pytest.param(set_("metadata.name", "Bad_Name"), "metadata.name", "RFC 1123 name", id="name-uppercase"),
    pytest.param(set_("metadata.name", "-a"), "metadata.name", "RFC 1123 name", id="name-leading-dash"),
    pytest.param(set_("metadata.name", ""), "metadata.name", "RFC 1123 name", id="name-empty"),
    pytest.param(set_("metadata.name", "a" * 254), "metadata.name", "at most 253", id="name-too-long"),
    pytest.param(set_("metadata.namespace", "My-Team"), "metadata.namespace", "RFC 1123 label", id="namespace-upper"),
    pytest.param(set_(f"{_PROM}.serviceName", "a.b"), f"{_PROM}.serviceName", "does not match", id="service-dots"),
    pytest.param(
        set_(f"{_PROM}.targetNamespace", "Other"), f"{_PROM}.targetNamespace", "does not match", id="target-ns-upper"
    ),
    pytest.param(set_(f"{_EP}.url", "ftp://x.example.com"), f"{_EP}.url", "not a valid URL", id="url-ftp"),
    pytest.param(set_(f"{_EP}.url", "receiver:9090"), f"{_EP}.url", "not a valid URL", id="url-without-scheme"),
]


@pytest.mark.parametrize(("patch", "path", "fragment"), INVALID_MANIFESTS)
def test_invalid_manifest_is_refused_at_the_exact_path(patch: Patch, path: str, fragment: str) -> None:
    document = valid_manifest()
    patch(document)
    problems = _problems(document)
    assert [p.path for p in problems] == [path], problems
    assert fragment in problems[0].message


def test_the_invalid_manifest_table_has_at_least_30_rows() -> None:
    assert len(INVALID_MANIFESTS) >= 30


def test_every_problem_of_a_document_is_reported_at_once() -> None:
    document = valid_manifest()
    set_("spec.metricIsolation", "yes")(document)
    set_(f"{_RW}.interval", "1s")(document)
    drop("spec.source")(document)
    paths = sorted(p.path for p in _problems(document))
    assert paths == ["spec.metricIsolation", "spec.remoteWrite.interval", "spec.source"]


def test_interval_bounds_message_says_24h() -> None:
    document = valid_manifest()
    set_(f"{_RW}.interval", "25h")(document)
    assert _problems(document)[0].message == "must be a duration between 5s and 24h"


@pytest.mark.parametrize(
    "interval",
    [
        pytest.param("5s", id="lower-bound"),
        pytest.param("24h", id="upper-bound"),
        pytest.param("1d", id="one-day"),
        pytest.param("1m30s", id="go-compound"),
        pytest.param("1.5m", id="go-fraction"),
        pytest.param("5000ms", id="milliseconds"),
    ],
)
def test_interval_accepts_durations_between_5s_and_24h_inclusive(interval: str) -> None:
    document = valid_manifest()
    set_(f"{_RW}.interval", interval)(document)
    spec = _load(document).spec
    assert spec.remote_write is not None
    assert spec.remote_write.interval == interval


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param({"sourceLabels": ["a"], "targetLabel": "${1}_x", "regex": "(.*)"}, id="templated-target-label"),
        pytest.param({"regex": "(.*)", "replacement": "${1}", "action": "labelmap"}, id="labelmap-braced-ref"),
        pytest.param({"sourceLabels": ["a"], "targetLabel": "b", "action": "keepequal"}, id="keepequal-minimal"),
        pytest.param({"sourceLabels": ["a"], "regex": "x", "action": "keep"}, id="keep-without-target-label"),
        pytest.param({"regex": "a|b", "action": "labeldrop"}, id="labeldrop-only-regex"),
        pytest.param({"sourceLabels": ["a"], "targetLabel": "b", "modulus": 4, "action": "hashmod"}, id="hashmod"),
    ],
)
def test_relabel_rules_prometheus_accepts_are_accepted(rule: Doc) -> None:
    document = valid_manifest()
    relabel(**rule)(document)
    assert _load(document).spec.remote_write is not None
