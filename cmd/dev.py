"""``mtproxy dev`` (``make dev``): the whole system in Kubernetes mode on loopback, with a live console.

One trio nursery runs, in this order of start (and the reverse order of stop):

1. a Kubernetes API server: the embedded double (``--kube=double``, the default) or etcd
   and kube-apiserver from ``make testbin`` (``--kube=real``), with the MetricAccess CRD
   registered, the service's own namespace created and a kubeconfig at ``.dev/kubeconfig``;
2. the demo servers (:mod:`mtproxy.cmd.devstack`), started alongside the API server;
3. the objects of ``examples/dev`` applied, and applied again on every edit
   (:mod:`mtproxy.cmd.devapply`);
4. the service itself (``open_service``) in Kubernetes mode, with leader election, status
   writing and forwarding on (:mod:`mtproxy.cmd.devconfig`);
5. the console (:mod:`mtproxy.cmd.console`), or plain JSON lines when stdout is not a
   terminal or with ``--no-console``.

``q`` (console) or Ctrl-C/SIGTERM stops the service first (its graceful drain), then
everything else; every child process is stopped and the run's work directory
(``.dev/run-*``: Prometheus data, the real API server's etcd) removed. Problems a newcomer
meets are one line each, before anything starts: a port in use (named, exit 1), the
objects directory missing, ``--kube=real`` without ``make testbin``. Missing Prometheus
binaries are named with the command that installs them, and the rest runs without them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from mtproxy.cmd.console import run_console, run_plain
from mtproxy.cmd.devapply import DirectoryApplier
from mtproxy.cmd.devconfig import LEASE_NAMESPACE, dev_config
from mtproxy.cmd.devkube import DevCluster, find_kubectl, prepare_cluster, run_double
from mtproxy.cmd.devlogs import LogTail, configure_dev_logging
from mtproxy.cmd.devports import DEFAULT_BASE_PORT, LOOPBACK, DevPorts, first_port_in_use, plan_ports
from mtproxy.cmd.devprobe import BackendProbe
from mtproxy.cmd.devprocess import ChildFailed
from mtproxy.cmd.devrequests import RecentRequests
from mtproxy.cmd.devsnapshot import DevInfo, SnapshotReader
from mtproxy.cmd.devstack import APT_PACKAGES, DemoStack, missing_binaries
from mtproxy.cmd.service import ServiceOptions, open_service
from mtproxy.controller import KubeClient, load_cluster_config, open_http_client

__all__ = ["DEMO_TENANTS", "DevOptions", "dev_commands", "run_dev"]

logger = logging.getLogger(__name__)

DEMO_TENANTS = ("team-a", "team-b")
"""The tenants of ``examples/dev``: each gets a Prometheus of its own."""
_STOP_GRACE_S = 15.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DevOptions:
    """The flags of ``mtproxy dev``."""

    port: int = 8080
    base_port: int = DEFAULT_BASE_PORT
    kube: str = "double"
    console: bool = True
    """False: plain log lines even on a terminal (``--no-console``)."""
    log_level: str = "info"
    objects_dir: Path = Path("examples/dev")
    state_dir: Path = Path(".dev")


def _shown(path: Path) -> str:
    """``path`` as a user types it from the current directory."""
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    return str(path)


def _mtproxy_command() -> str:
    script = Path(sys.argv[0])
    if script.name in ("mtproxy", "prometheus-multi-tenant-proxy") and script.exists():
        return _shown(script)
    return _shown(Path(sys.executable).parent / "mtproxy")


def dev_commands(
    ports: DevPorts, *, kubeconfig: str, objects_dir: str, mtproxy: str, kubectl: str | None
) -> tuple[str, ...]:
    """The footer's commands, each working as printed from the current directory."""
    base = f"http://{LOOPBACK}:{ports.proxy}"
    commands = [
        f"curl -g -H 'X-Tenant-Namespace: team-a' '{base}/api/v1/query?query=sum(rate(http_requests_total[1m]))'",
        f"curl -g -H 'X-Tenant-Namespace: team-b' '{base}/api/v1/series?match[]=http_requests_total'",
        f"curl -g -H 'X-Tenant-Namespace: team-c' '{base}/api/v1/query?query=up'   # 403: no MetricAccess",
    ]
    first = next(iter(ports.tenant_prometheus.items()), None)
    if first is not None:
        tenant, port = first
        commands.append(
            f"curl -g 'http://{LOOPBACK}:{port}/api/v1/query?query=http_requests_total'   # {tenant}'s own Prometheus"
        )
    access = shlex.quote(f"{objects_dir}/tenants/team-b.yaml")
    commands.append(f"{mtproxy} enforce --namespace team-b --access {access} 'sum(http_requests_total)'")
    if kubectl is not None:
        commands.append(f"{kubectl} --kubeconfig {shlex.quote(kubeconfig)} get ma -A")
    else:
        commands.append(f"# kubectl not found: install kubectl (or run make testbin) to try: "
                        f"kubectl --kubeconfig {kubeconfig} get ma -A")
    return tuple(commands)


def _missing_message(missing: Sequence[str]) -> str:
    packages = " ".join(APT_PACKAGES[binary] for binary in missing)
    return (
        f"{' and '.join(missing)} not found: the demo servers need them; install with: "
        f"sudo apt-get install -y {packages}   (running the proxy, API server and controllers without them)"
    )


@contextlib.asynccontextmanager
async def _open_kube(cluster: DevCluster) -> AsyncIterator[KubeClient]:
    config = load_cluster_config(str(cluster.kubeconfig))
    async with open_http_client(config, timeout_s=10.0) as http:
        yield KubeClient(http, config=config)


class _Run:
    """One run of ``mtproxy dev``: the parts, and the stop request."""

    def __init__(self, options: DevOptions, ports: DevPorts, workdir: Path, *, missing: tuple[str, ...],
                 tail: LogTail | None, requests: RecentRequests) -> None:
        self.options = options
        self.ports = ports
        self.workdir = workdir
        self.missing = missing
        self.tail = tail
        self.requests = requests
        self.kubeconfig = options.state_dir / "kubeconfig"
        self.stop = trio.Event()
        self.started = False
        self.failure: str | None = None

    async def watch_signals(self, root: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                logger.info("dev stopping", extra={"signal": signal.Signals(signum).name})
                if self.stop.is_set() or not self.started:
                    root.cancel(reason="signal received")  # a second signal, or still starting: at once
                self.stop.set()

    def notes(self) -> list[str]:
        notes = [_missing_message(self.missing)] if self.missing else []
        if self.tail is not None:
            notes.extend(self.tail.lines())
        return notes

    async def run(self) -> None:
        async with trio.open_nursery() as root:
            root.start_soon(self.watch_signals, root.cancel_scope)
            stack = DemoStack(self.ports, self.workdir / "demo", missing=self.missing)
            root.start_soon(stack.run)
            if self.options.kube == "real":
                from mtproxy.cmd.devrealkube import run_real

                cluster = await root.start(run_real, self.ports, self.workdir / "kube", self.kubeconfig)
            else:
                cluster = await root.start(run_double, self.ports.apiserver, self.kubeconfig)
            async with _open_kube(cluster) as kube:
                await prepare_cluster(kube, namespaces=[LEASE_NAMESPACE])
                applier = DirectoryApplier(kube, self.options.objects_dir)
                await self.run_service(kube, cluster, stack, applier)
            root.cancel_scope.cancel(reason="dev stopped")

    async def run_service(self, kube: KubeClient, cluster: DevCluster, stack: DemoStack,
                          applier: DirectoryApplier) -> None:
        options = ServiceOptions(
            host=LOOPBACK,
            port=self.ports.proxy,
            kubeconfig=str(cluster.kubeconfig),
            leader_elect=True,
            leader_election_namespace=LEASE_NAMESPACE,
            handle_signals=False,
            identity=f"mtproxy-dev-{os.getpid()}",
        )
        async with open_service(dev_config(self.ports), options) as service:
            probe = BackendProbe(lambda: [target.url for target in service.pool.targets()])
            info = DevInfo(
                proxy_url=f"http://{LOOPBACK}:{self.ports.proxy}",
                kube_kind=cluster.kind,
                kube_url=cluster.url,
                kubeconfig=_shown(cluster.kubeconfig),
                objects_dir=_shown(self.options.objects_dir),
                commands=dev_commands(
                    self.ports,
                    kubeconfig=_shown(cluster.kubeconfig),
                    objects_dir=_shown(self.options.objects_dir),
                    mtproxy=_mtproxy_command(),
                    kubectl=find_kubectl(),
                ),
                started_at=time.time(),
            )
            reader = SnapshotReader(service=service, info=info, requests=self.requests, probe=probe, stack=stack,
                                    applier=applier, notes=self.notes)
            service_done = trio.Event()

            async def serve(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                try:
                    await service.run(task_status=task_status)
                finally:
                    service_done.set()

            async with trio.open_nursery() as front:
                await front.start(applier.run)
                await front.start(probe.run)
                if self.tail is not None:
                    front.start_soon(self.console_then_stop, reader)
                await front.start(serve)
                self.started = True
                self.print_ready(info, stack)
                if self.tail is None:
                    front.start_soon(partial(run_plain, reader.read, out=sys.stdout))
                await self.stop.wait()
                service.manager.stop()
                with trio.move_on_after(_STOP_GRACE_S):
                    await service_done.wait()
                front.cancel_scope.cancel(reason="dev stopped")

    async def console_then_stop(self, reader: SnapshotReader) -> None:
        await run_console(reader.read)
        self.stop.set()

    def print_ready(self, info: DevInfo, stack: DemoStack) -> None:
        if self.tail is not None:
            return
        record = {
            "level": "info",
            "msg": "mtproxy dev ready",
            "proxy": info.proxy_url,
            "kube": {"kind": info.kube_kind, "url": info.kube_url, "kubeconfig": info.kubeconfig},
            "servers": dict(stack.urls),
            "tenant_prometheus": {t: f"http://{LOOPBACK}:{p}" for t, p in self.ports.tenant_prometheus.items()},
            "pushgateway": f"http://{LOOPBACK}:{self.ports.pushgateway}",
            "commands": list(info.commands),
        }
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


def _start_problem(exc: BaseException) -> str | None:
    """The one line for a failure a user can act on (a server that did not start), else None."""
    if isinstance(exc, BaseExceptionGroup):
        found = [_start_problem(inner) for inner in exc.exceptions]
        return next((line for line in found if line is not None), None)
    if isinstance(exc, ChildFailed):
        return str(exc)
    if isinstance(exc, trio.TooSlowError):
        return "the API server did not serve the MetricAccess CRD within 30 s"
    return None


def run_dev(options: DevOptions) -> int:
    """Run ``mtproxy dev`` until ``q``, Ctrl-C or SIGTERM; returns the exit status."""
    err = sys.stderr
    if not options.objects_dir.is_dir():
        print(f"mtproxy dev: {options.objects_dir} is not a directory; run from the repository root "
              "or name the objects to apply with --objects DIR", file=err)
        return 1
    if options.kube == "real":
        from mtproxy.cmd.devrealkube import real_binaries

        if real_binaries() is None:
            print("mtproxy dev --kube=real: etcd and kube-apiserver are not built; run: make testbin "
                  "(or use the embedded API server: mtproxy dev --kube=double)", file=err)
            return 1
    try:
        ports = plan_ports(options.port, base_port=options.base_port, tenants=DEMO_TENANTS)
    except ValueError as exc:
        print(f"mtproxy dev: {exc}", file=err)
        return 2
    in_use = first_port_in_use(ports, skip=() if options.kube == "real" else ("etcd",))
    if in_use is not None:
        print(in_use.message(), file=err)
        return 1
    missing = tuple(missing_binaries())
    if missing:
        print(f"mtproxy dev: {_missing_message(missing)}", file=err)
    use_console = options.console and sys.stdout.isatty()
    options.state_dir.mkdir(parents=True, exist_ok=True)
    requests = RecentRequests()
    tail = configure_dev_logging(
        options.log_level, requests=requests, log_file=options.state_dir / "dev.log" if use_console else None
    )
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=options.state_dir))
    if use_console:
        print(f"mtproxy dev: starting the {options.kube} API server, the demo servers and the service "
              f"(log: {_shown(options.state_dir / 'dev.log')})", flush=True)
    run = _Run(options, ports, workdir, missing=missing, tail=tail, requests=requests)
    status = 0
    try:
        trio.run(run.run)
    except KeyboardInterrupt:
        pass
    except BaseException as exc:
        problem = _start_problem(exc)
        if problem is None:
            raise
        print(f"mtproxy dev: {problem}", file=err)
        status = 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if use_console:
        print(f"mtproxy dev stopped (its log: {_shown(options.state_dir / 'dev.log')})")
    return status

