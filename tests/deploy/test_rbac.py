"""RBAC proved on a real kube-apiserver: the rendered roles grant exactly what the service calls.

The service runs through :mod:`deploy.scenario` twice, behind a recording proxy
(:mod:`deploy.recorder`) that sees every request it makes and every status it gets:

- as the administrator, to learn what it calls: every (group, resource, subresource, verb,
  namespace) must be granted to its service account by ``kubectl kustomize config/default``
  (ClusterRole, Role, and the kubernetes-auth component), and every grant must be used,
  each in the scope that needs it (:mod:`deploy.rbacrules`);
- as that service account (the rendered ServiceAccount, roles and bindings created on the
  server, a token from the TokenRequest API), to prove the roles are enough: no 401 or 403
  anywhere, and the forwarding object becomes Ready.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import yaml
from deploy.rbacrules import Access, NonResource, access_of, grants_of, missing, table, unused
from deploy.recorder import Call, RecordingProxy
from deploy.scenario import SERVICE_NAMESPACE, Outcome, ScenarioNames, run_scenario, write_kubeconfig
from realservers import ScrapeTarget, ServerProcess, ServerSet
from realservers.kubeapiserver import ADMIN, RunningKubeApiserver

pytestmark = pytest.mark.slow

SERVICE_ACCOUNT = "prometheus-multi-tenant-proxy"
RECORDED = ScenarioNames("rbac-admin")
UNDER_RBAC = ScenarioNames("rbac-sa")
RBAC_KINDS = frozenset({"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})

ACCOUNTED_UNUSED = {
    ("", "events", "create"): (
        "core/v1 Events: the recorder falls back to them only where events.k8s.io/v1 is not served "
        "(controller/events.py), which every API server since 1.19 serves"
    ),
}
"""Grants kept although the scenario cannot use them, and why."""


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """(infrastructure, tenant) Prometheus: the infrastructure one scrapes the tenant one every
    second as each run's tenant namespace A, so ``up{namespace=A}`` exists for ``forward``."""
    servers = ServerSet(tmp_path_factory)
    try:
        tenant = servers.tenant_prometheus()
        infra = servers.infrastructure_prometheus(targets=[
            ScrapeTarget(job=f"src-{names.run}", addresses=(tenant.address,), labels={"namespace": names.tenant_a})
            for names in (RECORDED, UNDER_RBAC)
        ])
        yield infra, tenant
    finally:
        servers.stop_all()


async def _recorded_run(server: RunningKubeApiserver, names: ScenarioNames, token: str, workdir: Path,
                        backends: tuple[ServerProcess, ServerProcess]) -> Outcome:
    infra, tenant = backends
    # The first status write is answered 409, so the status writer's re-read runs too.
    recorder = RecordingProxy(server.url, server.ssl_context(), conflicts={"/status": 1})
    async with trio.open_nursery() as nursery:
        await nursery.start(recorder.run)
        kubeconfig = write_kubeconfig(workdir / "kubeconfig", server=recorder.url, token=token)
        outcome = await run_scenario(server=server, recorder=recorder, kubeconfig=kubeconfig, names=names,
                                     infra=infra, tenant=tenant, workdir=workdir)
        nursery.cancel_scope.cancel()
    return outcome


def _accesses(calls: list[Call]) -> tuple[list[Access], list[NonResource]]:
    parsed = [access_of(c.method, c.path, c.query) for c in calls]
    return [a for a in parsed if isinstance(a, Access)], [n for n in parsed if isinstance(n, NonResource)]


def _refused(calls: list[Call]) -> list[str]:
    return [f"{c.status} {c.method} {c.path}" for c in calls if c.status in (401, 403)]


def _format_table(accesses: list[Access]) -> str:
    rows = table(accesses, SERVICE_NAMESPACE)
    return "\n".join(f"  {group:24} {resource:22} {sub:8} {verb:7} {scope}"
                     for group, resource, sub, verb, scope in rows)


async def test_rendered_rbac_grants_exactly_what_the_service_calls(
    deploy_apiserver: RunningKubeApiserver, rendered: list[dict[str, Any]],
    backends: tuple[ServerProcess, ServerProcess], tmp_path: Path,
) -> None:
    outcome = await _recorded_run(deploy_apiserver, RECORDED, ADMIN.token, tmp_path, backends)
    accesses, non_resource = _accesses(outcome.calls)
    print(f"steps (s): {outcome.steps}\nwhat the service called ({len(outcome.calls)} requests):\n"
          f"{_format_table(accesses)}")

    assert not non_resource, f"the service called non-resource URLs, which no role grants: {non_resource}"
    assert not _refused(outcome.calls), "the administrator was refused"
    grants = grants_of(rendered, (SERVICE_NAMESPACE, SERVICE_ACCOUNT))
    assert grants, "the rendered manifests bind nothing to the service account"

    not_granted = missing(accesses, grants)
    assert not not_granted, "called but not granted:\n" + "\n".join(map(str, not_granted))
    never_used = [g for g in unused(grants, accesses, SERVICE_NAMESPACE)
                  if (g.group, g.resource, g.verb) not in ACCOUNTED_UNUSED]
    assert not never_used, "granted but never used in the scope it is granted for:\n" + "\n".join(map(str, never_used))
    # the accounted exceptions are granted, and really unused (else they need no excuse)
    for group, resource, verb in ACCOUNTED_UNUSED:
        assert any((g.group, g.resource, g.verb) == (group, resource, verb) for g in grants)
        assert not any((a.group, a.rbac_resource, a.verb) == (group, resource, verb) for a in accesses)
    # auth.type kubernetes is what used TokenReview and SubjectAccessReview
    reviews = {a.resource for a in accesses if a.group in ("authentication.k8s.io", "authorization.k8s.io")}
    assert reviews == {"tokenreviews", "subjectaccessreviews"}


def _apply_rbac(server: RunningKubeApiserver, rendered: list[dict[str, Any]]) -> None:
    documents = [d for d in rendered if d["kind"] in RBAC_KINDS or d["kind"] == "Namespace"]
    text = yaml.safe_dump_all(documents, sort_keys=False)
    kubectl = server.kubectl_binary
    assert kubectl is not None
    subprocess.run([str(kubectl), f"--kubeconfig={server.kubeconfig_path}", "apply", "-f", "-"], input=text,
                   text=True, capture_output=True, check=True, timeout=60)


async def test_service_under_the_rendered_rbac_is_never_refused(
    deploy_apiserver: RunningKubeApiserver, rendered: list[dict[str, Any]],
    backends: tuple[ServerProcess, ServerProcess], tmp_path: Path,
) -> None:
    await trio.to_thread.run_sync(_apply_rbac, deploy_apiserver, rendered)
    token = await trio.to_thread.run_sync(
        lambda: deploy_apiserver.service_account_token(SERVICE_NAMESPACE, SERVICE_ACCOUNT))
    outcome = await _recorded_run(deploy_apiserver, UNDER_RBAC, token, tmp_path, backends)
    accesses, _ = _accesses(outcome.calls)
    print(f"steps (s): {outcome.steps}\nwhat the service called as its service account "
          f"({len(outcome.calls)} requests):\n{_format_table(accesses)}")
    refused = _refused(outcome.calls)
    assert not refused, "refused under the rendered RBAC:\n" + "\n".join(refused)
    assert any(c.path.endswith("/secrets/absent") and c.status == 404 for c in outcome.calls), \
        "the missing Secret was not read"
    # and the token really is the service account's, with no more than its roles
    async with httpx.AsyncClient(base_url=deploy_apiserver.url, verify=deploy_apiserver.ssl_context(),
                                 trust_env=False, headers={"Authorization": f"Bearer {token}"}) as http:
        assert (await http.get("/api/v1/secrets")).status_code == 403
        assert (await http.get(f"/api/v1/namespaces/{SERVICE_NAMESPACE}/configmaps")).status_code == 403
