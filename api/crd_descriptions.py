"""What ``kubectl explain metricaccess.spec…`` says about each field, in one table.

Keyed by the field's path in the object, with the two spellings of an endpoint block
(``spec.remoteWrite.prometheus`` and its alias ``spec.remoteWrite.target.prometheus``)
described once under the first. ``describe`` fills the generated CRD's schema from it; a
field a schema already describes keeps its own text. A test checks that every spec and
status field ends up described.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DESCRIPTIONS", "describe"]

_SECRET_NAME = "Name of a Secret in the MetricAccess' own namespace."
_SECRET_KEY = "Key in that Secret."

DESCRIPTIONS: dict[str, str] = {
    "spec.source": "Informational name of the data source; the object's namespace is what is enforced.",
    "spec.metricIsolation": (
        "Only series labelled namespace=<this namespace> are visible and forwarded. Required by default "
        "(guardrails.require_isolation); without it the object is denied unless the platform lists the "
        "namespace in guardrails.unisolated_namespaces."
    ),
    "spec.metrics": (
        "Metric patterns, each one rule: an exact metric name, an RE2 regex over the name anchored at both ends "
        "(node_.*), or a PromQL selector ({job=\"app\"}, up{job=\"app\"}). A series is visible when any rule of "
        "any MetricAccess in the namespace matches it."
    ),
    "spec.labelSelectors": "Label equality matchers ANDed with every pattern of this object.",
    "spec.remoteWrite": "Copy the visible series, relabelled, to the tenant's own Prometheus or another receiver.",
    "spec.remoteWrite.enabled": "Forward this object's series.",
    "spec.remoteWrite.target": "Where the series go.",
    "spec.remoteWrite.target.type": "prometheus (a tenant Prometheus Service or its replicas), pushgateway, or "
    "remote_write (any Prometheus remote-write 1.0 receiver).",
    "spec.remoteWrite.prometheus": "The tenant Prometheus (target.type prometheus).",
    "spec.remoteWrite.prometheus.serviceName": "Name of the tenant Prometheus Service.",
    "spec.remoteWrite.prometheus.servicePort": "Port of that Service.",
    "spec.remoteWrite.prometheus.replicas": "With statefulSetName: write to every replica's pod DNS name, 0..n-1.",
    "spec.remoteWrite.prometheus.statefulSetName": "The StatefulSet whose replicas each receive every sample.",
    "spec.remoteWrite.pushgateway": "A Pushgateway (target.type pushgateway): the newest value of every series.",
    "spec.remoteWrite.pushgateway.serviceName": "Name of the Pushgateway Service.",
    "spec.remoteWrite.pushgateway.servicePort": "Port of that Service.",
    "spec.remoteWrite.pushgateway.jobName": "The job label of the pushed group (deleted when the object goes).",
    "spec.remoteWrite.remoteWrite": "Any remote-write receiver (target.type remote_write).",
    "spec.remoteWrite.remoteWrite.url": (
        "The receiver's write URL; it must start with a prefix listed in guardrails.remote_write_url_allowlist."
    ),
    "spec.remoteWrite.remoteWrite.basicAuth": "HTTP basic authentication.",
    "spec.remoteWrite.remoteWrite.basicAuth.username": "The user name.",
    "spec.remoteWrite.remoteWrite.basicAuth.passwordSecret": "Where the password is read from.",
    "spec.remoteWrite.remoteWrite.bearerTokenSecret": "Where a bearer token is read from.",
    "spec.remoteWrite.remoteWrite.headers": "Extra HTTP headers sent with every request.",
    "spec.remoteWrite.remoteWrite.tlsConfig": "TLS options.",
    "spec.remoteWrite.remoteWrite.tlsConfig.insecureSkipVerify": "Do not verify the receiver's certificate.",
    "spec.remoteWrite.remoteWrite.tlsConfig.caSecret": "Where a PEM CA bundle is read from.",
    "spec.remoteWrite.extraLabels": "Labels added to every forwarded series.",
    "spec.remoteWrite.honorLabels": (
        "On a conflict with extraLabels the series' own value wins; otherwise the extra label wins and the "
        "series' value moves to exported_<name>, as Prometheus does."
    ),
    "spec.remoteWrite.metricRelabelings": "Prometheus metric_relabel_configs, applied before extraLabels.",
    "spec.remoteWrite.metricRelabelings[].sourceLabels": "Labels whose values are joined with separator.",
    "spec.remoteWrite.metricRelabelings[].separator": "Joins the source label values.",
    "spec.remoteWrite.metricRelabelings[].regex": "RE2 regex matched against the joined value, anchored.",
    "spec.remoteWrite.metricRelabelings[].modulus": "Modulus of the hash (action hashmod).",
    "spec.remoteWrite.metricRelabelings[].targetLabel": "Label the result is written to.",
    "spec.remoteWrite.metricRelabelings[].replacement": "Replacement, with $1-style references to regex groups.",
    "spec.remoteWrite.metricRelabelings[].action": (
        "replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase or uppercase."
    ),
    "status.observedGeneration": "The metadata.generation this status describes.",
    "status.conditions": "Valid, Forwarding (with remoteWrite.enabled) and Ready.",
    "status.conditions[].type": "Valid, Forwarding or Ready.",
    "status.conditions[].status": "True, False or Unknown.",
    "status.conditions[].reason": (
        "Why, in one word: SpecValid, InvalidSpec, PolicyDenied, Forwarding, Pending, SecretUnavailable, "
        "TargetUnreachable, WriteFailed, CollectionFailed, CycleTimeout, InternalError, ForwardingDisabled, "
        "ForwardingPending, "
        "Ready."
    ),
    "status.conditions[].message": "Details: the problems with their field paths, the guardrail, the last error.",
    "status.conditions[].lastTransitionTime": "When the status last changed.",
    "status.conditions[].observedGeneration": "The metadata.generation this condition describes.",
    "status.lastUpdated": "When the counters were last written.",
    "status.validatedMetrics": "The patterns in force.",
    "status.remoteWrite": "Forwarding progress, written at most every tenants.status_interval.",
    "status.remoteWrite.active": "A job runs for this object.",
    "status.remoteWrite.lastCollection": "End of the newest window every destination has received.",
    "status.remoteWrite.lastSuccessfulWrite": "When a destination last acknowledged a write.",
    "status.remoteWrite.metricsCollected": "Series read from the source in the newest window.",
    "status.remoteWrite.samplesForwarded": "Samples acknowledged by the destinations since the job started.",
    "status.remoteWrite.lastError": "The newest error, if the last cycle had one.",
    "status.remoteWrite.targets": "One entry per destination (each replica, a Pushgateway, or a URL).",
    "status.remoteWrite.targets[].endpoint": "The destination, by its in-cluster URL.",
    "status.remoteWrite.targets[].healthy": "The last cycle delivered everything to it.",
    "status.remoteWrite.targets[].lastError": "Its newest error.",
    "status.remoteWrite.targets[].lastSuccessTime": "When it last acknowledged a write.",
}

_ALIASES = {
    ".remoteWrite.target.prometheus": ".remoteWrite.prometheus",
    ".remoteWrite.target.pushgateway": ".remoteWrite.pushgateway",
    ".remoteWrite.target.remoteWrite": ".remoteWrite.remoteWrite",
}


def _lookup(path: str) -> str | None:
    for alias, canonical in _ALIASES.items():
        if alias in path:
            path = path.replace(alias, canonical)
    return DESCRIPTIONS.get(path)


def describe(schema: dict[str, Any], path: str) -> None:
    """Add the table's descriptions to ``schema`` (the openAPIV3Schema of the field at ``path``)."""
    text = _lookup(path)
    if text is not None and "description" not in schema:
        schema["description"] = text
    for name, child in (schema.get("properties") or {}).items():
        describe(child, f"{path}.{name}")
    items = schema.get("items")
    if isinstance(items, dict):
        describe(items, f"{path}[]")
    if path.endswith(("Secret", "passwordSecret", "caSecret")):
        properties = schema.get("properties") or {}
        for name, text_of in (("name", _SECRET_NAME), ("key", _SECRET_KEY)):
            if name in properties:
                properties[name].setdefault("description", text_of)
