"""Single-node VictoriaMetrics and vmauth on loopback ports.

VictoriaMetrics is a second remote-write target and query backend. It differs from
Prometheus in ways tests must know:

- By default it hides samples newer than 30 s (``-search.latencyOffset``); we start it with
  ``-search.latencyOffset=0s`` so a query right after a write can see the write.
- A write is not searchable when its request returns. VictoriaMetrics 1.79 answers an
  import with 204 at once; the series reaches the index within milliseconds, but its samples
  reach queries only after the next in-memory flush: about 10 s later when left alone,
  about 1 s later when ``/internal/force_flush`` is called repeatedly. :func:`wait_for_result`
  flushes and polls the query itself, so tests wait as long as needed and no longer.
- The response cache can hide back-filled data, so it is off (``-search.disableCache``).
- With ``-httpAuth.*`` set, every API path wants basic auth (a wrong password gets 401),
  but ``/health`` does not.
- Retention is 100 years, so old test timestamps are kept.

:func:`vmauth` starts VictoriaMetrics' auth proxy with a given ``-auth.config`` file; the
benchmarks put it in front of backends for comparison. vmauth 1.79 answers 401 only when the
``Authorization`` header is missing; unknown credentials get 400, and its error text echoes
the header back.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from realservers.ports import LOOPBACK
from realservers.processes import BasicAuth, ServerProcess

__all__ = [
    "VICTORIAMETRICS_BINARY",
    "VMAUTH_BINARY",
    "force_flush",
    "victoriametrics",
    "vmauth",
    "wait_for_result",
]

VICTORIAMETRICS_BINARY = "victoria-metrics"
VMAUTH_BINARY = "vmauth"

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def victoriametrics(
    workdir: Path,
    *,
    auth: BasicAuth | None = None,
    extra_args: Sequence[str] = (),
) -> ServerProcess:
    """A single-node VictoriaMetrics, not yet started.

    Args:
        workdir: Holds ``server.log`` and the storage in ``data/``; it survives restarts.
        auth: Require these basic-auth credentials on every API request.
        extra_args: More flags, e.g. ``["-dedup.minScrapeInterval=1s"]``.
    """
    args = [
        f"-storageDataPath={workdir / 'data'}",
        "-search.latencyOffset=0s",
        "-search.disableCache",
        "-retentionPeriod=100y",
        "-loggerLevel=INFO",
    ]
    if auth is not None:
        username, password = auth
        if not username:
            raise ValueError("auth username must not be empty: VictoriaMetrics would disable auth")
        args += [f"-httpAuth.username={username}", f"-httpAuth.password={password}"]
    args += extra_args

    def argv(port: int) -> list[str]:
        return [VICTORIAMETRICS_BINARY, f"-httpListenAddr={LOOPBACK}:{port}", *args]

    return ServerProcess("victoriametrics", argv, workdir=workdir, ready_path="/health")


def vmauth(workdir: Path, *, auth_config: Path, extra_args: Sequence[str] = ()) -> ServerProcess:
    """A vmauth proxy reading ``auth_config``, not yet started.

    The config is read at start (and re-read on SIGHUP); see the vmauth documentation for its
    ``users:`` / ``url_prefix`` format.
    """

    def argv(port: int) -> list[str]:
        return [
            VMAUTH_BINARY,
            f"-httpListenAddr={LOOPBACK}:{port}",
            f"-auth.config={auth_config}",
            "-loggerLevel=INFO",
            *extra_args,
        ]

    return ServerProcess("vmauth", argv, workdir=workdir, ready_path="/health")


def _get(server: ServerProcess, path_and_query: str, auth: BasicAuth | None) -> bytes:
    request = urllib.request.Request(f"{server.url}{path_and_query}")
    if auth is not None:
        token = base64.b64encode(":".join(auth).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with _OPENER.open(request, timeout=10.0) as response:
        body: bytes = response.read()
        return body


def force_flush(server: ServerProcess, *, auth: BasicAuth | None = None) -> None:
    """Make the rows parsed so far searchable (``GET /internal/force_flush``).

    Rows of a request that has just returned may not be parsed yet; see :func:`wait_for_result`.

    Raises:
        urllib.error.HTTPError: The server refused, e.g. 401 for missing credentials.
    """
    _get(server, "/internal/force_flush", auth)


def wait_for_result(
    server: ServerProcess,
    query: str,
    *,
    at_s: float,
    auth: BasicAuth | None = None,
    timeout_s: float = 10.0,
) -> list[dict[str, Any]]:
    """Flush and run the instant ``query`` at ``at_s`` until its result is not empty.

    Returns:
        The ``data.result`` list of the first non-empty answer.

    Raises:
        TimeoutError: Still empty after ``timeout_s``.
    """
    params = urllib.parse.urlencode({"query": query, "time": repr(at_s)})
    deadline = time.monotonic() + timeout_s
    while True:
        force_flush(server, auth=auth)
        result: list[dict[str, Any]] = json.loads(_get(server, f"/api/v1/query?{params}", auth))["data"]["result"]
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{server.name} still answers nothing to {query!r} at {at_s} after {timeout_s:g} s:\n"
                f"{server.log_tail()}"
            )
        time.sleep(0.05)
