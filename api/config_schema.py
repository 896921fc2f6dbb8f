"""Loading the config file (YAML or JSON): strict keys, the original's defaults, clear errors.

Keys the original accepted but never read (original-behaviour §2: ``tenants.refresh_interval``,
``proxy.listen_address``, ``logging``, …) are accepted with a warning naming each one, so
existing ConfigMaps keep loading; any other unknown key is an error, since a typo there
would otherwise be silently ignored. ``remote_write.collection_interval`` (the README's
name) is an alias of ``default_interval``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from marshmallow import ValidationError, fields, post_dump, post_load, pre_load, validate
from marshmallow import validates_schema as _validates_schema

from mtproxy.api import config as c
from mtproxy.api.errors import APIValidationError, FieldProblem, flatten_messages
from mtproxy.api.schemafields import (
    Duration,
    ModelSchema,
    StrictBoolean,
    StrictInteger,
    StrictString,
    StringList,
    StringMap,
)

__all__ = ["IGNORED_KEYS", "ConfigSchema", "LoadedConfig", "load_config", "load_config_text", "parse_config"]

IGNORED_KEYS: tuple[str, ...] = (
    "tenants.refresh_interval",
    "remote_write.timeout",
    "remote_write.queue_config",
    "proxy.listen_address",
    "proxy.enable_tenant_filtering",
    "auth.enabled",
    "logging",
    "health",
    "metrics",
)
"""Keys the original accepted and ignored: warned about, then dropped."""

_RESOURCE_TYPES = ("Service", "Pod", "Endpoints", "EndpointSlice")
_POSITIVE = validate.Range(min=1)


class _Section(ModelSchema):
    """A config section: a sub-section left empty (``discovery:`` with nothing under it) means defaults."""

    @pre_load
    def _null_sections_are_defaults(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        nested = {name for name, field in self.fields.items() if isinstance(field, fields.Nested)}
        return {k: v for k, v in data.items() if not (v is None and k in nested)}


class KubernetesDiscoverySchema(_Section):
    __model__ = c.KubernetesDiscoveryConfig
    namespaces = StringList(load_default=tuple)
    label_selectors = StringMap(load_default=lambda: {"app": "prometheus"})
    annotation_selectors = StringMap(load_default=dict)
    port = fields.Raw(load_default="9090")
    resource_types = StringList(load_default=("Service",))

    @pre_load
    def _port_as_text(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("port"), int) and not isinstance(data["port"], bool):
            data = {**data, "port": str(data["port"])}
        return data

    @_validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        port = data.get("port")
        if not isinstance(port, str) or not port:
            errors["port"] = ["must be a port name or number"]
        elif port.isdigit() and not 1 <= int(port) <= 65535:
            errors["port"] = ["must be between 1 and 65535"]
        bad = [t for t in data.get("resource_types", ()) if t not in _RESOURCE_TYPES]
        if bad:
            errors["resource_types"] = [
                f"unknown resource type(s) {', '.join(bad)}; one of {', '.join(_RESOURCE_TYPES)}"
            ]
        if errors:
            raise ValidationError(errors)


class StaticDiscoverySchema(_Section):
    __model__ = c.StaticDiscoveryConfig
    targets = StringList(load_default=tuple)

    @_validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        bad = [t for t in data.get("targets", ()) if not t.startswith(("http://", "https://"))]
        if bad:
            raise ValidationError(f"targets must be http(s) URLs: {', '.join(bad)}", "targets")


class DiscoverySchema(_Section):
    __model__ = c.DiscoveryConfig
    refresh_interval = Duration(load_default="30s", min_ms=1)
    kubernetes = fields.Nested(KubernetesDiscoverySchema, load_default=c.KubernetesDiscoveryConfig)
    static = fields.Nested(StaticDiscoverySchema, load_default=c.StaticDiscoveryConfig)
    health_check_interval = Duration(load_default="10s", min_ms=100)
    health_check_timeout = Duration(load_default="5s", min_ms=1)
    unhealthy_threshold = StrictInteger(load_default=2, validate=_POSITIVE)
    healthy_threshold = StrictInteger(load_default=1, validate=_POSITIVE)


class TenantsSchema(_Section):
    __model__ = c.TenantsConfig
    watch_all_namespaces = StrictBoolean(load_default=False)
    watch_namespaces = StringList(load_default=tuple)
    source = fields.Enum(c.TenantSource, by_value=True, load_default=c.TenantSource.KUBERNETES)
    files = StringMap(load_default=None)
    status_interval = Duration(load_default="30s", min_ms=1000)

    @post_load
    def _to_model(self, data: dict[str, Any], **kwargs: Any) -> Any:
        files = data.pop("files") or {}
        unknown = sorted(set(files) - {"directory"})
        if unknown:
            raise ValidationError({"files": {key: ["unknown field"] for key in unknown}})
        data["files_directory"] = files.get("directory")
        if data["source"] is c.TenantSource.FILES and not data["files_directory"]:
            raise ValidationError("required when tenants.source is files", "files.directory")
        return c.TenantsConfig(**data)

    @post_dump(pass_original=True)
    def _dump_files(self, data: dict[str, Any], original: Any, **kwargs: Any) -> dict[str, Any]:
        data = {k: v for k, v in data.items() if v is not None}
        if original.files_directory:
            data["files"] = {"directory": original.files_directory}
        return data


class ProxySchema(_Section):
    __model__ = c.ProxyConfig
    enable_caching = StrictBoolean(load_default=False)
    cache_ttl = Duration(load_default="5m", min_ms=1)
    cache_max_bytes = StrictInteger(load_default=64 * 1024 * 1024, validate=_POSITIVE)
    enable_metrics = StrictBoolean(load_default=False)
    enable_request_logging = StrictBoolean(load_default=False)
    enable_debug_endpoints = StrictBoolean(load_default=True)
    max_concurrent_requests = StrictInteger(load_default=100, validate=_POSITIVE)
    max_concurrent_requests_per_tenant = StrictInteger(load_default=None, allow_none=True, validate=_POSITIVE)
    queue_timeout = Duration(load_default="5s")
    backend_timeout = Duration(load_default="30s", min_ms=1)
    query_mode = fields.Enum(c.QueryMode, by_value=True, load_default=c.QueryMode.LOAD_BALANCE)
    replica_labels = StringList(load_default=tuple)
    max_request_body_bytes = StrictInteger(load_default=4 * 1024 * 1024, validate=_POSITIVE)
    max_query_bytes = StrictInteger(load_default=256 * 1024, validate=_POSITIVE)
    max_query_range = Duration(load_default=None, allow_none=True, min_ms=1)
    max_points = StrictInteger(load_default=None, allow_none=True, validate=_POSITIVE)
    backend_compression = StrictBoolean(load_default=False)


class RemoteWriteSchema(_Section):
    __model__ = c.RemoteWriteConfig
    enabled = StrictBoolean(load_default=False)
    default_interval = Duration(load_default="30s", min_ms=5_000, max_ms=86_400_000)
    max_concurrent_jobs = StrictInteger(load_default=10, validate=_POSITIVE)
    collection_timeout = Duration(load_default="30s", min_ms=1)
    retry_attempts = StrictInteger(load_default=3, validate=validate.Range(min=0))
    retry_delay = Duration(load_default="5s")
    batch_size = StrictInteger(load_default=5000, validate=_POSITIVE)
    max_backfill = Duration(load_default="1h")
    host_aliases = StringMap(load_default=dict)
    state_dir = StrictString(load_default=None)
    secrets_file = StrictString(load_default=None)
    safety_delay = Duration(load_default="2s")

    @pre_load
    def _alias(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping) and "collection_interval" in data:
            data = dict(data)
            alias = data.pop("collection_interval")
            if "default_interval" in data and data["default_interval"] != alias:
                raise ValidationError(
                    "remote_write.collection_interval and remote_write.default_interval differ; keep one",
                    "collection_interval",
                )
            data["default_interval"] = alias
        return data


class JWTSchema(_Section):
    __model__ = c.JWTAuthConfig
    secret_key = StrictString(load_default=None)
    jwks_file = StrictString(load_default=None)
    jwks_url = StrictString(load_default=None)
    issuer = StrictString(load_default=None)
    audience = StrictString(load_default=None)
    namespaces_claim = StrictString(load_default="namespaces")


class ApiKeySchema(_Section):
    __model__ = c.ApiKeyAuthConfig
    header_name = StrictString(load_default="X-API-Key", validate=validate.Length(min=1))
    static_keys = fields.Raw(load_default=dict)
    keys_file = StrictString(load_default=None)

    @post_load
    def _to_model(self, data: dict[str, Any], **kwargs: Any) -> Any:
        keys: dict[str, tuple[str, ...]] = {}
        if not isinstance(data["static_keys"], dict):
            raise ValidationError("must map each key to a namespace or a list of namespaces", "static_keys")
        for key, namespaces in data["static_keys"].items():
            if isinstance(namespaces, str):
                namespaces = [namespaces]
            if (
                not isinstance(key, str)
                or not isinstance(namespaces, list | tuple)
                or not all(isinstance(n, str) and n for n in namespaces)
            ):
                raise ValidationError("must map each key to a namespace or a list of namespaces", "static_keys")
            keys[key] = tuple(namespaces)
        data["static_keys"] = keys
        return c.ApiKeyAuthConfig(**data)

    @post_dump(pass_original=True)
    def _dump_keys(self, data: dict[str, Any], original: Any, **kwargs: Any) -> dict[str, Any]:
        data = {k: v for k, v in data.items() if v is not None}
        data["static_keys"] = {key: list(namespaces) for key, namespaces in original.static_keys.items()}
        return data


class KubernetesAuthSchema(_Section):
    __model__ = c.KubernetesAuthConfig
    verb = StrictString(load_default="get")
    group = StrictString(load_default="observability.ethos.io")
    resource = StrictString(load_default="metricaccesses")
    cache_ttl = Duration(load_default="10s")


class AuthSchema(_Section):
    __model__ = c.AuthConfig
    type = fields.Enum(c.AuthType, by_value=True, load_default=c.AuthType.NONE)
    jwt = fields.Nested(JWTSchema, load_default=c.JWTAuthConfig)
    apikey = fields.Nested(ApiKeySchema, load_default=c.ApiKeyAuthConfig)
    kubernetes = fields.Nested(KubernetesAuthSchema, load_default=c.KubernetesAuthConfig)

    @_validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        jwt: c.JWTAuthConfig = data.get("jwt") or c.JWTAuthConfig()
        if data.get("type") is c.AuthType.JWT:
            sources = [s for s in (jwt.secret_key, jwt.jwks_file, jwt.jwks_url) if s]
            if len(sources) != 1:
                raise ValidationError("auth.type jwt needs exactly one of secret_key, jwks_file, jwks_url", "jwt")
        apikey: c.ApiKeyAuthConfig = data.get("apikey") or c.ApiKeyAuthConfig()
        if data.get("type") is c.AuthType.APIKEY and not (apikey.static_keys or apikey.keys_file):
            raise ValidationError("auth.type apikey needs static_keys or keys_file", "apikey")


class GuardrailsSchema(_Section):
    __model__ = c.GuardrailsConfig
    require_isolation = StrictBoolean(load_default=True)
    unisolated_namespaces = StringList(load_default=tuple)
    allow_foreign_target_namespace = StrictBoolean(load_default=False)
    remote_write_url_allowlist = StringList(load_default=tuple)


class ConfigSchema(_Section):
    __model__ = c.Config
    discovery = fields.Nested(DiscoverySchema, load_default=c.DiscoveryConfig)
    tenants = fields.Nested(TenantsSchema, load_default=c.TenantsConfig)
    proxy = fields.Nested(ProxySchema, load_default=c.ProxyConfig)
    remote_write = fields.Nested(RemoteWriteSchema, load_default=c.RemoteWriteConfig)
    auth = fields.Nested(AuthSchema, load_default=c.AuthConfig)
    guardrails = fields.Nested(GuardrailsSchema, load_default=c.GuardrailsConfig)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedConfig:
    """A config and the warnings its loading produced."""

    config: c.Config
    warnings: tuple[str, ...]


def _strip_ignored(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    warnings: list[str] = []
    raw = dict(raw)
    for dotted in IGNORED_KEYS:
        parts = dotted.split(".")
        parent: Any = raw
        for part in parts[:-1]:
            child = parent.get(part) if isinstance(parent, dict) else None
            if not isinstance(child, dict):
                parent = None
                break
            parent[part] = child = dict(child)
            parent = child
        if isinstance(parent, dict) and parts[-1] in parent:
            del parent[parts[-1]]
            warnings.append(f"{dotted}: accepted for compatibility but has no effect; remove it")
    return raw, warnings


def parse_config(raw: Any) -> LoadedConfig:
    """Validate a decoded config document.

    Raises:
        APIValidationError: one problem per bad or unknown key, with its dotted path.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise APIValidationError([FieldProblem(path="", message="config must be a mapping of sections")])
    raw, warnings = _strip_ignored(raw)
    try:
        config = ConfigSchema().load(raw)
    except ValidationError as exc:
        raise APIValidationError(flatten_messages(exc.messages)) from None
    return LoadedConfig(config=config, warnings=tuple(warnings))


def load_config_text(text: str) -> LoadedConfig:
    """Parse YAML or JSON config text; YAML errors name the line."""
    try:
        raw = yaml.safe_load(text)
    except RecursionError:
        raise APIValidationError([FieldProblem(path="", message="YAML nested too deeply")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise APIValidationError([FieldProblem(path="", message=f"{where}invalid YAML: {problem}")]) from None
    return parse_config(raw)


def load_config(path: str) -> LoadedConfig:
    """Read and validate the config file at ``path``."""
    with open(path, encoding="utf-8") as handle:
        return load_config_text(handle.read())
