"""Prometheus servers in the two roles the tests need: infrastructure and tenant.

- The *infrastructure* Prometheus is the shared one the proxy sits in front of. It scrapes
  the static targets it is given (usually a Pushgateway, every second) or serves blocks made
  by ``promtool`` (see :mod:`realservers.testdata`).
- A *tenant* Prometheus receives remote writes (``--web.enable-remote-write-receiver``) and
  scrapes nothing.

Both listen on 127.0.0.1 only, keep their TSDB under their own working directory, and run
with ``--web.enable-lifecycle`` so a test may ``POST /-/reload`` after rewriting
``prometheus.yml`` (:func:`write_config` rewrites it). The admin API stays off.

Two builds run in both roles (:class:`PrometheusBinaries`): Debian's 2.42 (:data:`DEBIAN`,
on ``PATH``) and Prometheus 3 built by ``make testbin`` (``prometheus3_binaries`` in
``tests/conftest.py``). The flags used here mean the same in both: the remote-write receiver
flag replaced ``--enable-feature=remote-write-receiver`` in 2.33 and is still the one in 3.x
(which also accepts remote-write 2.0 messages on it). Which build a server runs is given by
``binaries=``, or else by the innermost :func:`use_binaries` block around its construction,
so a fixture can run code it does not own (``start_e2e_prometheus``, the forwarding
campaign) on Prometheus 3 without a parameter threaded through it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from realservers.ports import LOOPBACK
from realservers.processes import ServerProcess

__all__ = [
    "DEBIAN",
    "PROMETHEUS_BINARY",
    "PrometheusBinaries",
    "ScrapeTarget",
    "current_binaries",
    "infrastructure_prometheus",
    "tenant_prometheus",
    "use_binaries",
    "write_config",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class PrometheusBinaries:
    """One Prometheus build: its server and its promtool."""

    version: str
    """Major.minor, e.g. ``"2.42"`` or ``"3.16"``; ids and messages use it."""
    prometheus: str
    """Path (or a name on ``PATH``) of ``prometheus``."""
    promtool: str
    """Path (or a name on ``PATH``) of ``promtool`` of the same build."""

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])


DEBIAN = PrometheusBinaries(version="2.42", prometheus="prometheus", promtool="promtool")
"""Debian bookworm's Prometheus, on ``PATH`` (``make system-packages``)."""

PROMETHEUS_BINARY = DEBIAN.prometheus
_READY_PATH = "/-/ready"
_current: contextvars.ContextVar[PrometheusBinaries] = contextvars.ContextVar("prometheus_binaries", default=DEBIAN)


def current_binaries() -> PrometheusBinaries:
    """The build servers are made with when not told: the innermost :func:`use_binaries`, else Debian's."""
    return _current.get()


@contextlib.contextmanager
def use_binaries(binaries: PrometheusBinaries) -> Iterator[PrometheusBinaries]:
    """Servers (and promtool runs) created inside this block use ``binaries``.

    A server keeps the build it was created with across restarts, whenever they happen.
    """
    token = _current.set(binaries)
    try:
        yield binaries
    finally:
        _current.reset(token)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScrapeTarget:
    """One scrape job with static targets."""

    job: str
    """The ``job_name``; Prometheus adds it as the ``job`` label unless ``honor_labels``."""
    addresses: tuple[str, ...]
    """``host:port`` of each target, e.g. ``(pushgateway.address,)``."""
    interval_s: float = 1.0
    """Scrape interval; the scrape timeout equals it."""
    metrics_path: str = "/metrics"
    honor_labels: bool = False
    """Keep the target's ``job``/``instance`` labels, as a Pushgateway scrape should."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels added to every series of these targets."""

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {self.interval_s}")
        if not self.addresses:
            raise ValueError(f"addresses must not be empty for job {self.job!r}")


def write_config(
    path: Path,
    *,
    targets: Sequence[ScrapeTarget] = (),
    out_of_order_time_window_s: int | None = None,
) -> None:
    """Write ``prometheus.yml`` (as JSON, which is YAML) for the given scrape targets.

    Args:
        path: Where to write; a running server reads it again on ``POST /-/reload``.
        targets: Scrape jobs; none for a tenant or a data-only Prometheus.
        out_of_order_time_window_s: Accept samples this much older than the newest one of
            their series. Without it, a fresh Prometheus rejects samples more than about an
            hour older than the newest it has seen, which matters for back-filling remote writes.
    """
    config: dict[str, object] = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "scrape_configs": [_scrape_config(target) for target in targets],
    }
    if out_of_order_time_window_s is not None:
        config["storage"] = {"tsdb": {"out_of_order_time_window": f"{out_of_order_time_window_s}s"}}
    path.write_text(json.dumps(config, indent=2) + "\n")


def _scrape_config(target: ScrapeTarget) -> dict[str, object]:
    interval = f"{int(target.interval_s * 1000)}ms"
    static: dict[str, object] = {"targets": list(target.addresses)}
    if target.labels:
        static["labels"] = dict(target.labels)
    return {
        "job_name": target.job,
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "metrics_path": target.metrics_path,
        "honor_labels": target.honor_labels,
        "static_configs": [static],
    }


def _server(
    name: str,
    workdir: Path,
    *,
    storage_dir: Path,
    extra_args: Sequence[str],
    binaries: PrometheusBinaries | None,
) -> ServerProcess:
    config_path = workdir / "prometheus.yml"
    binary = (binaries or current_binaries()).prometheus

    def argv(port: int) -> list[str]:
        return [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={storage_dir}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--web.enable-lifecycle",
            "--log.level=info",
            *extra_args,
        ]

    return ServerProcess(name, argv, workdir=workdir, ready_path=_READY_PATH)


def infrastructure_prometheus(
    workdir: Path,
    *,
    targets: Sequence[ScrapeTarget] = (),
    storage_dir: Path | None = None,
    retention: str | None = None,
    extra_args: Sequence[str] = (),
    binaries: PrometheusBinaries | None = None,
) -> ServerProcess:
    """An infrastructure Prometheus, not yet started.

    Args:
        workdir: Holds ``prometheus.yml``, ``server.log`` and, by default, ``data/``.
        targets: What it scrapes.
        storage_dir: The TSDB directory, e.g. one ``promtool`` filled with blocks.
        retention: ``--storage.tsdb.retention.time``, e.g. ``"30d"``. Prometheus measures it
            back from the newest block's end, not from now, and deletes older blocks.
        extra_args: More command-line flags.
        binaries: The build to run (default: :func:`current_binaries`).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    write_config(workdir / "prometheus.yml", targets=targets)
    args = list(extra_args)
    if retention is not None:
        args.append(f"--storage.tsdb.retention.time={retention}")
    return _server(
        "prometheus-infrastructure",
        workdir,
        storage_dir=storage_dir or workdir / "data",
        extra_args=args,
        binaries=binaries,
    )


def tenant_prometheus(
    workdir: Path,
    *,
    out_of_order_time_window_s: int | None = None,
    extra_args: Sequence[str] = (),
    binaries: PrometheusBinaries | None = None,
) -> ServerProcess:
    """A tenant Prometheus that accepts remote writes at ``/api/v1/write``; not yet started.

    Args:
        workdir: Holds ``prometheus.yml``, ``server.log`` and ``data/``; it survives restarts.
        out_of_order_time_window_s: See :func:`write_config`.
        extra_args: More command-line flags.
        binaries: The build to run (default: :func:`current_binaries`).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    write_config(workdir / "prometheus.yml", out_of_order_time_window_s=out_of_order_time_window_s)
    return _server(
        "prometheus-tenant",
        workdir,
        storage_dir=workdir / "data",
        extra_args=["--web.enable-remote-write-receiver", *extra_args],
        binaries=binaries,
    )
