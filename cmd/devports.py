"""Which loopback port each part of ``mtproxy dev`` listens on, and whether it is free.

Every part of the demo gets a port on 127.0.0.1 before anything starts, so a port that
is taken is found first and named in one line (instead of a server dying later with a
traceback). The proxy's port is ``--port``; the others follow ``--base-port`` in a fixed
order (infrastructure Prometheus first, so the default 19090 stays where the README says),
or, with ``--base-port 0``, are free ports chosen at random (what the tests use, so that
two runs never collide). A free port chosen here can in principle be taken by someone else
before the server binds it; the server then fails with its own message.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["DEFAULT_BASE_PORT", "LOOPBACK", "DevPorts", "PortInUse", "first_port_in_use", "plan_ports"]

LOOPBACK = "127.0.0.1"
DEFAULT_BASE_PORT = 19090


@dataclass(frozen=True, slots=True, kw_only=True)
class DevPorts:
    """The port of every part, all on :data:`LOOPBACK`."""

    proxy: int
    infra_prometheus: int
    exporter: int
    pushgateway: int
    apiserver: int
    etcd: int
    """Only used with ``--kube=real``."""
    tenant_prometheus: Mapping[str, int] = field(default_factory=dict)
    """Tenant namespace to the port of its own Prometheus (the remote-write receiver)."""

    def roles(self) -> list[tuple[str, int]]:
        """(role, port) of every part, in start order; the role names the flag that moves it."""
        roles = [
            ("the proxy (--port)", self.proxy),
            ("the infrastructure Prometheus (--base-port)", self.infra_prometheus),
            ("the demo exporter (--base-port + 1)", self.exporter),
            ("the Pushgateway (--base-port + 2)", self.pushgateway),
            ("the Kubernetes API server (--base-port + 3)", self.apiserver),
            ("etcd (--base-port + 4)", self.etcd),
        ]
        for offset, (tenant, port) in enumerate(self.tenant_prometheus.items(), 5):
            roles.append((f"the Prometheus of {tenant} (--base-port + {offset})", port))
        return roles


@dataclass(frozen=True, slots=True, kw_only=True)
class PortInUse:
    """A port something else holds."""

    role: str
    port: int

    def message(self) -> str:
        """The one line ``mtproxy dev`` prints."""
        return (
            f"mtproxy dev: port {self.port} on {LOOPBACK}, wanted for {self.role}, is in use "
            "(another mtproxy dev?); stop what holds it or choose another port"
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def plan_ports(proxy_port: int, *, base_port: int, tenants: Sequence[str]) -> DevPorts:
    """Ports for ``tenants`` and every other part.

    Args:
        proxy_port: ``--port``; 0 picks a free one.
        base_port: the first of the demo's consecutive ports; 0 picks a free port for each.

    Raises:
        ValueError: a port outside 0..65535, or a base so high the last port would be.
    """
    if not 0 <= proxy_port <= 65535:
        raise ValueError(f"--port: must be between 0 and 65535, got {proxy_port}")
    count = 5 + len(tenants)
    if base_port != 0 and not 1 <= base_port <= 65536 - count:
        raise ValueError(f"--base-port: must be 0 or between 1 and {65536 - count}, got {base_port}")
    ports = [_free_port() for _ in range(count)] if base_port == 0 else list(range(base_port, base_port + count))
    return DevPorts(
        proxy=proxy_port or _free_port(),
        infra_prometheus=ports[0],
        exporter=ports[1],
        pushgateway=ports[2],
        apiserver=ports[3],
        etcd=ports[4],
        tenant_prometheus=dict(zip(tenants, ports[5:], strict=True)),
    )


def _in_use(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers themselves bind: a port left in TIME_WAIT by a previous run is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
        with contextlib.suppress(OSError):
            probe.listen(1)
        return False


def first_port_in_use(ports: DevPorts, *, skip: Sequence[str] = ()) -> PortInUse | None:
    """The first port of ``ports`` that cannot be bound, or None; roles starting with ``skip`` are not checked."""
    for role, port in ports.roles():
        if any(role.startswith(prefix) for prefix in skip):
            continue
        if _in_use(port):
            return PortInUse(role=role, port=port)
    return None
