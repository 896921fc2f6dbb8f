"""marshmallow schemas of MetricAccess: the one source for loading, dumping and the CRD.

Every schema ``post_load``s into the frozen classes of ``mtproxy.api.metricaccess`` and
dumps them back without ``null`` fields, so ``load(dump(x)) == x``. Unknown fields are
errors (kubectl's strict field validation refuses them too). Validation beyond what an
openAPIV3Schema can say (patterns as PromQL, relabel rules as Prometheus checks them,
which endpoint block a target type needs) happens here as well, with the field path.
``mtproxy.api.crd`` walks these schemas; field ``metadata`` carries the CRD-only facts
(description, pattern) that validators do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_dump,
    post_load,
    pre_load,
    validate,
)
from marshmallow import validates_schema as _validates_schema

from mtproxy.api import metricaccess as m
from mtproxy.api.errors import PatternError
from mtproxy.api.matchers import LABEL_NAME_RE
from mtproxy.api.patterns import parse_pattern
from mtproxy.api.relabel import RelabelAction, RelabelConfig, relabel_problems
from mtproxy.api.schemafields import (
    Duration,
    ModelSchema,
    StrictBoolean,
    StrictInteger,
    StrictString,
    StringMap,
)

__all__ = [
    "RESERVED_HEADERS",
    "MetricAccessSchema",
    "MetricAccessSpecSchema",
    "MetricAccessStatusSchema",
    "RelabelConfigSchema",
    "RemoteWriteSpecSchema",
]

RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "Authorization",
        "Host",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "User-Agent",
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Www-Authenticate",
        "Accept-Encoding",
        "Transfer-Encoding",
        "X-Prometheus-Remote-Write-Version",
        "X-Prometheus-Remote-Read-Version",
    )
)
"""Headers the sender sets itself; a spec may not override them (Prometheus refuses them too)."""

_ENDPOINT_KEYS = ("prometheus", "pushgateway", "remoteWrite")
_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_FIVE_SECONDS_MS = 5_000
_ONE_DAY_MS = 86_400_000

# Size limits of the spec, stated in the CRD so that the API server refuses an oversized object
# before any controller reads it (unbounded fields let one object cost every replica memory and
# every rewritten query size). A metrics entry is also bounded in depth by the parser guard,
# which no length can express.
_MAX_PATTERNS = 1000
_MAX_PATTERN_CHARS = 16_384
"""The same bound as ``mtproxy.api.patterns`` applies to one entry."""
_MAX_LABELS = 64
_MAX_LABEL_NAME_CHARS = 1024
_MAX_LABEL_VALUE_CHARS = 4096
_MAX_OBJECT_NAME_CHARS = 253
_MAX_DNS_LABEL_CHARS = 63
_MAX_TEXT_CHARS = 1024
_MAX_URL_CHARS = 2048
_MAX_HEADERS = 32
_MAX_RELABELINGS = 100
_MAX_SOURCE_LABELS = 64
_MAX_REGEX_CHARS = 16_384
_MAX_DURATION_CHARS = 64


def _at_most(limit: int, unit: str = "characters") -> validate.Length:
    """An upper bound the CRD states as maxLength/maxItems/maxProperties, with a plain message."""
    return validate.Length(max=limit, error=f"must have at most {limit} {unit}")


def _values_at_most(limit: int) -> Any:
    def check(value: Mapping[str, str]) -> None:
        long = sorted(key for key, item in value.items() if len(item) > limit)
        if long:
            raise ValidationError({key: [f"must have at most {limit} characters"] for key in long})

    return check


def _bounded_map(*, entries: int, value_chars: int, validators: tuple[Any, ...] = (), **kwargs: Any) -> StringMap:
    """A string map with at most ``entries`` keys and values of at most ``value_chars`` characters."""
    return StringMap(
        validate=[_at_most(entries, "entries"), _values_at_most(value_chars), *validators],
        metadata={"value_max_length": value_chars},
        **kwargs,
    )


def _label_map_problems(value: Mapping[str, str], *, reserved_prefix: bool) -> list[str]:
    problems = []
    for name in value:
        if not LABEL_NAME_RE.match(name):
            problems.append(f"invalid label name {name!r}")
        elif reserved_prefix and name.startswith("__"):
            problems.append(f"label name {name!r} is reserved (starts with __)")
    return problems


def _validate_pattern(pattern: str) -> None:
    if len(pattern) > _MAX_PATTERN_CHARS:
        return  # reported by the field's length bound, once
    try:
        parse_pattern(pattern)
    except PatternError as exc:
        raise ValidationError(str(exc)) from None


def _raise_all(problems: list[str]) -> None:
    if problems:
        raise ValidationError(problems)


class SecretKeyRefSchema(ModelSchema):
    __model__ = m.SecretKeyRef
    name = StrictString(
        required=True,
        validate=[validate.Length(min=1), _at_most(_MAX_OBJECT_NAME_CHARS)],
        metadata={"description": "Secret name"},
    )
    key = StrictString(
        required=True,
        validate=[validate.Length(min=1), _at_most(_MAX_OBJECT_NAME_CHARS)],
        metadata={"description": "Key in the Secret"},
    )


class PrometheusTargetSchema(ModelSchema):
    __model__ = m.PrometheusTarget
    service_name = StrictString(
        data_key="serviceName", required=True, validate=[_at_most(_MAX_DNS_LABEL_CHARS), validate.Regexp(_DNS_LABEL)]
    )
    service_port = StrictInteger(data_key="servicePort", load_default=9090, validate=validate.Range(1, 65535))
    replicas = StrictInteger(load_default=None, validate=validate.Range(1, 100))
    stateful_set_name = StrictString(
        data_key="statefulSetName",
        load_default=None,
        validate=[_at_most(_MAX_DNS_LABEL_CHARS), validate.Regexp(_DNS_LABEL)],
    )
    target_namespace = StrictString(
        data_key="targetNamespace",
        load_default=None,
        validate=[_at_most(_MAX_DNS_LABEL_CHARS), validate.Regexp(_DNS_LABEL)],
        metadata={"description": "Namespace of the tenant Prometheus; default: the MetricAccess' namespace"},
    )

    @_validates_schema
    def _replicas_need_statefulset(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("replicas") is None) != (data.get("stateful_set_name") is None):
            raise ValidationError("replicas and statefulSetName must be given together", "replicas")


class PushgatewayTargetSchema(ModelSchema):
    __model__ = m.PushgatewayTarget
    service_name = StrictString(
        data_key="serviceName", required=True, validate=[_at_most(_MAX_DNS_LABEL_CHARS), validate.Regexp(_DNS_LABEL)]
    )
    service_port = StrictInteger(data_key="servicePort", load_default=9091, validate=validate.Range(1, 65535))
    job_name = StrictString(
        data_key="jobName", required=True, validate=[validate.Length(min=1), _at_most(_MAX_LABEL_VALUE_CHARS)]
    )


class BasicAuthSchema(ModelSchema):
    __model__ = m.BasicAuth
    username = StrictString(required=True, validate=[validate.Length(min=1), _at_most(_MAX_TEXT_CHARS)])
    password_secret = fields.Nested(SecretKeyRefSchema, data_key="passwordSecret", required=True)


class TLSConfigSchema(ModelSchema):
    __model__ = m.TLSConfig
    insecure_skip_verify = StrictBoolean(data_key="insecureSkipVerify", load_default=False)
    ca_secret = fields.Nested(SecretKeyRefSchema, data_key="caSecret", load_default=None)


class RemoteWriteEndpointSchema(ModelSchema):
    __model__ = m.RemoteWriteEndpoint
    url = StrictString(
        required=True,
        validate=[_at_most(_MAX_URL_CHARS), validate.URL(schemes={"http", "https"}, require_tld=False)],
        metadata={"pattern": r"^https?://"},
    )
    basic_auth = fields.Nested(BasicAuthSchema, data_key="basicAuth", load_default=None)
    bearer_token_secret = fields.Nested(SecretKeyRefSchema, data_key="bearerTokenSecret", load_default=None)
    headers = _bounded_map(entries=_MAX_HEADERS, value_chars=_MAX_TEXT_CHARS, load_default=dict)
    tls_config = fields.Nested(TLSConfigSchema, data_key="tlsConfig", load_default=None)

    @_validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        reserved = sorted(h for h in data.get("headers", {}) if h.lower() in RESERVED_HEADERS)
        if reserved:
            raise ValidationError(f"reserved header(s) may not be set: {', '.join(reserved)}", "headers")
        if data.get("basic_auth") is not None and data.get("bearer_token_secret") is not None:
            raise ValidationError("give basicAuth or bearerTokenSecret, not both", "bearerTokenSecret")


class TargetSchema(Schema):
    """``target``: the type, plus the original's nested endpoint blocks (an accepted alias)."""

    class Meta:
        unknown = RAISE

    type = fields.Enum(m.TargetType, by_value=True, required=True)
    prometheus = fields.Nested(PrometheusTargetSchema, load_default=None)
    pushgateway = fields.Nested(PushgatewayTargetSchema, load_default=None)
    remoteWrite = fields.Nested(RemoteWriteEndpointSchema, load_default=None)


_ACTIONS = {a.value: a for a in RelabelAction}
_CAMEL = {
    "hashmod": "HashMod",
    "labelmap": "LabelMap",
    "labeldrop": "LabelDrop",
    "labelkeep": "LabelKeep",
    "keepequal": "KeepEqual",
    "dropequal": "DropEqual",
}
_ACTION_SPELLINGS = sorted({*_ACTIONS, *(_CAMEL.get(a, a.capitalize()) for a in _ACTIONS)})
"""prometheus-operator's spellings: lowercase or CamelCase; the CRD's enum lists the same."""


class RelabelActionField(StrictString):
    """A relabel action, case-insensitive as Prometheus reads it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={"enum": _ACTION_SPELLINGS}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text not in _ACTION_SPELLINGS:
            raise ValidationError(f"unknown relabel action {text!r}; one of {', '.join(_ACTIONS)}")
        return _ACTIONS[text.lower()]

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.value


class RelabelConfigSchema(ModelSchema):
    __model__ = RelabelConfig
    source_labels = fields.List(
        StrictString(validate=_at_most(_MAX_LABEL_NAME_CHARS)),
        data_key="sourceLabels",
        load_default=None,
        validate=_at_most(_MAX_SOURCE_LABELS, "items"),
    )
    separator = StrictString(load_default=";", validate=_at_most(_MAX_TEXT_CHARS))
    regex = StrictString(load_default="(.*)", validate=_at_most(_MAX_REGEX_CHARS))
    modulus = StrictInteger(load_default=0, validate=validate.Range(min=0))
    target_label = StrictString(data_key="targetLabel", load_default="", validate=_at_most(_MAX_LABEL_NAME_CHARS))
    replacement = StrictString(load_default="$1", validate=_at_most(_MAX_LABEL_VALUE_CHARS))
    action = RelabelActionField(load_default=RelabelAction.REPLACE)

    @post_load
    def _to_model(self, data: dict[str, Any], **kwargs: Any) -> Any:
        if data.get("source_labels") is not None:
            data["source_labels"] = tuple(data["source_labels"])
        rule = RelabelConfig(**data)
        problems = relabel_problems(rule)
        if problems:
            raise ValidationError({path: [message] for path, message in problems})
        return rule

    @post_dump
    def _drop_nulls(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {k: v for k, v in data.items() if v is not None}


class RemoteWriteSpecSchema(ModelSchema):
    __model__ = m.RemoteWriteSpec
    enabled = StrictBoolean(required=True)
    interval = Duration(
        load_default="30s",
        min_ms=_FIVE_SECONDS_MS,
        max_ms=_ONE_DAY_MS,
        validate=_at_most(_MAX_DURATION_CHARS),
        metadata={"description": "Collection interval, 5s to 24h"},
    )
    target = fields.Nested(TargetSchema, required=True)
    prometheus = fields.Nested(PrometheusTargetSchema, load_default=None)
    pushgateway = fields.Nested(PushgatewayTargetSchema, load_default=None)
    remote_write = fields.Nested(RemoteWriteEndpointSchema, data_key="remoteWrite", load_default=None)
    extra_labels = _bounded_map(
        entries=_MAX_LABELS, value_chars=_MAX_LABEL_VALUE_CHARS, data_key="extraLabels", load_default=dict
    )
    honor_labels = StrictBoolean(data_key="honorLabels", load_default=False)
    metric_relabelings = fields.List(
        fields.Nested(RelabelConfigSchema),
        data_key="metricRelabelings",
        load_default=tuple,
        validate=_at_most(_MAX_RELABELINGS, "items"),
    )

    @pre_load
    def _hoist_nested_endpoints(self, data: Any, **kwargs: Any) -> Any:
        """Accept ``target.prometheus`` (and the other two) as an alias of the sibling block."""
        if not isinstance(data, Mapping) or not isinstance(data.get("target"), Mapping):
            return data
        data, target = dict(data), dict(data["target"])
        for key in ("prometheus", "pushgateway", "remoteWrite"):
            if key not in target:
                continue
            nested = target.pop(key)
            if key in data and data[key] != nested:
                raise ValidationError(
                    f"spec.remoteWrite.{key} and spec.remoteWrite.target.{key} are both given and differ; keep one",
                    key,
                )
            data[key] = nested
        data["target"] = target
        return data

    def handle_error(self, error: ValidationError, data: Any, *, many: bool, **kwargs: Any) -> None:
        """Report errors of a block written under ``target`` at the path the user wrote."""
        messages = error.messages
        if isinstance(messages, dict) and isinstance(data, Mapping) and isinstance(data.get("target"), Mapping):
            target = data["target"]
            moved = {k: v for k, v in messages.items() if k in _ENDPOINT_KEYS and k in target and k not in data}
            if moved:
                rest = {k: v for k, v in messages.items() if k not in moved}
                nested = dict(rest.get("target") or {}) if isinstance(rest.get("target"), dict) else {}
                nested.update(moved)
                rest["target"] = nested
                raise ValidationError(rest) from error
        raise error

    @post_load
    def _to_model(self, data: dict[str, Any], **kwargs: Any) -> Any:
        target = data.pop("target")
        data["target_type"] = target["type"]
        data["metric_relabelings"] = tuple(data["metric_relabelings"])
        return m.RemoteWriteSpec(**data)

    @_validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        target = data.get("target") or {}
        kind = target.get("type")
        needed = {
            m.TargetType.PROMETHEUS: ("prometheus", "prometheus"),
            m.TargetType.PUSHGATEWAY: ("pushgateway", "pushgateway"),
            m.TargetType.REMOTE_WRITE: ("remote_write", "remoteWrite"),
        }
        if kind in needed:
            attr, key = needed[kind]
            if data.get(attr) is None:
                errors[key] = [f"required when target.type is {kind.value}"]
        extra = _label_map_problems(data.get("extra_labels", {}), reserved_prefix=True)
        if extra:
            errors["extraLabels"] = extra
        if errors:
            raise ValidationError(errors)

    @post_dump(pass_original=True)
    def _dump_target(self, data: dict[str, Any], original: Any, **kwargs: Any) -> dict[str, Any]:
        data = {k: v for k, v in data.items() if v is not None}
        data["target"] = {"type": original.target_type.value}
        return data


class MetricAccessSpecSchema(ModelSchema):
    __model__ = m.MetricAccessSpec
    source = StrictString(
        required=True,
        validate=[validate.Length(min=1), _at_most(_MAX_TEXT_CHARS)],
        metadata={"description": "Source identifier (informational; the namespace is what is enforced)"},
    )
    metric_isolation = StrictBoolean(data_key="metricIsolation", load_default=False)
    metrics = fields.List(
        StrictString(validate=[_at_most(_MAX_PATTERN_CHARS), _validate_pattern]),
        required=True,
        validate=[validate.Length(min=1), _at_most(_MAX_PATTERNS, "items")],
        metadata={"description": "Metric patterns: exact names, anchored RE2 regexes, or PromQL selectors"},
    )
    label_selectors = _bounded_map(
        entries=_MAX_LABELS,
        value_chars=_MAX_LABEL_VALUE_CHARS,
        validators=(lambda v: _raise_all(_label_map_problems(v, reserved_prefix=False)),),
        data_key="labelSelectors",
        load_default=dict,
    )
    remote_write = fields.Nested(RemoteWriteSpecSchema, data_key="remoteWrite", load_default=None)

    @post_load
    def _to_model(self, data: dict[str, Any], **kwargs: Any) -> Any:
        data["metrics"] = tuple(data["metrics"])
        return m.MetricAccessSpec(**data)


class ConditionSchema(ModelSchema):
    __model__ = m.Condition

    class Meta:
        unknown = EXCLUDE

    type = StrictString(required=True)
    status = fields.Enum(m.ConditionStatus, by_value=True, required=True)
    reason = StrictString(required=True)
    message = StrictString(load_default="")
    last_transition_time = StrictString(data_key="lastTransitionTime", load_default="")
    observed_generation = StrictInteger(data_key="observedGeneration", load_default=None)


class TargetStatusSchema(ModelSchema):
    __model__ = m.TargetStatus

    class Meta:
        unknown = EXCLUDE

    endpoint = StrictString(required=True)
    healthy = StrictBoolean(required=True)
    last_error = StrictString(data_key="lastError", load_default=None)
    last_success_time = StrictString(data_key="lastSuccessTime", load_default=None, metadata={"format": "date-time"})


class RemoteWriteStatusSchema(ModelSchema):
    __model__ = m.RemoteWriteStatus

    class Meta:
        unknown = EXCLUDE

    active = StrictBoolean(required=True)
    last_collection = StrictString(data_key="lastCollection", load_default=None, metadata={"format": "date-time"})
    last_successful_write = StrictString(
        data_key="lastSuccessfulWrite", load_default=None, metadata={"format": "date-time"}
    )
    metrics_collected = StrictInteger(data_key="metricsCollected", load_default=None)
    samples_forwarded = StrictInteger(data_key="samplesForwarded", load_default=None)
    last_error = StrictString(data_key="lastError", load_default=None)
    targets = fields.List(fields.Nested(TargetStatusSchema), load_default=tuple)

    @post_load
    def _to_model(self, data: dict[str, Any], **kwargs: Any) -> Any:
        data["targets"] = tuple(data["targets"])
        return m.RemoteWriteStatus(**data)


class MetricAccessStatusSchema(ModelSchema):
    __model__ = m.MetricAccessStatus

    class Meta:
        unknown = EXCLUDE

    observed_generation = StrictInteger(data_key="observedGeneration", load_default=None)
    conditions = fields.List(fields.Nested(ConditionSchema), load_default=tuple)
    last_updated = StrictString(data_key="lastUpdated", load_default=None, metadata={"format": "date-time"})
    validated_metrics = fields.List(StrictString(), data_key="validatedMetrics", load_default=tuple)
    remote_write = fields.Nested(RemoteWriteStatusSchema, data_key="remoteWrite", load_default=None)

    @post_load
    def _to_model(self, data: dict[str, Any], **kwargs: Any) -> Any:
        data["conditions"] = tuple(data["conditions"])
        data["validated_metrics"] = tuple(data["validated_metrics"])
        return m.MetricAccessStatus(**data)


class ObjectMetaSchema(ModelSchema):
    __model__ = m.ObjectMeta

    class Meta:
        unknown = EXCLUDE

    name = StrictString(
        required=True,
        validate=[
            validate.Length(max=253, error="must be at most 253 characters"),
            validate.Regexp(_NAME_PATTERN, error="must be a lowercase RFC 1123 name (a-z, 0-9, '-', '.')"),
        ],
    )
    namespace = StrictString(
        load_default="",
        validate=[
            validate.Length(max=63, error="must be at most 63 characters"),
            validate.Regexp(r"^$|" + _DNS_LABEL, error="must be a lowercase RFC 1123 label (a-z, 0-9, '-')"),
        ],
    )
    uid = StrictString(load_default=None)
    resource_version = StrictString(data_key="resourceVersion", load_default=None)
    generation = StrictInteger(load_default=None)
    creation_timestamp = StrictString(data_key="creationTimestamp", load_default=None)
    labels = StringMap(load_default=dict)
    annotations = StringMap(load_default=dict)


class MetricAccessSchema(ModelSchema):
    __model__ = m.MetricAccess
    api_version = StrictString(data_key="apiVersion", required=True, validate=validate.Equal(m.API_VERSION))
    kind = StrictString(required=True, validate=validate.Equal(m.KIND))
    metadata = fields.Nested(ObjectMetaSchema, required=True)
    spec = fields.Nested(MetricAccessSpecSchema, required=True)
    status = fields.Nested(MetricAccessStatusSchema, load_default=None)

    @post_load
    def _to_model(self, data: dict[str, Any], **kwargs: Any) -> Any:
        data.pop("api_version")
        data.pop("kind")
        return m.MetricAccess(**data)

    @post_dump(pass_original=True)
    def _drop_nulls(self, data: dict[str, Any], original: Any, **kwargs: Any) -> dict[str, Any]:
        out = {"apiVersion": m.API_VERSION, "kind": m.KIND}
        out.update({k: v for k, v in data.items() if v is not None and k not in out})
        return out
