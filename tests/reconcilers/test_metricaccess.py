"""desired_job: destinations the original used, host aliases, and every guardrail."""

from __future__ import annotations

from typing import Any

import pytest

from mtproxy.api import Config, GuardrailsConfig, MetricAccess, MetricAccessSchema, RemoteWriteConfig
from mtproxy.reconcilers.metricaccess import JobDenied, desired_job
from mtproxy.remotewrite.job import DestinationKind, RemoteWriteJob


def _access(remote_write: dict[str, Any] | None, *, isolation: bool = True, namespace: str = "team-a") -> MetricAccess:
    spec: dict[str, Any] = {"source": namespace, "metricIsolation": isolation, "metrics": ["up", "http_.*"]}
    if remote_write is not None:
        spec["remoteWrite"] = remote_write
    doc = {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": "m", "namespace": namespace, "generation": 3},
        "spec": spec,
    }
    loaded: MetricAccess = MetricAccessSchema().load(doc)
    return loaded


PROMETHEUS = {"enabled": True, "target": {"type": "prometheus"}, "prometheus": {"serviceName": "prom"}}


def test_no_remote_write_or_disabled_means_no_job() -> None:
    assert desired_job(_access(None), Config()) is None
    assert desired_job(_access({**PROMETHEUS, "enabled": False}), Config()) is None


def test_service_destination_uses_the_original_dns_name() -> None:
    job = desired_job(_access(PROMETHEUS), Config())
    assert isinstance(job, RemoteWriteJob)
    assert [d.url for d in job.destinations] == ["http://prom.team-a.svc.cluster.local:9090/api/v1/write"]
    assert job.interval_ms == 30_000 and job.generation == 3
    assert all(any(str(m) == 'namespace="team-a"' for m in r.matchers) for r in job.rules)


def test_replicas_write_to_every_pod_dns_name_through_host_aliases() -> None:
    rw = {**PROMETHEUS, "prometheus": {"serviceName": "prom", "replicas": 2, "statefulSetName": "p"}}
    aliases = {"p-1.prom.team-a.svc.cluster.local": "127.0.0.1:19999"}
    job = desired_job(_access(rw), Config(remote_write=RemoteWriteConfig(host_aliases=aliases)))
    assert isinstance(job, RemoteWriteJob)
    assert [d.name for d in job.destinations] == [
        "http://p-0.prom.team-a.svc.cluster.local:9090/api/v1/write",
        "http://p-1.prom.team-a.svc.cluster.local:9090/api/v1/write",
    ]
    assert job.destinations[1].url == "http://127.0.0.1:19999/api/v1/write"


def test_pushgateway_destination() -> None:
    rw = {"enabled": True, "target": {"type": "pushgateway"}, "pushgateway": {"serviceName": "pg", "jobName": "j"}}
    job = desired_job(_access(rw), Config())
    assert isinstance(job, RemoteWriteJob)
    (dest,) = job.destinations
    assert dest.kind is DestinationKind.PUSHGATEWAY
    assert dest.url == "http://pg.team-a.svc.cluster.local:9091" and dest.pushgateway_job == "j"


REMOTE = {
    "enabled": True,
    "target": {"type": "remote_write"},
    "remoteWrite": {
        "url": "https://vm.example/api/v1/write",
        "basicAuth": {"username": "u", "passwordSecret": {"name": "s", "key": "k"}},
        "headers": {"X-Tenant": "a"},
    },
}


@pytest.mark.parametrize(
    ("access", "config", "fragment"),
    [
        pytest.param(_access(REMOTE), Config(), "remote_write_url_allowlist", id="url-not-allowlisted"),
        pytest.param(
            _access({**PROMETHEUS, "prometheus": {"serviceName": "prom", "targetNamespace": "team-b"}}),
            Config(),
            "allow_foreign_target_namespace",
            id="foreign-target-namespace",
        ),
        pytest.param(
            _access(PROMETHEUS, isolation=False),
            Config(guardrails=GuardrailsConfig(require_isolation=True)),
            "require_isolation",
            id="isolation-required",
        ),
    ],
)
def test_guardrails_deny_with_a_reason(access: MetricAccess, config: Config, fragment: str) -> None:
    result = desired_job(access, config)
    assert isinstance(result, JobDenied)
    assert result.reason == "PolicyDenied" and fragment in result.message


def test_allowlisted_remote_write_keeps_auth_references_not_secrets() -> None:
    config = Config(guardrails=GuardrailsConfig(remote_write_url_allowlist=("https://vm.example/",)))
    job = desired_job(_access(REMOTE), config)
    assert isinstance(job, RemoteWriteJob)
    (dest,) = job.destinations
    assert dest.basic_auth_username == "u"
    assert dest.basic_auth_password is not None and dest.basic_auth_password.name == "s"
    assert dest.headers == {"X-Tenant": "a"}


def test_jobs_compare_by_value_so_relabel_edits_restart_the_job() -> None:
    one = desired_job(_access(PROMETHEUS), Config())
    two = desired_job(_access({**PROMETHEUS, "metricRelabelings": [{"action": "labeldrop", "regex": "pod"}]}), Config())
    assert one == desired_job(_access(PROMETHEUS), Config())
    assert one != two
