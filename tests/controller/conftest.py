"""Fixtures for the controller runtime tests that talk HTTP to the API double.

One double serves the whole session from its own thread (pytest-trio's async fixtures
are function-scoped, python-trio/pytest-trio#89), with the generated MetricAccess CRD
registered and a bookmark after 0.2 s idle. Each test works in a namespace of its own,
so tests never see each other's objects; a fault that acts on the whole double (pause,
drop_watches, compact) is over by the time the next test starts. The helpers these
fixtures build on live in :mod:`kubetesting`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import trio
from kubetesting import CuttableRelay, load_crd, open_kube

from mtproxy.apidouble import RunningDouble, start_in_thread
from mtproxy.controller.client import KubeClient


@pytest.fixture(scope="session")
def double() -> Iterator[RunningDouble]:
    """The session's API double, with the generated CRD and fast bookmarks."""
    running = start_in_thread(bookmark_interval_s=0.2)
    running.seed([load_crd()])
    yield running
    running.stop()


@pytest.fixture(scope="session")
def kubeconfig_path(double: RunningDouble, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig file for the session's double."""
    return double.write_kubeconfig(tmp_path_factory.mktemp("controller") / "kubeconfig")


@pytest.fixture
def namespace(double: RunningDouble) -> str:
    """A fresh namespace for one test."""
    name = f"c-{uuid.uuid4().hex[:10]}"
    double.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}])
    return name


@pytest.fixture
async def kube(double: RunningDouble) -> AsyncIterator[KubeClient]:
    """A KubeClient talking straight to the double."""
    client, http = open_kube(double.url)
    async with http:
        yield client


@pytest.fixture
async def open_relay(nursery: trio.Nursery, double: RunningDouble) -> Callable[[], Awaitable[CuttableRelay]]:
    """Start cuttable relays to the double in the test's nursery (they stop when the test ends)."""

    async def start() -> CuttableRelay:
        relay = CuttableRelay(double.port)
        await nursery.start(relay.run)
        return relay

    return start
