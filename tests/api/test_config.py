"""Tests for api/config.py and api/config_schema.py: the original's defaults, the README alias,
keys kept for compatibility, and one row per way a config can be wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mtproxy.api import (
    IGNORED_KEYS,
    APIValidationError,
    AuthType,
    Config,
    ConfigSchema,
    LoadedConfig,
    QueryMode,
    TenantSource,
    load_config,
    load_config_text,
    parse_config,
)

REPO = Path(__file__).resolve().parents[2]


def _attr(config: Config, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _problems(raw: Any) -> list[tuple[str, str]]:
    with pytest.raises(APIValidationError) as caught:
        parse_config(raw)
    return [(p.path, p.message) for p in caught.value.problems]


# --- defaults ------------------------------------------------------------------------------

ORIGINAL_DEFAULTS = [
    pytest.param("discovery.refresh_interval", "30s", id="refresh-interval-30s"),
    pytest.param("discovery.kubernetes.namespaces", (), id="namespaces-empty-means-all"),
    pytest.param("discovery.kubernetes.label_selectors", {"app": "prometheus"}, id="label-selectors-app-prometheus"),
    pytest.param("discovery.kubernetes.annotation_selectors", {}, id="annotation-selectors-none"),
    pytest.param("discovery.kubernetes.port", "9090", id="port-9090-as-string"),
    pytest.param("discovery.kubernetes.resource_types", ("Service",), id="resource-types-service"),
    pytest.param("tenants.watch_all_namespaces", False, id="watch-all-namespaces-false"),
    pytest.param("tenants.watch_namespaces", (), id="watch-namespaces-empty"),
    pytest.param("proxy.enable_caching", False, id="caching-off"),
    pytest.param("proxy.cache_ttl", "5m", id="cache-ttl-5m"),
    pytest.param("proxy.enable_metrics", False, id="metrics-off"),
    pytest.param("proxy.enable_request_logging", False, id="request-logging-off"),
    pytest.param("proxy.max_concurrent_requests", 100, id="max-concurrent-requests-100"),
    pytest.param("proxy.backend_timeout", "30s", id="backend-timeout-30s"),
    pytest.param("remote_write.enabled", False, id="remote-write-off"),
    pytest.param("remote_write.default_interval", "30s", id="default-interval-30s"),
    pytest.param("remote_write.max_concurrent_jobs", 10, id="max-concurrent-jobs-10"),
    pytest.param("remote_write.collection_timeout", "30s", id="collection-timeout-30s"),
    pytest.param("remote_write.retry_attempts", 3, id="retry-attempts-3"),
    pytest.param("remote_write.retry_delay", "5s", id="retry-delay-5s"),
    pytest.param("remote_write.batch_size", 5000, id="batch-size-5000-not-readme-1000"),
    pytest.param("auth.type", AuthType.NONE, id="auth-none"),
    pytest.param("auth.apikey.header_name", "X-API-Key", id="apikey-header"),
    pytest.param("auth.jwt.secret_key", None, id="jwt-secret-unset"),
    pytest.param("tenants.source", TenantSource.KUBERNETES, id="tenants-from-kubernetes"),
    pytest.param("proxy.query_mode", QueryMode.LOAD_BALANCE, id="query-mode-load-balance"),
]

_EMPTY_CONFIGS = [
    pytest.param("", id="empty-file"),
    pytest.param("{}", id="empty-mapping"),
    pytest.param("# only a comment\n", id="comment-only"),
    pytest.param(
        "discovery: {kubernetes: {}, static: {}}\ntenants: {}\nproxy: {}\nremote_write: {}\n"
        "auth: {jwt: {}, apikey: {}}\nguardrails: {}\n",
        id="empty-sections",
    ),
]


@pytest.mark.parametrize("text", _EMPTY_CONFIGS)
@pytest.mark.parametrize(("dotted", "expected"), ORIGINAL_DEFAULTS)
def test_an_unset_key_takes_the_originals_default(text: str, dotted: str, expected: Any) -> None:
    loaded = load_config_text(text)
    assert _attr(loaded.config, dotted) == expected
    assert loaded.warnings == ()


@pytest.mark.parametrize(("dotted", "expected"), ORIGINAL_DEFAULTS)
def test_the_config_dataclass_has_the_same_defaults_as_the_loader(dotted: str, expected: Any) -> None:
    assert _attr(Config(), dotted) == expected


SECURE_DEFAULTS = [
    pytest.param("guardrails.require_isolation", True, id="isolation-required"),
    pytest.param("guardrails.unisolated_namespaces", (), id="no-namespace-may-go-without"),
    pytest.param("guardrails.allow_foreign_target_namespace", False, id="no-foreign-target-namespace"),
    pytest.param("guardrails.remote_write_url_allowlist", (), id="no-remote-write-url"),
]
"""Where the original was open (it had no guardrails), the defaults are closed (issue 15, finding 3)."""


@pytest.mark.parametrize("text", _EMPTY_CONFIGS)
@pytest.mark.parametrize(("dotted", "expected"), SECURE_DEFAULTS)
def test_guardrails_are_closed_by_default(text: str, dotted: str, expected: Any) -> None:
    assert _attr(load_config_text(text).config, dotted) == expected
    assert _attr(Config(), dotted) == expected


def test_the_originals_openness_is_one_key_away() -> None:
    config = load_config_text("guardrails:\n  require_isolation: false\n").config
    assert config.guardrails.require_isolation is False


def test_an_empty_config_equals_the_default_config() -> None:
    assert parse_config({}).config == Config()
    assert parse_config(None).config == Config()


def test_backend_timeout_ms_reads_the_duration() -> None:
    assert Config().backend_timeout_ms == 30_000
    assert parse_config({"proxy": {"backend_timeout": "1m"}}).config.backend_timeout_ms == 60_000


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        pytest.param(9090, "9090", id="number"),
        pytest.param("9091", "9091", id="number-as-string"),
        pytest.param("web", "web", id="port-name"),
    ],
)
def test_discovery_port_is_a_name_or_a_number_kept_as_text(port: Any, expected: str) -> None:
    config = parse_config({"discovery": {"kubernetes": {"port": port}}}).config
    assert config.discovery.kubernetes.port == expected


def test_explicit_values_replace_the_defaults() -> None:
    config = parse_config(
        {
            "discovery": {
                "refresh_interval": "1m",
                "kubernetes": {
                    "namespaces": ["monitoring", "infra"],
                    "label_selectors": {"app.kubernetes.io/name": "prometheus"},
                    "annotation_selectors": {"prometheus.io/scrape": "true"},
                    "resource_types": ["Service", "Pod", "Endpoints"],
                },
            },
            "tenants": {"watch_namespaces": ["team-a"]},
            "proxy": {"enable_metrics": True, "max_concurrent_requests": 7},
            "remote_write": {"enabled": True, "batch_size": 1000, "retry_attempts": 0},
            "auth": {"type": "jwt", "jwt": {"secret_key": "s3cret", "issuer": "me", "audience": "you"}},
        }
    ).config
    assert config.discovery.refresh_interval == "1m"
    assert config.discovery.kubernetes.namespaces == ("monitoring", "infra")
    assert config.discovery.kubernetes.label_selectors == {"app.kubernetes.io/name": "prometheus"}
    assert config.discovery.kubernetes.annotation_selectors == {"prometheus.io/scrape": "true"}
    assert config.discovery.kubernetes.resource_types == ("Service", "Pod", "Endpoints")
    assert config.tenants.watch_namespaces == ("team-a",)
    assert config.proxy.enable_metrics is True
    assert config.proxy.max_concurrent_requests == 7
    assert config.remote_write.enabled is True
    assert config.remote_write.batch_size == 1000
    assert config.remote_write.retry_attempts == 0
    assert config.auth.type is AuthType.JWT
    assert (config.auth.jwt.secret_key, config.auth.jwt.issuer, config.auth.jwt.audience) == ("s3cret", "me", "you")


def test_apikey_static_keys_map_to_namespace_tuples() -> None:
    config = parse_config(
        {"auth": {"type": "apikey", "apikey": {"static_keys": {"k1": "team-a", "k2": ["team-a", "team-b"]}}}}
    ).config
    assert config.auth.apikey.static_keys == {"k1": ("team-a",), "k2": ("team-a", "team-b")}


def test_files_source_reads_the_directory() -> None:
    config = parse_config({"tenants": {"source": "files", "files": {"directory": "examples/dev/tenants"}}}).config
    assert config.tenants.source is TenantSource.FILES
    assert config.tenants.files_directory == "examples/dev/tenants"


# --- collection_interval, the README's name ------------------------------------------------


def test_collection_interval_is_an_alias_of_default_interval() -> None:
    loaded = parse_config({"remote_write": {"collection_interval": "15s"}})
    assert loaded.config.remote_write.default_interval == "15s"
    assert loaded.warnings == ()


def test_collection_interval_equal_to_default_interval_is_accepted() -> None:
    config = parse_config({"remote_write": {"collection_interval": "15s", "default_interval": "15s"}}).config
    assert config.remote_write.default_interval == "15s"


def test_collection_interval_differing_from_default_interval_names_both_keys() -> None:
    problems = _problems({"remote_write": {"collection_interval": "15s", "default_interval": "20s"}})
    assert [path for path, _ in problems] == ["remote_write.collection_interval"]
    assert "remote_write.collection_interval" in problems[0][1]
    assert "remote_write.default_interval" in problems[0][1]


def test_collection_interval_is_validated_like_default_interval() -> None:
    problems = _problems({"remote_write": {"collection_interval": "1s"}})
    assert [path for path, _ in problems] == ["remote_write.default_interval"]


# --- keys the original accepted and ignored ------------------------------------------------


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    head, _, rest = dotted.partition(".")
    return {head: _nest(rest, value) if rest else value}


@pytest.mark.parametrize("dotted", IGNORED_KEYS)
def test_an_ignored_key_loads_with_a_warning_naming_it(dotted: str) -> None:
    loaded = parse_config(_nest(dotted, {"anything": [1, 2]} if "." not in dotted else "x"))
    assert loaded.config == Config()
    assert len(loaded.warnings) == 1
    assert loaded.warnings[0].startswith(f"{dotted}: ")
    assert "no effect" in loaded.warnings[0]


def test_every_ignored_key_of_the_originals_example_config_is_warned_about() -> None:
    text = """\
discovery:
  kubernetes: {namespaces: [monitoring]}
tenants:
  watch_all_namespaces: true
  refresh_interval: 30s
proxy:
  listen_address: ":8080"
  enable_tenant_filtering: true
remote_write:
  enabled: true
  timeout: 30s
  queue_config: {capacity: 10000, max_shards: 50, min_shards: 1}
auth:
  enabled: false
logging: {level: info, format: json}
health: {enabled: true}
metrics: {enabled: true, path: /metrics}
"""
    loaded = load_config_text(text)
    warned = sorted(w.split(":", 1)[0] for w in loaded.warnings)
    assert warned == sorted(IGNORED_KEYS)
    assert loaded.config.tenants.watch_all_namespaces is True
    assert loaded.config.remote_write.enabled is True
    assert loaded.config.auth.type is AuthType.NONE


def test_the_examples_config_loads_without_warnings() -> None:
    loaded = load_config(str(REPO / "examples" / "config" / "config.yaml"))
    assert isinstance(loaded, LoadedConfig)
    assert loaded.warnings == ()
    config = loaded.config
    assert config.discovery.kubernetes.namespaces == ("monitoring",)
    assert config.discovery.kubernetes.label_selectors == {"app.kubernetes.io/name": "prometheus"}
    assert config.discovery.kubernetes.resource_types == ("Pod",)
    assert config.tenants.watch_all_namespaces is True
    assert config.remote_write.default_interval == "30s"
    assert config.remote_write.batch_size == 1000


# --- file formats and syntax errors --------------------------------------------------------


def test_a_json_config_is_accepted() -> None:
    text = json.dumps({"proxy": {"enable_metrics": True, "backend_timeout": "10s"}, "remote_write": {"batch_size": 7}})
    config = load_config_text(text).config
    assert config.proxy.enable_metrics is True
    assert config.proxy.backend_timeout == "10s"
    assert config.remote_write.batch_size == 7


def test_load_config_reads_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"discovery": {"refresh_interval": "5s"}}')
    assert load_config(str(path)).config.discovery.refresh_interval == "5s"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("proxy:\n  enable_metrics: true\n bad: 1\n", 3, id="bad-indentation"),
        pytest.param("proxy: {enable_metrics: true\n", 2, id="unclosed-flow-mapping"),
        pytest.param("proxy:\n  x: [1, 2\nauth: {}\n", 3, id="unclosed-flow-sequence"),
        pytest.param('{\n  "proxy": {"enable_metrics" true}\n}', 2, id="json-missing-colon"),
        pytest.param("a: 1\n\tb: 2\n", 2, id="tab-indentation"),
    ],
)
def test_a_yaml_syntax_error_names_the_line(text: str, line: int) -> None:
    with pytest.raises(APIValidationError) as caught:
        load_config_text(text)
    (problem,) = caught.value.problems
    assert problem.path == ""
    assert problem.message.startswith(f"line {line}, column ")
    assert "invalid YAML" in problem.message


@pytest.mark.parametrize(
    "text",
    [pytest.param("- a\n- b\n", id="list"), pytest.param("42\n", id="number"), pytest.param("just text\n", id="text")],
)
def test_a_config_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(APIValidationError, match="config must be a mapping of sections"):
        load_config_text(text)


def test_load_config_of_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_config(str(tmp_path / "missing.yaml"))


# --- one row per way to be wrong -----------------------------------------------------------

INVALID_CONFIGS = [
    pytest.param({"bogus": {}}, "bogus", "unknown field", id="unknown-section"),
    pytest.param({"proxy": {"enable_cache": True}}, "proxy.enable_cache", "unknown field", id="typo-in-proxy"),
    pytest.param(
        {"discovery": {"kubernetes": {"label_selector": {}}}},
        "discovery.kubernetes.label_selector",
        "unknown field",
        id="typo-in-discovery",
    ),
    pytest.param({"remote_write": {"intervall": "1s"}}, "remote_write.intervall", "unknown field", id="typo-in-rw"),
    pytest.param({"tenants": {"files": {"dir": "x"}}}, "tenants.files.dir", "unknown field", id="unknown-in-files"),
    pytest.param(
        {"discovery": {"refresh_interval": "30"}},
        "discovery.refresh_interval",
        "not a duration",
        id="refresh-interval-without-unit",
    ),
    pytest.param(
        {"discovery": {"refresh_interval": 30}},
        "discovery.refresh_interval",
        "must be a string",
        id="refresh-interval-number",
    ),
    pytest.param(
        {"discovery": {"refresh_interval": "0s"}},
        "discovery.refresh_interval",
        "must be a duration",
        id="refresh-interval-zero",
    ),
    pytest.param(
        {"discovery": {"kubernetes": {"resource_types": ["Service", "Deployment"]}}},
        "discovery.kubernetes.resource_types",
        "unknown resource type(s) Deployment",
        id="resource-type-deployment",
    ),
    pytest.param(
        {"discovery": {"kubernetes": {"resource_types": "Service"}}},
        "discovery.kubernetes.resource_types",
        "not a valid list",
        id="resource-types-not-a-list",
    ),
    pytest.param(
        {"discovery": {"kubernetes": {"port": 70000}}},
        "discovery.kubernetes.port",
        "must be between 1 and 65535",
        id="port-70000",
    ),
    pytest.param(
        {"discovery": {"kubernetes": {"port": "0"}}},
        "discovery.kubernetes.port",
        "must be between 1 and 65535",
        id="port-0-as-text",
    ),
    pytest.param(
        {"discovery": {"kubernetes": {"port": True}}},
        "discovery.kubernetes.port",
        "must be a port name or number",
        id="port-bool",
    ),
    pytest.param(
        {"discovery": {"kubernetes": {"namespaces": "monitoring"}}},
        "discovery.kubernetes.namespaces",
        "not a valid list",
        id="namespaces-string",
    ),
    pytest.param(
        {"discovery": {"kubernetes": {"label_selectors": {"app": 1}}}},
        "discovery.kubernetes.label_selectors.app",
        "must be a string",
        id="label-selector-int-value",
    ),
    pytest.param(
        {"discovery": {"static": {"targets": ["localhost:9090"]}}},
        "discovery.static.targets",
        "must be http(s) URLs: localhost:9090",
        id="static-target-without-scheme",
    ),
    pytest.param({"discovery": []}, "discovery", "invalid input type", id="section-is-a-list"),
    pytest.param(
        {"tenants": {"watch_all_namespaces": "yes"}},
        "tenants.watch_all_namespaces",
        "must be a boolean",
        id="bool-as-yes",
    ),
    pytest.param(
        {"tenants": {"source": "crd"}},
        "tenants.source",
        "must be one of: kubernetes, files",
        id="tenant-source-unknown",
    ),
    pytest.param(
        {"tenants": {"source": "files"}},
        "tenants.files.directory",
        "required when tenants.source is files",
        id="files-source-without-directory",
    ),
    pytest.param(
        {"proxy": {"enable_caching": "true"}}, "proxy.enable_caching", "must be a boolean", id="bool-as-string"
    ),
    pytest.param(
        {"proxy": {"max_concurrent_requests": "100"}},
        "proxy.max_concurrent_requests",
        "must be an integer",
        id="int-as-string",
    ),
    pytest.param(
        {"proxy": {"max_concurrent_requests": 0}},
        "proxy.max_concurrent_requests",
        "greater than or equal to 1",
        id="zero-concurrency",
    ),
    pytest.param({"proxy": {"backend_timeout": "abc"}}, "proxy.backend_timeout", "not a duration", id="timeout-abc"),
    pytest.param(
        {"proxy": {"query_mode": "random"}},
        "proxy.query_mode",
        "must be one of: load_balance, fan_out",
        id="query-mode-unknown",
    ),
    pytest.param(
        {"remote_write": {"batch_size": 0}},
        "remote_write.batch_size",
        "greater than or equal to 1",
        id="batch-size-zero",
    ),
    pytest.param(
        {"remote_write": {"batch_size": 2.5}}, "remote_write.batch_size", "must be an integer", id="batch-size-float"
    ),
    pytest.param(
        {"remote_write": {"retry_attempts": -1}},
        "remote_write.retry_attempts",
        "greater than or equal to 0",
        id="negative-retries",
    ),
    pytest.param(
        {"remote_write": {"default_interval": "1s"}},
        "remote_write.default_interval",
        "must be a duration between 5s and",
        id="default-interval-below-5s",
    ),
    pytest.param(
        {"auth": {"type": "basic"}},
        "auth.type",
        "must be one of: none, kubernetes, jwt, apikey",
        id="auth-type-unknown",
    ),
    pytest.param({"auth": {"type": ""}}, "auth.type", "must be one of", id="auth-type-empty"),
    pytest.param(
        {"auth": {"type": "jwt"}},
        "auth.jwt",
        "needs exactly one of secret_key, jwks_file, jwks_url",
        id="jwt-without-key",
    ),
    pytest.param(
        {"auth": {"type": "jwt", "jwt": {"secret_key": "a", "jwks_url": "https://x"}}},
        "auth.jwt",
        "needs exactly one of",
        id="jwt-with-two-keys",
    ),
    pytest.param(
        {"auth": {"type": "apikey"}}, "auth.apikey", "needs static_keys or keys_file", id="apikey-without-keys"
    ),
    pytest.param(
        {"auth": {"type": "apikey", "apikey": {"static_keys": {"k": 5}}}},
        "auth.apikey.static_keys",
        "must map each key to a namespace or a list of namespaces",
        id="apikey-namespace-int",
    ),
    pytest.param(
        {"auth": {"apikey": {"header_name": ""}}},
        "auth.apikey.header_name",
        "shorter than minimum length",
        id="apikey-empty-header",
    ),
    pytest.param(
        {"guardrails": {"require_isolation": 1}},
        "guardrails.require_isolation",
        "must be a boolean",
        id="guardrail-bool-as-int",
    ),
]


@pytest.mark.parametrize(("raw", "path", "fragment"), INVALID_CONFIGS)
def test_invalid_config_is_refused_at_the_exact_dotted_path(raw: dict[str, Any], path: str, fragment: str) -> None:
    problems = _problems(raw)
    assert [p for p, _ in problems] == [path], problems
    assert fragment in problems[0][1]


def test_the_invalid_config_table_has_at_least_10_rows() -> None:
    assert len(INVALID_CONFIGS) >= 10


def test_every_problem_of_a_config_is_reported_at_once() -> None:
    problems = _problems({"proxy": {"enable_caching": "x", "bogus": 1}, "remote_write": {"batch_size": 0}})
    assert [p for p, _ in problems] == ["proxy.bogus", "proxy.enable_caching", "remote_write.batch_size"]


def test_a_lower_bound_only_duration_message_reads_naturally() -> None:
    problems = _problems({"discovery": {"refresh_interval": "0s"}})
    assert "unbounded" not in problems[0][1]


def test_a_section_left_empty_in_yaml_takes_the_defaults() -> None:
    assert load_config_text("discovery:\nproxy:\n").config == Config()


# --- round trip (dump is not used in production, so only the common shapes) ------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"discovery": {"kubernetes": {"port": "web", "resource_types": ["Pod"]}}}, id="discovery"),
        pytest.param({"remote_write": {"enabled": True, "host_aliases": {"a": "127.0.0.1:1"}}}, id="remote-write"),
        pytest.param({"auth": {"type": "jwt", "jwt": {"jwks_url": "https://x/jwks"}}}, id="jwt"),
    ],
)
def test_load_of_dump_equals_the_original_config(raw: dict[str, Any]) -> None:
    config = parse_config(raw).config
    assert parse_config(json.loads(json.dumps(ConfigSchema().dump(config)))).config == config


def test_load_of_dump_keeps_the_files_directory() -> None:
    config = parse_config({"tenants": {"source": "files", "files": {"directory": "d"}}}).config
    assert parse_config(ConfigSchema().dump(config)).config == config


def test_load_of_dump_keeps_apikey_static_keys() -> None:
    config = parse_config({"auth": {"type": "apikey", "apikey": {"static_keys": {"k": ["a"]}}}}).config
    assert parse_config(ConfigSchema().dump(config)).config == config
