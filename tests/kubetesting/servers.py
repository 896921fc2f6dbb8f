"""One shape for the two API servers the tests run: the API double and a real kube-apiserver.

:class:`KubeServer` is what a suite parametrised over both may use: where the server is, a
kubeconfig for it, ``seed`` (create or replace objects, status included), ``compact`` (so
older resourceVersions answer 410) and the newest ``resource_version``.
:class:`mtproxy.apidouble.RunningDouble` and
:class:`realservers.kubeapiserver.RunningKubeApiserver` both have it. What only the double
can do (pause, injected failures, dropped watches, configurable reviews, statistics) is for
tests marked ``apidouble_only``.

A real server wants TLS and a token where the double takes plain HTTP and any token, so
:func:`http_config` finds a server's connection facts by its URL: each server (and each
relay in front of one) is registered with :func:`register` when its fixture starts it, and
``open_kube(url)`` works unchanged for both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mtproxy.controller.clusterconfig import ClusterConfig

__all__ = ["API_SERVER_KINDS", "KubeServer", "http_config", "register", "server_kind"]

API_SERVER_KINDS = ("apidouble", "kube-apiserver")
"""The ids of the ``api_server_kind`` parameter (see ``tests/conftest.py``)."""

_known: dict[str, ClusterConfig] = {}


@runtime_checkable
class KubeServer(Protocol):
    """What a test may use of either API server."""

    @property
    def url(self) -> str: ...

    @property
    def port(self) -> int: ...

    def write_kubeconfig(self, path: str | Path, *, namespace: str = "default") -> Path: ...

    def seed(self, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def compact(self, up_to: int | None = None) -> int: ...

    def resource_version(self) -> int: ...


def server_kind(server: object) -> str:
    """``"kube-apiserver"`` or ``"apidouble"``."""
    return str(getattr(server, "kind", "apidouble"))


def register(url: str, config: ClusterConfig) -> None:
    """From now on, :func:`http_config` answers ``config`` for ``url`` (a server's or a relay's)."""
    _known[url.rstrip("/")] = config


def http_config(url: str, *, token: str = "test") -> ClusterConfig:
    """Connection facts for a test server: the registered ones, else plain HTTP with any token.

    Building no TLS context keeps the double's case cheap.
    """
    known = _known.get(url.rstrip("/"))
    if known is not None:
        return known
    header = f"Bearer {token}"
    return ClusterConfig(host=url, verify=False, token=lambda: header)


def known_configs() -> Mapping[str, ClusterConfig]:
    """Every registered URL (for messages)."""
    return dict(_known)
