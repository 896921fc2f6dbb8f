"""Contract of the fault hooks: pause/resume, delay, injected failures, dropped watches.

The double's alone: a real API server has none of these hooks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from mtproxy.apidouble import InjectedFailure, RunningDouble

pytestmark = pytest.mark.apidouble_only


@pytest.fixture
def http(double: RunningDouble) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=double.url, timeout=10) as session:
        yield session


def test_paused_requests_block_until_resumed(double: RunningDouble, http: httpx.Client) -> None:
    answers: list[int] = []
    double.pause()
    try:
        worker = threading.Thread(target=lambda: answers.append(http.get("/api/v1/namespaces").status_code))
        worker.start()
        worker.join(0.3)
        assert worker.is_alive() and answers == []
        assert double.statistics().faults.paused
    finally:
        double.resume()
    worker.join(5)
    assert answers == [200]


def test_delay_slows_every_request(double: RunningDouble, http: httpx.Client) -> None:
    double.set_delay(0.3)
    try:
        began = time.monotonic()
        assert http.get("/version").status_code == 200
        assert time.monotonic() - began >= 0.3
    finally:
        double.set_delay(0)


def test_injected_failures_answer_status_then_stop(double: RunningDouble, http: httpx.Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    double.fail_next(2, InjectedFailure(code=503, reason="ServiceUnavailable", message="try later",
                                        method="GET", path_prefix=path))
    assert http.get("/api/v1/namespaces").status_code == 200
    failed = [http.get(path) for _ in range(2)]
    assert [response.status_code for response in failed] == [503, 503]
    assert failed[0].json()["reason"] == "ServiceUnavailable" and failed[0].json()["message"] == "try later"
    assert http.get(path).status_code == 200
    assert double.statistics().faults.pending_failures == 0


def test_drop_watches_ends_open_streams(double: RunningDouble, http: httpx.Client, namespace: str) -> None:
    http.post(f"/api/v1/namespaces/{namespace}/configmaps", json={"metadata": {"name": "c"}})
    streaming = threading.Event()
    ended = threading.Event()

    def watch() -> None:
        with http.stream("GET", f"/api/v1/namespaces/{namespace}/configmaps", params={"watch": "true"}) as response:
            for _ in response.iter_lines():
                streaming.set()
        ended.set()

    worker = threading.Thread(target=watch, daemon=True)
    worker.start()
    assert streaming.wait(5)
    assert double.drop_watches() >= 1
    assert ended.wait(5)


def test_compact_drops_history(double: RunningDouble, http: httpx.Client, namespace: str) -> None:
    http.post(f"/api/v1/namespaces/{namespace}/configmaps", json={"metadata": {"name": "c"}})
    double.compact()
    store = double.statistics().cluster.store
    assert store.compacted_resource_version == store.resource_version
    assert store.history_events == 1, "as etcd, the latest revision's event stays"


def test_seed_writes_objects_with_status(double: RunningDouble, http: httpx.Client, namespace: str) -> None:
    (pod,) = double.seed([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": namespace},
                           "spec": {"containers": [{"name": "c", "image": "x"}]},
                           "status": {"phase": "Running", "podIP": "10.0.0.7"}}])
    assert pod["status"]["podIP"] == "10.0.0.7"
    fetched = http.get(f"/api/v1/namespaces/{namespace}/pods/p").json()
    assert fetched["status"] == {"phase": "Running", "podIP": "10.0.0.7"}
