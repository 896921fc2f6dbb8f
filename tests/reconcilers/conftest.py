"""Fixtures for the reconcilers' tests against an API server: the double and the real one.

Each test asking for ``kube_server`` runs on the API double and on a real kube-apiserver
(``api_server_kind``, see ``tests/conftest.py``), in a namespace of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from kubetesting import KubeServer, open_kube

from mtproxy.controller.client import KubeClient


@pytest.fixture
def namespace(kube_server: KubeServer) -> str:
    """A fresh namespace for one test."""
    name = f"r-{uuid.uuid4().hex[:10]}"
    kube_server.seed([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}])
    return name


@pytest.fixture
async def kube(kube_server: KubeServer) -> AsyncIterator[KubeClient]:
    """A KubeClient talking straight to this run's server (as an administrator)."""
    client, http = open_kube(kube_server.url)
    async with http:
        yield client
