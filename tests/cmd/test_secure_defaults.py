"""Secure by default (issue 15, finding 3): with the config left at its defaults, a tenant that
may write a MetricAccess in its own namespace cannot grant itself another namespace's series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from realservers import LoadedPrometheus, MtproxyProcess

from mtproxy.api import Config, MetricAccessSchema, parse_config
from mtproxy.reconcilers.metricaccess import JobDenied, desired_job
from mtproxy.reconcilers.tenants import desired_policy

GRAB = {
    "apiVersion": "observability.ethos.io/v1alpha1",
    "kind": "MetricAccess",
    "metadata": {"name": "grab", "namespace": "team-a"},
    "spec": {"source": "team-a", "metrics": ['{namespace="team-b"}']},
}
"""team-a's attempt: no ``metricIsolation`` (so false), a rule naming team-b."""

OWN = {
    "apiVersion": "observability.ethos.io/v1alpha1",
    "kind": "MetricAccess",
    "metadata": {"name": "own", "namespace": "team-b"},
    "spec": {"source": "team-b", "metricIsolation": True, "metrics": ["up"]},
}
GUARDRAIL = "guardrails.require_isolation"


def _with_forwarding(document: dict[str, Any]) -> dict[str, Any]:
    spec = {
        **document["spec"],
        "remoteWrite": {
            "enabled": True,
            "target": {"type": "prometheus"},
            "prometheus": {"serviceName": "prometheus"},
        },
    }
    return {**document, "spec": spec}


def test_default_config_denies_the_unisolated_object_and_grants_nothing() -> None:
    config = parse_config({}).config
    grab = MetricAccessSchema().load(GRAB)
    decision = desired_policy("team-a", [grab], guardrails=config.guardrails)
    assert decision.policy is None
    ((key, reason),) = decision.denied
    assert key == "team-a/grab"
    assert GUARDRAIL in reason


def test_default_config_denies_forwarding_of_the_unisolated_object_as_policy_denied() -> None:
    job = desired_job(MetricAccessSchema().load(_with_forwarding(GRAB)), Config())
    assert isinstance(job, JobDenied)
    assert job.reason == "PolicyDenied"
    assert GUARDRAIL in job.message


def test_listing_the_namespace_as_unisolated_restores_the_originals_behaviour() -> None:
    config = parse_config({"guardrails": {"unisolated_namespaces": ["team-a"]}}).config
    decision = desired_policy("team-a", [MetricAccessSchema().load(GRAB)], guardrails=config.guardrails)
    assert decision.policy is not None
    assert decision.denied == ()


@pytest.mark.slow
def test_the_running_service_with_default_guardrails_gives_the_grab_nothing(
    tmp_path: Path, infra_prometheus_with_data: LoadedPrometheus
) -> None:
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    (tenants / "grab.yaml").write_text(yaml.safe_dump(GRAB))
    (tenants / "own.yaml").write_text(yaml.safe_dump(OWN))
    config = {
        "discovery": {"static": {"targets": [infra_prometheus_with_data.url]}},
        "tenants": {"source": "files", "files": {"directory": str(tenants)}},
    }
    service = MtproxyProcess("mtproxy-defaults", tmp_path / "service", config).start()
    try:
        end = str(infra_prometheus_with_data.data.end_s)
        with httpx.Client(base_url=service.url, timeout=10.0) as client:
            for path, params in (
                ("/api/v1/query", {"query": '{namespace="team-b"}', "time": end}),
                ("/api/v1/series", {"match[]": '{namespace="team-b"}', "start": "0", "end": end}),
            ):
                grabbed = client.get(path, params=params, headers={"X-Tenant-Namespace": "team-a"})
                assert grabbed.status_code == 403, grabbed.text
                assert "team-b" not in grabbed.text.replace("'team-a'", "")
            own = client.get(
                "/api/v1/query", params={"query": "up", "time": end}, headers={"X-Tenant-Namespace": "team-b"}
            )
            assert own.status_code == 200, own.text
            result = own.json()["data"]["result"]
            assert result
            assert {series["metric"]["namespace"] for series in result} == {"team-b"}
    finally:
        service.stop()
    denials = [r for r in service.records() if GUARDRAIL in str(r)]
    assert denials, "the denial was not logged"
