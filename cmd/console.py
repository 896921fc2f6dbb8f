"""The dev console: a :class:`DevSnapshot` rendered live with rich, or printed as plain log lines.

:func:`render_console` is pure (snapshot in, rich renderable out; ages are computed from
the snapshot's own time), so a test renders a fixed snapshot and compares the text with a
golden file. :func:`plain_record` is the same content as one JSON-able mapping, what
``--no-console`` (or a stdout that is not a terminal) prints every ``plain_interval_s``.

:func:`run_console` owns the screen while it runs: rich ``Live`` on the alternate screen,
refreshed about once a second from ``read()``; with a terminal on stdin it reads keys in
cbreak mode (restored on exit) and returns when ``q`` is pressed. Ctrl-C is a signal and
is the caller's to handle; the caller cancels this too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import termios
import tty
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TextIO

import trio
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mtproxy.cmd.devsnapshot import DevSnapshot

__all__ = ["plain_record", "render_console", "run_console", "run_plain", "wait_for_quit_key"]

_CONDITION_STYLE = {"True": "green", "False": "red", "Unknown": "yellow", "-": "dim"}


def _age(taken_at: float, moment_s: float | None) -> str:
    if moment_s is None:
        return "never"
    seconds = max(0, round(taken_at - moment_s))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def _duration(seconds: float) -> str:
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _condition(status: str) -> Text:
    return Text(status, style=_CONDITION_STYLE.get(status, ""))


def _table(title: str, *columns: str, wrap: tuple[str, ...] = ()) -> Table:
    """A console table; only the ``wrap`` columns (messages) may wrap, the others never break a value."""
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, expand=False,
                  pad_edge=False, show_edge=False)
    for column in columns:
        if column in wrap:
            table.add_column(column, overflow="fold", ratio=1)
        else:
            table.add_column(column, no_wrap=True)
    return table


def _header(snapshot: DevSnapshot) -> RenderableType:
    info = snapshot.info
    grid = Table.grid(padding=(0, 3))
    for _ in range(3):
        grid.add_column()
    grid.add_row(
        Text.assemble(("proxy ", "bold"), info.proxy_url),
        Text.assemble((f"kube-apiserver ({info.kube_kind}) ", "bold"), info.kube_url),
        Text.assemble(("kubeconfig ", "bold"), info.kubeconfig),
    )
    grid.add_row(
        Text.assemble(("phase ", "bold"), snapshot.phase),
        Text.assemble(("leader ", "bold"), snapshot.leader),
        Text.assemble(("up ", "bold"), _duration(snapshot.taken_at - info.started_at)),
    )
    return Panel(grid, title="mtproxy dev", title_align="left", box=box.ROUNDED)


def _servers(snapshot: DevSnapshot) -> Table:
    table = _table("Demo servers", "SERVER", "URL", "STATE")
    for server in snapshot.servers:
        style = "green" if server.state == "running" else "yellow" if server.state == "starting" else "red"
        table.add_row(server.name, server.url, Text(server.state, style=style))
    return table


def _backends(snapshot: DevSnapshot) -> Table:
    table = _table("Backends", "URL", "HEALTH", "LATENCY", "FAILURES")
    for backend in snapshot.backends:
        latency = f"{backend.latency_ms:.1f} ms" if backend.latency_ms is not None else (backend.error or "-")
        health = Text("healthy", style="green") if backend.healthy else Text("unhealthy", style="red")
        table.add_row(backend.url, health, latency, str(backend.consecutive_failures))
    return table


def _tenants(snapshot: DevSnapshot) -> Table:
    table = _table("Tenants", "NAMESPACE", "OBJECTS", "RULES", "REQ/S", "TOTAL", "REJECTED", "5XX")
    for tenant in snapshot.tenants:
        table.add_row(
            tenant.namespace, str(tenant.objects), str(tenant.rules), f"{tenant.per_second:.2f}",
            str(tenant.requests), str(tenant.rejected), str(tenant.errors),
        )
    return table


def _objects(snapshot: DevSnapshot) -> Table:
    table = _table("MetricAccess", "NAMESPACE/NAME", "GEN", "VALID", "FORWARDING", "READY", "WHY NOT READY",
                   wrap=("WHY NOT READY",))
    for obj in snapshot.objects:
        table.add_row(
            obj.key, "-" if obj.generation is None else str(obj.generation), _condition(obj.valid),
            _condition(obj.forwarding), _condition(obj.ready), obj.message,
        )
    return table


def _jobs(snapshot: DevSnapshot) -> Table:
    table = _table(
        "Remote write", "JOB", "LAST COLLECTION", "SERIES", "SAMPLES/S", "DESTINATION", "STATE", "LAST ERROR",
        wrap=("LAST ERROR",),
    )
    for job in snapshot.jobs:
        collected = "not running" if not job.running else _age(
            snapshot.taken_at, None if job.last_collection_ms is None else job.last_collection_ms / 1000
        )
        head = [job.key, collected, str(job.series), f"{job.samples_per_s:.1f}"]
        if not job.destinations:
            table.add_row(*head, "-", "-", job.last_error or "")
        for index, destination in enumerate(job.destinations):
            state = Text("ok", style="green") if destination.healthy else Text("failing", style="red")
            table.add_row(*(head if index == 0 else [""] * 4), destination.name, state,
                          destination.last_error or (job.last_error if index == 0 else None) or "")
    return table


def _requests(snapshot: DevSnapshot) -> Table:
    table = _table("Recent requests", "UTC", "TENANT", "ENDPOINT", "STATUS", "DURATION")
    if not snapshot.requests:
        table.add_row("-", "none yet", "", "", "")
    for request in snapshot.requests:
        status_style = "green" if request.status < 400 else "yellow" if request.status < 500 else "red"
        table.add_row(
            dt.datetime.fromtimestamp(request.at, tz=dt.UTC).strftime("%H:%M:%S"),
            request.tenant or "-", request.endpoint if request.method in ("GET", "") else
            f"{request.method} {request.endpoint}",
            Text(str(request.status), style=status_style), f"{request.duration_ms:.1f} ms",
        )
    return table


def _footer(snapshot: DevSnapshot) -> RenderableType:
    lines = [Text("Try (each line works as printed, from this directory):", style="bold")]
    lines.extend(Text(command, no_wrap=True, overflow="ignore") for command in snapshot.info.commands)
    lines.append(Text(f"Objects of {snapshot.info.objects_dir} apply live when edited.  q or Ctrl-C stops everything.",
                      style="dim"))
    return Group(*lines)


def _side_by_side(left: RenderableType, right: RenderableType) -> Table:
    grid = Table.grid(padding=(0, 4))
    grid.add_column()
    grid.add_column()
    grid.add_row(left, right)
    return grid


def render_console(snapshot: DevSnapshot) -> RenderableType:
    """The whole console for ``snapshot`` (pure: no clock, no I/O)."""
    parts: list[RenderableType] = [_header(snapshot)]
    for note in snapshot.notes:
        parts.append(Text(f"! {note}", style="yellow"))
    parts.extend([
        _side_by_side(_servers(snapshot), _backends(snapshot)),
        _side_by_side(_tenants(snapshot), _requests(snapshot)),
        _objects(snapshot),
        _jobs(snapshot),
        _footer(snapshot),
    ])
    return Group(*parts)


def plain_record(snapshot: DevSnapshot) -> dict[str, Any]:
    """The console's content as one JSON-able mapping (the plain mode prints one per interval)."""
    return {
        "msg": "dev status",
        "phase": snapshot.phase,
        "leader": snapshot.leader,
        "servers": {s.name: s.state for s in snapshot.servers},
        "backends": [
            {"url": b.url, "healthy": b.healthy, "latency_ms": None if b.latency_ms is None else round(b.latency_ms, 1)}
            for b in snapshot.backends
        ],
        "tenants": [
            {"namespace": t.namespace, "rules": t.rules, "requests": t.requests, "rejected": t.rejected,
             "per_second": round(t.per_second, 2)}
            for t in snapshot.tenants
        ],
        "objects": [
            {"key": o.key, "valid": o.valid, "forwarding": o.forwarding, "ready": o.ready, "message": o.message}
            for o in snapshot.objects
        ],
        "jobs": [
            {"key": j.key, "series": j.series, "samples_forwarded": j.samples_forwarded,
             "destinations": {d.name: "ok" if d.healthy else (d.last_error or "failing") for d in j.destinations}}
            for j in snapshot.jobs
        ],
        "notes": list(snapshot.notes),
    }


def _print_json(out: TextIO, record: Mapping[str, Any]) -> None:
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    out.write(json.dumps({"level": "info", "time": stamp, **record}, default=str) + "\n")
    out.flush()


async def run_plain(read: Callable[[], DevSnapshot], *, out: TextIO, interval_s: float = 10.0) -> None:
    """Print :func:`plain_record` of ``read()`` every ``interval_s`` until cancelled."""
    while True:
        _print_json(out, plain_record(read()))
        await trio.sleep(interval_s)


@contextlib.contextmanager
def _cbreak(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def wait_for_quit_key(fd: int) -> None:
    """Return once ``q`` is typed on the terminal ``fd`` (cbreak mode meanwhile); never, without a terminal."""
    if not os.isatty(fd):
        await trio.sleep_forever()
    with _cbreak(fd):
        while True:
            await trio.lowlevel.wait_readable(fd)
            data = os.read(fd, 64)
            if not data or b"q" in data.lower():
                return


async def run_console(
    read: Callable[[], DevSnapshot], *, console: Console | None = None, refresh_s: float = 1.0
) -> None:
    """Show the live console until ``q`` is pressed (returns) or cancelled."""
    screen = console or Console()
    with Live(render_console(read()), console=screen, screen=True, auto_refresh=False,
              redirect_stdout=False, redirect_stderr=False) as live:

        async def refresh() -> None:
            while True:
                await trio.sleep(refresh_s)
                live.update(render_console(read()), refresh=True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(refresh)
            await wait_for_quit_key(sys.stdin.fileno())
            nursery.cancel_scope.cancel(reason="q pressed")
