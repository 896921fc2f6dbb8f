"""The servers one test (or one session) started, stopped together at its end.

The function-scoped factory fixtures in ``tests/conftest.py`` are bound methods of one
:class:`ServerSet`, so a test may start several servers of any kind and leave the cleanup to
the fixture. Each server gets a fresh directory from pytest's ``tmp_path_factory``; pytest
keeps the directories of its last three runs, so ``server.log`` can be read after a failure.

The ``*Factory`` protocols name the fixtures' types for annotating tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from realservers import prometheus, pushgateway, victoriametrics
from realservers.processes import BasicAuth, ServerProcess

__all__ = [
    "InfrastructurePrometheusFactory",
    "ServerSet",
    "TenantPrometheusFactory",
    "VictoriaMetricsFactory",
    "VmauthFactory",
]


class TenantPrometheusFactory(Protocol):
    def __call__(
        self, *, out_of_order_time_window_s: int | None = None, extra_args: Sequence[str] = ()
    ) -> ServerProcess: ...


class InfrastructurePrometheusFactory(Protocol):
    def __call__(
        self,
        *,
        targets: Sequence[prometheus.ScrapeTarget] = (),
        retention: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> ServerProcess: ...


class VictoriaMetricsFactory(Protocol):
    def __call__(self, *, auth: BasicAuth | None = None, extra_args: Sequence[str] = ()) -> ServerProcess: ...


class VmauthFactory(Protocol):
    def __call__(
        self, *, auth_config: Path | Mapping[str, Any], extra_args: Sequence[str] = ()
    ) -> ServerProcess: ...


class ServerSet:
    """Starts servers in fresh temporary directories and stops them all in :meth:`stop_all`.

    Every method returns a server that is already running and ready.
    """

    def __init__(
        self, tmp_path_factory: pytest.TempPathFactory, *, prometheus: prometheus.PrometheusBinaries | None = None
    ) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._servers: list[ServerProcess] = []
        self._prometheus = prometheus
        """The Prometheus build of every Prometheus this set starts (default: ``current_binaries()``)."""

    @property
    def servers(self) -> tuple[ServerProcess, ...]:
        """Every server started so far, running or not, in start order."""
        return tuple(self._servers)

    def _started(self, server: ServerProcess) -> ServerProcess:
        # Registered before start so that a failed start is still cleaned up.
        self._servers.append(server)
        server.start()
        return server

    def _workdir(self, name: str) -> Path:
        return self._tmp_path_factory.mktemp(name)

    def tenant_prometheus(
        self, *, out_of_order_time_window_s: int | None = None, extra_args: Sequence[str] = ()
    ) -> ServerProcess:
        """A tenant Prometheus receiving remote writes; see :func:`prometheus.tenant_prometheus`."""
        return self._started(
            prometheus.tenant_prometheus(
                self._workdir("prometheus-tenant"),
                out_of_order_time_window_s=out_of_order_time_window_s,
                extra_args=extra_args,
                binaries=self._prometheus,
            )
        )

    def infrastructure_prometheus(
        self,
        *,
        targets: Sequence[prometheus.ScrapeTarget] = (),
        retention: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> ServerProcess:
        """A scraping Prometheus; see :func:`prometheus.infrastructure_prometheus`."""
        return self._started(
            prometheus.infrastructure_prometheus(
                self._workdir("prometheus-infrastructure"),
                targets=targets,
                retention=retention,
                extra_args=extra_args,
                binaries=self._prometheus,
            )
        )

    def pushgateway(self) -> ServerProcess:
        """A Pushgateway without persistence."""
        return self._started(pushgateway.pushgateway(self._workdir("pushgateway")))

    def victoriametrics(
        self, *, auth: BasicAuth | None = None, extra_args: Sequence[str] = ()
    ) -> ServerProcess:
        """A single-node VictoriaMetrics; see :func:`victoriametrics.victoriametrics`."""
        return self._started(
            victoriametrics.victoriametrics(
                self._workdir("victoriametrics"), auth=auth, extra_args=extra_args
            )
        )

    def vmauth(
        self, *, auth_config: Path | Mapping[str, Any], extra_args: Sequence[str] = ()
    ) -> ServerProcess:
        """A vmauth proxy; a mapping ``auth_config`` is written to ``auth.yml`` first."""
        workdir = self._workdir("vmauth")
        if not isinstance(auth_config, Path):
            path = workdir / "auth.yml"
            path.write_text(json.dumps(auth_config, indent=2) + "\n")
            auth_config = path
        return self._started(victoriametrics.vmauth(workdir, auth_config=auth_config, extra_args=extra_args))

    def stop_all(self) -> None:
        """Stop every server, newest first."""
        for server in reversed(self._servers):
            server.stop()
