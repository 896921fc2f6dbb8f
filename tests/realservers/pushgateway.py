"""A Prometheus Pushgateway on a loopback port, for tests that need scrapeable metrics.

Tests push series to it (``PUT``/``POST /metrics/job/<job>/...``) and an infrastructure
Prometheus scrapes it with ``honor_labels`` (see :class:`realservers.prometheus.ScrapeTarget`).
Persistence is off (``--persistence.file=`` empty; Debian's default points into /var/lib),
so every start begins empty and a restart forgets what was pushed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from realservers.ports import LOOPBACK
from realservers.processes import ServerProcess

__all__ = ["PUSHGATEWAY_BINARY", "pushgateway"]

PUSHGATEWAY_BINARY = "prometheus-pushgateway"


def pushgateway(workdir: Path, *, extra_args: Sequence[str] = ()) -> ServerProcess:
    """A Pushgateway, not yet started; it logs to ``workdir/server.log``."""

    def argv(port: int) -> list[str]:
        return [
            PUSHGATEWAY_BINARY,
            f"--web.listen-address={LOOPBACK}:{port}",
            "--persistence.file=",
            *extra_args,
        ]

    return ServerProcess("pushgateway", argv, workdir=workdir, ready_path="/-/ready")
