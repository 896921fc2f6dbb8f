"""prom-label-proxy, the Go peer a user would pick instead of mtproxy, on a loopback port.

Built by ``make testbin`` (:mod:`realservers.testbin`). It enforces one label (``namespace``
here) whose value comes from a request header, by injecting ``namespace="<value>"`` into
every selector of the query (``injectproxy`` in prometheus-community/prom-label-proxy). It
answers ``GET /healthz`` once listening, which is what :class:`ServerProcess` waits for.
"""

from __future__ import annotations

from pathlib import Path

from realservers.ports import LOOPBACK
from realservers.processes import ServerProcess
from realservers.testbin import Program, locate

__all__ = ["prom_label_proxy"]


def prom_label_proxy(
    workdir: Path,
    *,
    upstream: str,
    label: str = "namespace",
    header_name: str = "X-Tenant-Namespace",
    binary: Path | None = None,
) -> ServerProcess:
    """prom-label-proxy in front of ``upstream``, enforcing ``label`` from ``header_name``; not yet started.

    ``binary`` defaults to the cached build (use :func:`realservers.testbin.require` first in a
    test, so a missing build skips it).
    """
    program = binary or locate(Program.PROM_LABEL_PROXY).path

    def argv(port: int) -> list[str]:
        return [
            str(program),
            f"-insecure-listen-address={LOOPBACK}:{port}",
            f"-upstream={upstream}",
            f"-label={label}",
            f"-header-name={header_name}",
            "-enable-label-apis",
        ]

    return ServerProcess("prom-label-proxy", argv, workdir=workdir, ready_path="/healthz")
