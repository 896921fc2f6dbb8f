"""The ``mtproxy`` command enforces a large query in its worker processes and stops cleanly.

Worker processes are started with ``spawn``, which re-imports the parent's main module: this
runs the real console script, so a main module without an import guard, or a worker that
cannot import the proxy, would show here (the in-process tests run under pytest's main).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from realservers import LoadedPrometheus, MtproxyProcess

from .service import service_config
from .tenancy import write_tenant_files

pytestmark = pytest.mark.slow


@pytest.fixture
def mtproxy(tmp_path: Path, infra_prometheus_with_data: LoadedPrometheus) -> Iterator[MtproxyProcess]:
    config = service_config(targets=[infra_prometheus_with_data.url], tenants_dir=write_tenant_files(tmp_path / "t"))
    command = MtproxyProcess("mtproxy", tmp_path / "mtproxy", config, log_level="warning").start()
    yield command
    command.stop()


def test_a_large_query_is_answered_by_the_service_through_its_workers(
    mtproxy: MtproxyProcess, infra_prometheus_with_data: LoadedPrometheus
) -> None:
    pods = "|".join(f"pod_{i:05d}" for i in range(4_000))  # about 40 KB: enforced in a worker
    query = f'count(up{{pod=~"{pods}"}}) or vector(0)'
    form = {"query": query, "time": str(infra_prometheus_with_data.data.end_s)}
    response = httpx.post(
        mtproxy.url + "/api/v1/query", data=form, headers={"X-Tenant-Namespace": "team-a"}, timeout=60.0
    )
    assert response.status_code == 200, response.text[:500]
    assert response.json()["data"]["resultType"] == "vector"
