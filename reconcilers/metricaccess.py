"""The remote-write job one MetricAccess asks for, and why when it gets none.

``desired_job`` is pure: spec + config → a ``RemoteWriteJob``, or ``None`` (forwarding
off), or a ``JobDenied`` naming the reason. The platform's guardrails are applied here,
not by whoever writes the MetricAccess (the original let any author copy data anywhere,
§4.8): isolation may be required, ``targetNamespace`` may not name another namespace
unless allowed, and a ``remote_write`` URL must start with an allowlisted prefix.
Destination URLs are the original's in-cluster names, rewritten through
``remote_write.host_aliases`` when the service runs outside the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from mtproxy.api import Config, MetricAccess, TargetType, parse_duration_ms, rules_for
from mtproxy.reconcilers.tenants import isolation_denied
from mtproxy.remotewrite.job import Destination, DestinationKind, RemoteWriteJob

__all__ = ["JobDenied", "desired_job", "resolve_host_alias"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobDenied:
    """The spec asks for forwarding the guardrails do not allow."""

    reason: str
    """A condition reason, e.g. ``PolicyDenied``."""
    message: str
    guardrail: str = "guardrails"
    """The config key of the guardrail that refuses, e.g. ``guardrails.remote_write_url_allowlist``."""


def resolve_host_alias(url: str, aliases: dict[str, str] | None) -> str:
    """``url`` with its host replaced by ``aliases[host]`` (a ``host:port``) when listed."""
    if not aliases:
        return url
    parts = urlsplit(url)
    target = aliases.get(parts.hostname or "")
    if target is None:
        return url
    return urlunsplit((parts.scheme, target, parts.path, parts.query, parts.fragment))


def _prometheus_destinations(access: MetricAccess, config: Config) -> tuple[Destination, ...] | JobDenied:
    spec = access.spec.remote_write
    assert spec is not None and spec.prometheus is not None
    target = spec.prometheus
    namespace = target.target_namespace or access.metadata.namespace
    if namespace != access.metadata.namespace and not config.guardrails.allow_foreign_target_namespace:
        return JobDenied(
            reason="PolicyDenied",
            guardrail="guardrails.allow_foreign_target_namespace",
            message=f"prometheus.targetNamespace {namespace!r} is another namespace "
            "(guardrails.allow_foreign_target_namespace is off)",
        )
    service = f"{target.service_name}.{namespace}.svc.cluster.local:{target.service_port}"
    if target.replicas and target.stateful_set_name:
        hosts = [f"{target.stateful_set_name}-{i}.{service}" for i in range(target.replicas)]
    else:
        hosts = [service]
    aliases = dict(config.remote_write.host_aliases)
    return tuple(
        Destination(
            kind=DestinationKind.REMOTE_WRITE,
            name=f"http://{host}/api/v1/write",
            url=resolve_host_alias(f"http://{host}/api/v1/write", aliases),
        )
        for host in hosts
    )


def desired_job(access: MetricAccess, config: Config) -> RemoteWriteJob | JobDenied | None:
    """The job of ``access``: None when forwarding is off, JobDenied when the guardrails refuse."""
    spec = access.spec
    rw = spec.remote_write
    if rw is None or not rw.enabled:
        return None
    namespace = access.metadata.namespace
    denied = isolation_denied(access, config.guardrails)
    if denied is not None:
        return JobDenied(reason="PolicyDenied", message=denied, guardrail="guardrails.require_isolation")
    destinations: tuple[Destination, ...]
    aliases = dict(config.remote_write.host_aliases)
    if rw.target_type is TargetType.PROMETHEUS:
        built = _prometheus_destinations(access, config)
        if isinstance(built, JobDenied):
            return built
        destinations = built
    elif rw.target_type is TargetType.PUSHGATEWAY:
        assert rw.pushgateway is not None
        gateway = rw.pushgateway
        base = f"http://{gateway.service_name}.{namespace}.svc.cluster.local:{gateway.service_port}"
        destinations = (
            Destination(
                kind=DestinationKind.PUSHGATEWAY,
                name=base,
                url=resolve_host_alias(base, aliases),
                pushgateway_job=gateway.job_name,
            ),
        )
    else:
        assert rw.remote_write is not None
        endpoint = rw.remote_write
        allowlist = config.guardrails.remote_write_url_allowlist
        if not any(endpoint.url.startswith(prefix) for prefix in allowlist):
            return JobDenied(
                reason="PolicyDenied",
                guardrail="guardrails.remote_write_url_allowlist",
                message=f"remoteWrite.url {endpoint.url!r} is not allowed "
                "(guardrails.remote_write_url_allowlist lists the permitted prefixes)",
            )
        destinations = (
            Destination(
                kind=DestinationKind.REMOTE_WRITE,
                name=endpoint.url,
                url=resolve_host_alias(endpoint.url, aliases),
                headers=dict(endpoint.headers),
                basic_auth_username=endpoint.basic_auth.username if endpoint.basic_auth else None,
                basic_auth_password=endpoint.basic_auth.password_secret if endpoint.basic_auth else None,
                bearer_token=endpoint.bearer_token_secret,
                insecure_skip_verify=bool(endpoint.tls_config and endpoint.tls_config.insecure_skip_verify),
                ca_secret=endpoint.tls_config.ca_secret if endpoint.tls_config else None,
            ),
        )
    rules = rules_for(
        spec.metrics,
        label_selectors=spec.label_selectors,
        isolation_namespace=namespace if spec.metric_isolation else None,
    )
    return RemoteWriteJob(
        namespace=namespace,
        name=access.metadata.name,
        rules=rules,
        interval_ms=rw.interval_ms,
        destinations=destinations,
        relabel=rw.metric_relabelings,
        extra_labels=dict(rw.extra_labels),
        honor_labels=rw.honor_labels,
        batch_size=config.remote_write.batch_size,
        max_backfill_ms=parse_duration_ms(config.remote_write.max_backfill),
        collection_timeout_ms=parse_duration_ms(config.remote_write.collection_timeout),
        generation=access.metadata.generation,
    )
