"""The Kubernetes-mode scenario the RBAC proof runs the service through, on a real API server.

One run (:func:`run_scenario`) starts ``mtproxy`` as a child process with a kubeconfig whose
server is a :class:`~deploy.recorder.RecordingProxy` in front of the real kube-apiserver, with
the shipped config (``config/manager/config.yaml``) widened to everything the code can reach:
discovery of all four resource types in every namespace, remote write on, leader election on,
``auth.type: kubernetes``. It then drives what the service reacts to, each step waiting for
its effect so that the calls it causes are surely made:

1. a backend: a Pod labelled as Prometheus in a namespace of its own (its status, written by
   the admin, says Running on 127.0.0.1 and its ``web`` port is the infrastructure Prometheus');
2. ``forward`` in tenant namespace A: remote write to a tenant Prometheus on loopback, until
   ``Ready=True`` (a Lease won, a job running, its progress ConfigMap created and updated;
   the first status write is answered 409 by the recorder, so the status writer reads the
   object again);
3. ``secretless`` in A: remote write with a bearer token Secret that does not exist, until
   ``Forwarding=False/SecretUnavailable`` (a Secret read, a Warning Event);
4. ``denied`` in tenant namespace B without isolation, until ``Valid=False/PolicyDenied`` and
   its Warning Event;
5. an edit of ``forward``'s spec, until ``Ready=True`` for the new generation;
6. a tenant query with a user's bearer token (TokenReview, SubjectAccessReview), answered 200;
7. every MetricAccess deleted, until the jobs' progress ConfigMaps are deleted;
8. SIGTERM: the Lease is released.

Who the service is comes from the kubeconfig: the administrator for the recording run, the
service account of the rendered manifests for the run under RBAC.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import trio
import yaml
from deploy.recorder import Call, RecordingProxy
from realservers import MtproxyProcess, ServerProcess
from realservers.kubeapiserver import ADMIN, USERS, RunningKubeApiserver
from realservers.mtproxy import MTPROXY_BINARY

__all__ = ["REPO", "SERVICE_NAMESPACE", "Outcome", "ScenarioNames", "run_scenario", "service_config",
           "write_kubeconfig"]

REPO = Path(__file__).resolve().parents[2]
SERVICE_NAMESPACE = "monitoring"
"""Where the rendered Role, the Lease and the progress ConfigMaps are."""
GROUP_VERSION = "observability.ethos.io/v1alpha1"
MA_PATH = "/apis/observability.ethos.io/v1alpha1/namespaces/{ns}/metricaccesses"
STATE_SELECTOR = "app.kubernetes.io/component=remote-write-state"
STEP_TIMEOUT_S = 30.0
TENANT_USER = USERS["alice"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ScenarioNames:
    """The names one run uses, so that runs on one API server never meet."""

    run: str

    @property
    def tenant_a(self) -> str:
        return f"{self.run}-tenant-a"

    @property
    def tenant_b(self) -> str:
        return f"{self.run}-tenant-b"

    @property
    def backends(self) -> str:
        return f"{self.run}-prometheus"

    @property
    def lease(self) -> str:
        return f"{self.run}-lease"


@dataclass(slots=True)
class Outcome:
    """What a run saw, for the test's messages."""

    calls: list[Call] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)
    """Seconds each step took."""


def write_kubeconfig(path: Path, *, server: str, token: str) -> Path:
    """A kubeconfig naming ``server`` (the recorder, plain HTTP on loopback) and a bearer token."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "recorded", "cluster": {"server": server}}],
        "users": [{"name": "service", "user": {"token": token}}],
        "contexts": [{"name": "recorded", "context": {"cluster": "recorded", "user": "service"}}],
        "current-context": "recorded",
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


def service_config(names: ScenarioNames) -> dict[str, Any]:
    """The shipped config, widened to every API the code can call, with test-sized intervals."""
    config: dict[str, Any] = copy.deepcopy(yaml.safe_load((REPO / "config" / "manager" / "config.yaml").read_text()))
    config["discovery"]["kubernetes"] = {
        "namespaces": [],
        "label_selectors": {"app.kubernetes.io/name": "prometheus", "mtproxy-test/run": names.run},
        "port": "web",
        "resource_types": ["Service", "Pod", "Endpoints", "EndpointSlice"],
    }
    config["discovery"]["health_check_interval"] = "1s"
    config["tenants"] = {"watch_all_namespaces": True, "status_interval": "2s"}
    config["remote_write"].update({"default_interval": "5s", "safety_delay": "1s"})
    config["guardrails"]["remote_write_url_allowlist"] = ["http://127.0.0.1:"]
    assert config["auth"]["type"] == "kubernetes", "the shipped config's auth type changed: revisit this scenario"
    return config


class _Admin:
    """The administrator's REST calls (async, on the real server directly)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, method: str, path: str, *, body: Any = None, ok: tuple[int, ...] = (),
                   content_type: str = "application/json") -> dict[str, Any]:
        headers = {"Content-Type": content_type} if body is not None else {}
        response = await self.http.request(method, path, json=body, headers=headers)
        if response.is_error and response.status_code not in ok:
            raise AssertionError(f"admin {method} {path}: {response.status_code} {response.text[:512]}")
        answer: dict[str, Any] = response.json() if response.content else {}
        return answer

    async def ensure_namespace(self, name: str) -> None:
        await self.call("POST", "/api/v1/namespaces", body={"metadata": {"name": name}}, ok=(409,))

    async def metricaccess(self, namespace: str, name: str) -> dict[str, Any]:
        return await self.call("GET", f"{MA_PATH.format(ns=namespace)}/{name}")


def _conditions(document: Mapping[str, Any]) -> dict[str, tuple[Any, Any, Any]]:
    """type -> (status, reason, observedGeneration)."""
    return {c["type"]: (c.get("status"), c.get("reason"), c.get("observedGeneration"))
            for c in (document.get("status") or {}).get("conditions") or () if isinstance(c, dict)}


async def _eventually(check: Callable[[], Awaitable[T | None]], *, what: str, explain: Callable[[], str],
                      timeout_s: float = STEP_TIMEOUT_S) -> T:
    last: T | None = None
    with trio.move_on_after(timeout_s):
        while True:
            last = await check()
            if last is not None and last is not False:
                return last
            await trio.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout_s:g} s (last: {last!r})\n{explain()}")


def _metricaccess(namespace: str, name: str, *, metrics: list[str], isolation: bool = True,
                  remote_write: Mapping[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"source": namespace, "metricIsolation": isolation, "metrics": metrics}
    if remote_write is not None:
        spec["remoteWrite"] = {"enabled": True, "interval": "5s", "target": {"type": "remote_write"},
                               "remoteWrite": dict(remote_write)}
    return {"apiVersion": GROUP_VERSION, "kind": "MetricAccess",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


async def _seed(admin: _Admin, names: ScenarioNames, infra: ServerProcess) -> None:
    for namespace in (SERVICE_NAMESPACE, names.tenant_a, names.tenant_b, names.backends):
        await admin.ensure_namespace(namespace)
    labels = {"app.kubernetes.io/name": "prometheus", "mtproxy-test/run": names.run}
    pods = f"/api/v1/namespaces/{names.backends}/pods"
    await admin.call("POST", pods, body={
        "metadata": {"name": "prometheus-0", "labels": labels},
        "spec": {"containers": [{"name": "prometheus", "image": "prom/prometheus",
                                 "ports": [{"name": "web", "containerPort": infra.port}]}]},
    })
    await admin.call("PATCH", f"{pods}/prometheus-0/status", content_type="application/merge-patch+json", body={
        "status": {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}})
    # A user allowed to read tenant A's metrics through the proxy (what auth.type kubernetes asks)
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    rule = {"apiGroups": ["observability.ethos.io"], "resources": ["metricaccesses"], "verbs": ["get"]}
    await admin.call("POST", f"{rbac}/namespaces/{names.tenant_a}/roles",
                     body={"metadata": {"name": "metrics-reader"}, "rules": [rule]}, ok=(409,))
    await admin.call("POST", f"{rbac}/namespaces/{names.tenant_a}/rolebindings", ok=(409,), body={
        "metadata": {"name": "metrics-reader"},
        "subjects": [{"kind": "User", "name": TENANT_USER.name, "apiGroup": "rbac.authorization.k8s.io"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "metrics-reader"}})


def _recorded(recorder: RecordingProxy, method: str, fragment: str) -> bool:
    return any(c.method == method and fragment in c.path for c in recorder.calls)


async def run_scenario(
    *,
    server: RunningKubeApiserver,
    recorder: RecordingProxy,
    kubeconfig: Path,
    names: ScenarioNames,
    infra: ServerProcess,
    tenant: ServerProcess,
    workdir: Path,
) -> Outcome:
    """Run the service through the scenario of the module docstring; fail on any step not reached."""
    outcome = Outcome()
    process = MtproxyProcess(f"mtproxy-{names.run}", workdir / "mtproxy", service_config(names))
    process.argv_prefix = [
        str(MTPROXY_BINARY), "--kubeconfig", str(kubeconfig),
        "--leader-election-id", names.lease, "--leader-election-namespace", SERVICE_NAMESPACE,
        "--leader-election-lease-duration", "6", "--leader-election-renew-deadline", "4",
        "--leader-election-retry-period", "1",
    ]

    def explain() -> str:
        calls = "\n".join(f"  {c.status} {c.method} {c.path}" for c in recorder.calls[-25:])
        return f"last calls:\n{calls}\n--- {process.name} log ---\n{process.log_tail(3000)}"

    admin_http = httpx.AsyncClient(base_url=server.url, verify=server.ssl_context(), trust_env=False, timeout=30.0,
                                   headers={"Authorization": f"Bearer {ADMIN.token}"})
    async with admin_http:
        admin = _Admin(admin_http)
        await _seed(admin, names, infra)
        a, b = names.tenant_a, names.tenant_b
        started = time.monotonic()

        def step(name: str) -> None:
            nonlocal started
            outcome.steps[name] = round(time.monotonic() - started, 2)
            started = time.monotonic()

        try:
            await trio.to_thread.run_sync(lambda: process.start(timeout_s=60.0))
            step("ready")

            async def ma_condition(namespace: str, name: str, kind: str, status: str, reason: str | None = None,
                                   generation: int | None = None) -> dict[str, Any] | None:
                document = await admin.metricaccess(namespace, name)
                found = _conditions(document).get(kind)
                wanted_generation = generation or document["metadata"].get("generation")
                if found is None or found[0] != status or (reason is not None and found[1] != reason):
                    return None
                return document if found[2] == wanted_generation else None

            # 2. remote write to a loopback receiver, until Ready
            await admin.call("POST", MA_PATH.format(ns=a), body=_metricaccess(
                a, "forward", metrics=["up"], remote_write={"url": f"{tenant.url}/api/v1/write"}))
            await _eventually(lambda: ma_condition(a, "forward", "Ready", "True"), what="forward Ready=True",
                              explain=explain)
            await _eventually(lambda: _awaitable(_recorded(recorder, "PUT", "/configmaps/")),
                              what="a progress ConfigMap updated", explain=explain)
            await _eventually(lambda: _awaitable(_recorded(recorder, "GET", f"/namespaces/{a}/metricaccesses/")),
                              what="the status writer's read after the injected conflict", explain=explain)
            step("forwarding")

            # 3. a missing Secret
            await admin.call("POST", MA_PATH.format(ns=a), body=_metricaccess(
                a, "secretless", metrics=["up"],
                remote_write={"url": f"{tenant.url}/api/v1/write",
                              "bearerTokenSecret": {"name": "absent", "key": "token"}}))
            await _eventually(lambda: ma_condition(a, "secretless", "Forwarding", "False", "SecretUnavailable"),
                              what="secretless Forwarding=False/SecretUnavailable", explain=explain)
            step("missing-secret")

            # 4. denied by the guardrails, with its Warning Event
            await admin.call("POST", MA_PATH.format(ns=b), body=_metricaccess(b, "denied", metrics=["up"],
                                                                             isolation=False))
            await _eventually(lambda: ma_condition(b, "denied", "Valid", "False", "PolicyDenied"),
                              what="denied Valid=False/PolicyDenied", explain=explain)

            async def denied_event() -> bool:
                events = await admin.call("GET", f"/apis/events.k8s.io/v1/namespaces/{b}/events")
                return any((e.get("regarding") or {}).get("name") == "denied" and e.get("reason") == "PolicyDenied"
                           for e in events.get("items") or ())

            await _eventually(denied_event, what="a PolicyDenied Event about denied", explain=explain)
            step("denied")

            # 5. an edit: a new generation, Ready again
            edited = await admin.call("PATCH", f"{MA_PATH.format(ns=a)}/forward",
                                      content_type="application/merge-patch+json",
                                      body={"spec": {"metrics": ["up", "prometheus_build_info"]}})
            generation = int(edited["metadata"]["generation"])
            await _eventually(lambda: ma_condition(a, "forward", "Ready", "True", generation=generation),
                              what=f"forward Ready=True at generation {generation}", explain=explain)
            step("edited")

            # 6. a tenant query, authenticated by TokenReview and authorised by SubjectAccessReview
            async with httpx.AsyncClient(base_url=process.url, trust_env=False, timeout=30.0) as tenant_http:
                answer = await tenant_http.get("/api/v1/query", params={"query": "up"}, headers={
                    "Authorization": f"Bearer {TENANT_USER.token}", "X-Tenant-Namespace": a})
                assert answer.status_code == 200, f"tenant query: {answer.status_code} {answer.text[:512]}\n{explain()}"
                refused = await tenant_http.get("/api/v1/query", params={"query": "up"}, headers={
                    "Authorization": f"Bearer {USERS['nobody'].token}", "X-Tenant-Namespace": a})
                assert refused.status_code == 403, f"a user without access: {refused.status_code}\n{explain()}"
            step("tenant-query")

            # 7. every object deleted: the jobs go, and so do their progress ConfigMaps
            for namespace, name in ((a, "forward"), (a, "secretless"), (b, "denied")):
                await admin.call("DELETE", f"{MA_PATH.format(ns=namespace)}/{name}")

            async def no_state_left() -> bool:
                found = await admin.http.get(f"/api/v1/namespaces/{SERVICE_NAMESPACE}/configmaps",
                                             params={"labelSelector": STATE_SELECTOR})
                items = found.json().get("items") or []
                ours = [i for i in items
                        if any(str(v).startswith(f"{a}/") for v in (i["metadata"].get("annotations") or {}).values())]
                return not ours and _recorded(recorder, "DELETE", "/configmaps/")

            await _eventually(no_state_left, what="the progress ConfigMaps deleted", explain=explain)
            step("deleted")
        finally:
            # 8. SIGTERM: the elector releases the Lease on the way out
            await trio.to_thread.run_sync(process.stop)
        step("stopped")
        lease = await admin.call("GET", f"/apis/coordination.k8s.io/v1/namespaces/{SERVICE_NAMESPACE}/leases/"
                                        f"{names.lease}")
        assert not (lease.get("spec") or {}).get("holderIdentity"), f"Lease not released: {lease.get('spec')}"
    outcome.calls = list(recorder.calls)
    return outcome


async def _awaitable(value: bool) -> bool:
    await trio.lowlevel.checkpoint()
    return value
