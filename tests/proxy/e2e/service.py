"""The proxy service under test: ``run_service`` in a trio nursery, or the ``mtproxy`` command.

:func:`service_config` writes the config document every end-to-end test starts from: files
mode (MetricAccess YAML in a directory), static backend targets, an ``auth`` section, and
whatever ``proxy``/``discovery`` keys the test adds. It is loaded through the same schema as
an operator's file (``parse_config``), so a key the service does not know fails the test.

:func:`start_service` runs the composition root (``run_service``) in the caller's nursery on
a free loopback port and returns once ``/-/ready`` answers 200; ``RunningService.stop``
cancels it. The load test and the bench run the command as a child process instead
(``realservers.MtproxyProcess``).

Absolute imports only: ``bench/bench_proxy.py`` imports this module too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
from realservers import free_port

from mtproxy.api import parse_config
from mtproxy.cmd.service import ServiceOptions, run_service

__all__ = ["RunningService", "service_config", "start_service", "wait_ready"]


def service_config(
    *,
    targets: Sequence[str],
    tenants_dir: Path,
    auth: Mapping[str, Any] | None = None,
    proxy: Mapping[str, Any] | None = None,
    discovery: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The config document: files mode, static targets, the given sections."""
    return {
        "discovery": {"static": {"targets": list(targets)}, "health_check_interval": "1s", **(discovery or {})},
        "tenants": {"source": "files", "files": {"directory": str(tenants_dir)}},
        "proxy": {"enable_metrics": True, **(proxy or {})},
        "auth": dict(auth or {"type": "none"}),
    }


@dataclass(slots=True, kw_only=True)
class RunningService:
    """A ``run_service`` in a nursery, listening on ``url``."""

    url: str
    scope: trio.CancelScope
    stopped: trio.Event
    tenants_dir: Path

    async def stop(self) -> None:
        """Cancel the service and wait until it has stopped."""
        self.scope.cancel(reason="test stopped the service")
        await self.stopped.wait()


async def wait_ready(url: str, *, timeout_s: float = 15.0) -> None:
    """Return once ``GET {url}/-/ready`` answers 200."""
    async with httpx.AsyncClient(timeout=2.0) as client:
        with trio.fail_after(timeout_s):
            while True:
                try:
                    if (await client.get(f"{url}/-/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.02)


async def start_service(nursery: trio.Nursery, config: Mapping[str, Any], *, kubeconfig: str = "") -> RunningService:
    """Run the service in ``nursery`` and return once it is ready; ``stop`` it at the end."""
    loaded = parse_config(json.loads(json.dumps(config)))
    assert loaded.config.tenants.files_directory is not None
    port = free_port()
    options = ServiceOptions(
        host="127.0.0.1", port=port, kubeconfig=kubeconfig, leader_elect=False, handle_signals=False
    )
    scope = trio.CancelScope()
    stopped = trio.Event()

    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with scope:
                task_status.started()
                await run_service(loaded.config, options)
        finally:
            stopped.set()

    await nursery.start(run)
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url)
    return RunningService(
        url=url, scope=scope, stopped=stopped, tenants_dir=Path(loaded.config.tenants.files_directory)
    )
