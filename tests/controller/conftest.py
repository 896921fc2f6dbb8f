"""Fixtures for the controller runtime tests that talk HTTP to an API server.

Every test here runs twice, once on the API double and once on a real kube-apiserver
(``api_server_kind``, see ``tests/conftest.py``), except those marked ``apidouble_only``,
which use what only the double can do (injected failures, dropped watches, a pause, writes
straight into its store). The fixture keeps its old name, ``double``: it is the server of
this run, either kind, with the :class:`kubetesting.KubeServer` shape.

The double serves the whole session from its own thread (pytest-trio's async fixtures are
function-scoped, python-trio/pytest-trio#89), with the generated MetricAccess CRD
registered and a bookmark after 0.2 s idle; the real server is the session's
``kube_apiserver``, with the same CRD installed. Each test works in a namespace of its own,
so tests never see each other's objects; a fault that acts on the whole double (pause,
drop_watches, compact) is over by the time the next test starts. The helpers these
fixtures build on live in :mod:`kubetesting`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from kubetesting import CuttableRelay, KubeServer, http_config, open_kube, register, server_kind

from mtproxy.controller.client import KubeClient


@pytest.fixture(scope="session")
def double(kube_server: Any) -> Any:
    """This run's API server (``kube_server``); the name the controller tests were written with."""
    return kube_server


@pytest.fixture(scope="session")
def kubeconfig_path(double: KubeServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig file for this run's server (on the real one: the ``apidouble`` static user)."""
    path = tmp_path_factory.mktemp("controller") / "kubeconfig"
    if server_kind(double) == "kube-apiserver":
        # the same credential the double's kubeconfigs carry, so a test reading one sees the same
        return double.write_kubeconfig(path, user="apidouble")  # type: ignore[call-arg]
    return double.write_kubeconfig(path)


@pytest.fixture
def namespace(double: KubeServer) -> str:
    """A fresh namespace for one test."""
    name = f"c-{uuid.uuid4().hex[:10]}"
    double.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}])
    return name


@pytest.fixture
async def kube(double: KubeServer) -> AsyncIterator[KubeClient]:
    """A KubeClient talking straight to this run's server."""
    client, http = open_kube(double.url)
    async with http:
        yield client


@pytest.fixture
async def open_relay(nursery: trio.Nursery, double: KubeServer) -> Callable[[], Awaitable[CuttableRelay]]:
    """Start cuttable relays to the server in the test's nursery (they stop when the test ends)."""
    scheme = double.url.split("://", 1)[0]

    async def start() -> CuttableRelay:
        relay = CuttableRelay(double.port, scheme=scheme)
        await nursery.start(relay.run)
        if scheme == "https":
            config = http_config(double.url)
            register(relay.url, type(config)(host=relay.url, verify=config.verify, token=config.token))
        return relay

    return start
