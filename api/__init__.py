"""The MetricAccess v1alpha1 API, metric patterns and the config file schema.

This package imports nothing else of the project: every other package depends on
these value types, never the other way round.
"""

from mtproxy.api.config import *
from mtproxy.api.config_schema import (
    IGNORED_KEYS,
    ConfigSchema,
    LoadedConfig,
    load_config,
    load_config_text,
    parse_config,
)
from mtproxy.api.crd import CRD_FILENAME, PRINTER_COLUMNS, metricaccess_crd, render_crd_yaml
from mtproxy.api.durations import format_duration, parse_duration_ms
from mtproxy.api.errors import APIValidationError, FieldProblem, PatternError, flatten_messages
from mtproxy.api.matchers import LABEL_NAME_RE, METRIC_NAME_RE, LabelMatcher, MatchOp, Rule
from mtproxy.api.metricaccess import *
from mtproxy.api.patterns import ISOLATION_LABEL, parse_pattern, parse_selector, rule_for_pattern, rules_for
from mtproxy.api.regex import compile_anchored, compile_relabel_regex, validate_re2
from mtproxy.api.regex_text import expand_literal_spans_in_promql
from mtproxy.api.relabel import (
    DEFAULT_REGEX,
    DEFAULT_REPLACEMENT,
    DEFAULT_SEPARATOR,
    RelabelAction,
    RelabelConfig,
    relabel_problems,
)
from mtproxy.api.schemas import (
    RESERVED_HEADERS,
    MetricAccessSchema,
    MetricAccessSpecSchema,
    MetricAccessStatusSchema,
    RelabelConfigSchema,
)

__all__ = [
    "API_VERSION",
    "CRD_FILENAME",
    "DEFAULT_REGEX",
    "DEFAULT_REPLACEMENT",
    "DEFAULT_SEPARATOR",
    "GROUP",
    "IGNORED_KEYS",
    "ISOLATION_LABEL",
    "KIND",
    "LABEL_NAME_RE",
    "METRIC_NAME_RE",
    "PLURAL",
    "PRINTER_COLUMNS",
    "RESERVED_HEADERS",
    "VERSION",
    "APIValidationError",
    "ApiKeyAuthConfig",
    "AuthConfig",
    "AuthType",
    "BasicAuth",
    "Condition",
    "ConditionStatus",
    "Config",
    "ConfigSchema",
    "DiscoveryConfig",
    "FieldProblem",
    "GuardrailsConfig",
    "JWTAuthConfig",
    "KubernetesAuthConfig",
    "KubernetesDiscoveryConfig",
    "LabelMatcher",
    "LoadedConfig",
    "MatchOp",
    "MetricAccess",
    "MetricAccessSchema",
    "MetricAccessSpec",
    "MetricAccessSpecSchema",
    "MetricAccessStatus",
    "MetricAccessStatusSchema",
    "ObjectMeta",
    "PatternError",
    "PrometheusTarget",
    "ProxyConfig",
    "PushgatewayTarget",
    "QueryMode",
    "RelabelAction",
    "RelabelConfig",
    "RelabelConfigSchema",
    "RemoteWriteConfig",
    "RemoteWriteEndpoint",
    "RemoteWriteSpec",
    "RemoteWriteStatus",
    "Rule",
    "SecretKeyRef",
    "StaticDiscoveryConfig",
    "TLSConfig",
    "TargetStatus",
    "TargetType",
    "TenantSource",
    "TenantsConfig",
    "compile_anchored",
    "compile_relabel_regex",
    "expand_literal_spans_in_promql",
    "flatten_messages",
    "format_duration",
    "load_config",
    "load_config_text",
    "metricaccess_crd",
    "parse_config",
    "parse_duration_ms",
    "parse_pattern",
    "parse_selector",
    "relabel_problems",
    "render_crd_yaml",
    "rule_for_pattern",
    "rules_for",
    "validate_re2",
]
