"""What the Kubernetes-mode acceptance tests drive: the source, the cluster, the replicas.

Every scenario runs twice, on the API double and on a real kube-apiserver (``api_server_kind``,
see ``tests/conftest.py``), with real Prometheus servers around the real ``mtproxy`` command:

- one *source* for the whole session (:class:`Source`): a Pushgateway that a thread of its
  own (:class:`SourceThread`, the remote-write suite's ``SourceDriver`` in its own
  ``trio.run``) updates twice a second, and an infrastructure Prometheus scraping it every
  second, so each namespace a test registers has ``e2e_gauge`` (3 series) and
  ``e2e_requests_total`` (2 series) labelled ``job="src", namespace=<ns>, series=<i>``,
  whose every sample is new;
- one *cluster* per server kind (:class:`Cluster`): the server, an administrator's kubeconfig,
  and kubectl (the built one for the real server, the built one or the one on ``PATH`` for
  the double), with the ``monitoring`` namespace the service keeps its Lease and its
  remote-write progress in;
- per test, fresh tenant Prometheus servers (``tenant_prometheus_factory``), fresh namespaces,
  and the mtproxy processes of :class:`Replicas`, stopped when the test ends.

Tests are isolated from each other (and from other suites on the shared real server) by
namespaces: each test's mtproxy watches only its own (``tenants.watch_namespaces``) and
elects its leader on a Lease of its own name. The helpers are async (kubectl runs through
``trio.run_process``, servers start in worker threads), so the service and the source keep
running while a test waits.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trio
import yaml
from realservers import MtproxyProcess, ServerProcess
from realservers.mtproxy import MTPROXY_BINARY
from realservers.testbin import Program, in_ci, locate
from remotewrite.e2e.source import SourceDriver

__all__ = [
    "INTERVAL_S",
    "LEASE_DURATION_S",
    "MONITORING",
    "SAFETY_DELAY_S",
    "SCRAPE_S",
    "STATUS_INTERVAL_S",
    "Cluster",
    "Replicas",
    "Source",
    "SourceThread",
    "eventually",
    "kubectl_for_double",
]

INTERVAL_S = 5
"""Every MetricAccess' ``remoteWrite.interval`` (the shortest the API allows)."""
STATUS_INTERVAL_S = 2
"""``tenants.status_interval``: counters are written back at most this often."""
SAFETY_DELAY_S = 2
"""``remote_write.safety_delay``: how far behind now a cycle reads."""
SCRAPE_S = 1
"""The infrastructure Prometheus' scrape interval of the source."""
LEASE_DURATION_S = 6.0
"""The Lease timing of the replicas (hidden flags; the defaults are 15/10/2 s)."""
RENEW_DEADLINE_S = 4.0
RETRY_PERIOD_S = 1.0
MONITORING = "monitoring"
"""The service's own namespace (the default ``--leader-election-namespace``)."""

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.25,
    explain: Callable[[], str] | None = None,
) -> tuple[T, float]:
    """Poll ``check`` until it returns something other than None (or False); that value and the seconds it took.

    Raises:
        AssertionError: not within ``timeout_s``; the message names ``what`` and the last value seen.
    """
    started = trio.current_time()
    last: Any = None
    with trio.move_on_after(timeout_s):
        while True:
            last = await check()
            if last is not None and last is not False:
                return last, trio.current_time() - started
            await trio.sleep(interval_s)
    detail = f"\n{explain()}" if explain is not None else ""
    raise AssertionError(f"{what}: not within {timeout_s:g} s (last: {last!r}){detail}")


# -- the source ---------------------------------------------------------------------------------------


class SourceThread:
    """A :class:`SourceDriver` pushing in a thread of its own, for the whole session.

    Its methods are blocking and thread-safe: each runs inside the driver's own trio loop.
    Call them from a trio test through ``trio.to_thread.run_sync`` (:class:`Source` does).
    """

    def __init__(self, pushgateway_url: str) -> None:
        self._url = pushgateway_url
        self._token: trio.lowlevel.TrioToken | None = None
        self._driver: SourceDriver | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="e2e-source", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the source driver did not start within 30 s")
        if self._error is not None:
            raise RuntimeError("the source driver failed to start") from self._error

    def _main(self) -> None:
        try:
            trio.run(self._run)
        except BaseException as exc:  # reported by start(), or by errors() at the end
            self._error = exc
            self._ready.set()

    async def _run(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http, trio.open_nursery() as nursery:
            self._driver = SourceDriver(http, self._url)
            await nursery.start(self._driver.run)
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def _call(self, function: Callable[..., T], *args: Any) -> T:
        assert self._token is not None
        return trio.from_thread.run_sync(function, *args, trio_token=self._token)

    def add_namespace(self, namespace: str) -> None:
        """Start pushing ``namespace``'s series (3 gauges, 2 counters)."""
        assert self._driver is not None
        self._call(self._driver.add_namespace, namespace)

    def remove_namespace(self, namespace: str) -> None:
        """Delete ``namespace``'s group: its series go stale at the next scrape and never change again."""
        assert self._driver is not None and self._token is not None
        trio.from_thread.run(self._driver.remove_namespace, namespace, trio_token=self._token)

    def errors(self) -> list[str]:
        assert self._driver is not None
        return list(self._driver.errors)

    def stop(self) -> None:
        if self._token is not None and self._stop is not None and self._thread.is_alive():
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(10)


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """The session's infrastructure Prometheus and what feeds it."""

    infra: ServerProcess
    pushgateway: ServerProcess
    driver: SourceThread

    async def add_namespace(self, namespace: str) -> None:
        """Start pushing ``namespace``'s series, and wait until the infrastructure Prometheus has them all."""
        await trio.to_thread.run_sync(self.driver.add_namespace, namespace)
        wanted = frozenset(label_set(labels) for labels in source_series(namespace))
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:

            async def scraped() -> bool:
                return await series(http, self.infra.url, f'{{__name__=~"e2e_.*",namespace="{namespace}"}}') == wanted

            await eventually(scraped, timeout_s=15, what=f"the source scraped {namespace}'s series")

    async def remove_namespace(self, namespace: str) -> None:
        await trio.to_thread.run_sync(self.driver.remove_namespace, namespace)


# -- the cluster ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Cluster:
    """One API server (the double or a real one) as kubectl and mtproxy see it."""

    kind: str
    server: Any
    """The ``KubeServer`` (``RunningDouble`` or ``RunningKubeApiserver``)."""
    kubeconfig: Path
    """The administrator's kubeconfig, for kubectl and for mtproxy."""
    kubectl_binary: str
    workdir: Path
    created: list[str] = field(default_factory=list)
    """Namespaces created by the current test (emptied by the ``replicas`` fixture's teardown)."""

    async def kubectl(self, *args: str, check: bool = True, timeout_s: float = 60.0,
                      stdin: bytes | None = None) -> tuple[int, str, str]:
        """Run kubectl; (return code, stdout, stderr). ``check``: fail the test on a non-zero code."""
        command = [self.kubectl_binary, f"--kubeconfig={self.kubeconfig}",
                   f"--cache-dir={self.workdir / 'kubectl-cache'}", *args]
        with trio.fail_after(timeout_s + 10):
            completed = await trio.run_process(command, stdin=stdin or b"", capture_stdout=True,
                                               capture_stderr=True, check=False)
        out, err = completed.stdout.decode(), completed.stderr.decode()
        if check and completed.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({completed.returncode}): {err}{out}")
        return completed.returncode, out, err

    async def apply(self, *documents: Mapping[str, Any]) -> None:
        """``kubectl apply -f -`` of the documents (client-side apply, as a user's first apply)."""
        text = yaml.safe_dump_all([dict(d) for d in documents], sort_keys=False)
        await self.kubectl("apply", "-f", "-", stdin=text.encode())

    async def create_namespace(self, prefix: str) -> str:
        """A namespace of a fresh name, e.g. ``e2e-a-1f2e3d``; its MetricAccess objects go at the test's end."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        await self.kubectl("create", "namespace", name)
        self.created.append(name)
        return name

    def delete_metricaccesses(self, namespaces: Sequence[str]) -> None:
        """Delete every MetricAccess of ``namespaces`` (blocking; for teardown).

        Namespaces themselves are left: a real server without a controller manager never
        finalises a deleted one, so its objects would stay for the rest of the session.
        """
        for namespace in namespaces:
            subprocess.run([self.kubectl_binary, f"--kubeconfig={self.kubeconfig}",
                            f"--cache-dir={self.workdir / 'kubectl-cache'}", "delete", "metricaccess", "--all",
                            "-n", namespace, "--wait=false"], capture_output=True, timeout=60, check=False)

    async def metricaccess(self, namespace: str, name: str) -> dict[str, Any]:
        """The object as stored, status included."""
        _, out, _ = await self.kubectl("get", "metricaccess", name, "-n", namespace, "-o", "json")
        document: dict[str, Any] = json.loads(out)
        return document

    async def events(self, namespace: str) -> list[dict[str, Any]]:
        """The namespace's Events through core/v1 (a real server shows events.k8s.io/v1 ones there too)."""
        _, out, _ = await self.kubectl("get", "events", "-n", namespace, "-o", "json")
        items: list[dict[str, Any]] = json.loads(out).get("items") or []
        return items

    async def table(self, *args: str) -> list[dict[str, str]]:
        """``kubectl get ARGS`` as one dict per row, keyed by column name.

        Cells are cut at the header's column offsets, since an empty cell prints as blanks.
        """
        _, out, _ = await self.kubectl("get", *args)
        lines = [line for line in out.splitlines() if line.strip()]
        if not lines:
            return []
        header, *rows = lines
        # Column names are separated by at least two spaces ("LAST WRITE" is one name).
        names = [name.strip() for name in header.split("  ") if name.strip()]
        starts: list[int] = []
        for name in names:
            starts.append(header.index(name, starts[-1] + 1 if starts else 0))
        ends: list[int | None] = [*starts[1:], None]
        return [{name: row[start:end].strip() for name, start, end in zip(names, starts, ends, strict=True)}
                for row in rows]


# -- the service ----------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Replicas:
    """The mtproxy processes of one test, all stopped when it ends.

    Every process of one test shares its namespaces, its config and its Lease (a name of the
    test's own): they are replicas of one deployment, run on one host. ``identity`` is passed
    as ``POD_NAME`` only when a test asks for it; by default ``POD_NAME`` is unset, so each
    process names itself as the service does outside a pod.
    """

    cluster: Cluster
    source: Source
    workdir: Path
    lease: str = field(default_factory=lambda: f"mtproxy-e2e-{uuid.uuid4().hex[:8]}")
    processes: list[MtproxyProcess] = field(default_factory=list)

    def config(
        self,
        *,
        namespaces: Sequence[str],
        aliases: Mapping[str, str] | None = None,
        unisolated: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The config file of the test's replicas."""
        return {
            "discovery": {"static": {"targets": [self.source.infra.url]}},
            "tenants": {
                "source": "kubernetes",
                "watch_namespaces": list(namespaces),
                "status_interval": f"{STATUS_INTERVAL_S}s",
            },
            "remote_write": {
                "enabled": True,
                "default_interval": f"{INTERVAL_S}s",
                "safety_delay": f"{SAFETY_DELAY_S}s",
                "host_aliases": dict(aliases or {}),
            },
            "auth": {"type": "none"},
            "proxy": {"enable_metrics": True},
            "guardrails": {
                "unisolated_namespaces": list(unisolated),
                "remote_write_url_allowlist": ["http://127.0.0.1:"],
            },
        }

    def add(self, name: str, config: Mapping[str, Any], *, identity: str | None = None) -> MtproxyProcess:
        """A replica (not started) with the test's Lease and the cluster's kubeconfig."""
        process = MtproxyProcess(name, self.workdir / name, config)
        # POD_NAME names a replica in a pod; without it (as here, unless asked) the service names itself
        prefix = ["env", f"POD_NAME={identity}"] if identity else ["env", "-u", "POD_NAME"]
        process.argv_prefix = [
            *prefix,
            str(MTPROXY_BINARY),
            "--kubeconfig", str(self.cluster.kubeconfig),
            "--leader-election-id", self.lease,
            "--leader-election-namespace", MONITORING,
            "--leader-election-lease-duration", str(LEASE_DURATION_S),
            "--leader-election-renew-deadline", str(RENEW_DEADLINE_S),
            "--leader-election-retry-period", str(RETRY_PERIOD_S),
        ]
        self.processes.append(process)
        return process

    async def start(self, process: MtproxyProcess, *, jobs: Sequence[str] = ()) -> float:
        """Start ``process`` and wait for ``/-/ready`` (and ``jobs`` to start); the seconds it took."""
        started = time.monotonic()
        await trio.to_thread.run_sync(lambda: process.start(jobs=jobs, timeout_s=60.0))
        return time.monotonic() - started

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()


def kubectl_for_double() -> str:
    """The kubectl the double's contract suite runs (on ``PATH``), else the built one."""
    found = shutil.which("kubectl")
    if found is not None:
        return found
    built = locate(Program.KUBECTL)
    if built.present:
        return str(built.path)
    reason = "kubectl is neither built (make testbin) nor on PATH"
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


# -- reading what the service did ------------------------------------------------------------------------


SeriesSet = frozenset[frozenset[tuple[str, str]]]
"""Label sets, comparable whatever the order."""


def label_set(labels: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def source_series(namespace: str, *, gauges: int = 3, counters: int = 2) -> list[dict[str, str]]:
    """The label sets of ``namespace``'s series as the infrastructure Prometheus holds them."""
    out = [{"__name__": "e2e_gauge", "job": "src", "namespace": namespace, "series": str(i)} for i in range(gauges)]
    out += [{"__name__": "e2e_requests_total", "job": "src", "namespace": namespace, "series": str(i)}
            for i in range(counters)]
    return out


async def query(
    http: httpx.AsyncClient, url: str, promql: str, *, tenant: str | None = None
) -> tuple[int, dict[str, Any]]:
    """An instant query at ``url`` (a Prometheus, or the proxy as ``tenant``): (HTTP status, body)."""
    headers = {"X-Tenant-Namespace": tenant} if tenant is not None else {}
    response = await http.get(f"{url}/api/v1/query", params={"query": promql}, headers=headers)
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {"raw": response.text[:512]}
    return response.status_code, body


async def series(http: httpx.AsyncClient, url: str, promql: str, *, tenant: str | None = None) -> SeriesSet:
    """The label sets an instant query returns (fails the test on an error answer)."""
    status, body = await query(http, url, promql, tenant=tenant)
    assert status == 200 and body.get("status") == "success", f"{promql!r} at {url} as {tenant}: {status} {body}"
    return frozenset(label_set(item["metric"]) for item in body["data"]["result"])


def conditions(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A MetricAccess' conditions by type."""
    status = document.get("status") or {}
    return {c["type"]: c for c in status.get("conditions") or () if isinstance(c, dict) and "type" in c}


def condition_summary(document: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    """type → (status, reason, observedGeneration), for messages and comparisons."""
    return {kind: (c.get("status"), c.get("reason"), c.get("observedGeneration"))
            for kind, c in conditions(document).items()}


def generations_agree(document: Mapping[str, Any]) -> bool:
    """Whether ``status.observedGeneration`` and every condition's equal ``metadata.generation``."""
    generation = (document.get("metadata") or {}).get("generation")
    found = conditions(document)
    status = document.get("status") or {}
    return bool(found) and status.get("observedGeneration") == generation and all(
        c.get("observedGeneration") == generation for c in found.values()
    )


def records(process: MtproxyProcess, message: str, *, current_run: bool = False) -> list[dict[str, Any]]:
    """``process``' JSON log records with ``msg == message`` (of its current run only, if asked)."""
    run = f"run-{process.runs}"
    return [r for r in process.records() if r.get("msg") == message and (not current_run or r["_run"] == run)]


def leading(process: MtproxyProcess) -> bool:
    """Whether the current run of ``process`` won the Lease and has not lost it since."""
    run = f"run-{process.runs}"
    state = False
    for record in process.records():
        if record["_run"] != run:
            continue
        if record.get("msg") == "leader election won":
            state = True
        elif record.get("msg") == "leader election lost":
            state = False
    return state and process.running


def log_tails(processes: Sequence[MtproxyProcess], nbytes: int = 3000) -> str:
    return "\n".join(f"--- {p.name} ---\n{p.log_tail(nbytes)}" for p in processes)


# -- objects ----------------------------------------------------------------------------------------------


def metricaccess(
    namespace: str,
    name: str,
    *,
    metrics: Sequence[str],
    isolation: bool = True,
    forward: Mapping[str, Any] | None = None,
    interval_s: int = INTERVAL_S,
) -> dict[str, Any]:
    """A MetricAccess; ``forward`` is its ``remoteWrite`` block without ``enabled`` and ``interval``."""
    spec: dict[str, Any] = {"source": namespace, "metricIsolation": isolation, "metrics": list(metrics)}
    if forward is not None:
        spec["remoteWrite"] = {"enabled": True, "interval": f"{interval_s}s", **forward}
    return {"apiVersion": "observability.ethos.io/v1alpha1", "kind": "MetricAccess",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def to_prometheus(**fields: Any) -> dict[str, Any]:
    """A ``remoteWrite`` block writing to the in-cluster ``prom`` service of the object's namespace."""
    return {"target": {"type": "prometheus"}, "prometheus": {"serviceName": "prom", "servicePort": 9090}, **fields}


def prometheus_alias(namespace: str) -> str:
    """The host ``to_prometheus`` writes to, which ``remote_write.host_aliases`` maps to a tenant server."""
    return f"prom.{namespace}.svc.cluster.local"


async def start_tenants(factory: Callable[[], ServerProcess], count: int) -> list[ServerProcess]:
    """``count`` tenant Prometheus servers, started side by side."""
    started: list[ServerProcess | None] = [None] * count

    async def one(index: int) -> None:
        started[index] = await trio.to_thread.run_sync(factory)

    async with trio.open_nursery() as nursery:
        for index in range(count):
            nursery.start_soon(one, index)
    return [server for server in started if server is not None]
