"""The Event recorder: the API it falls back to, de-duplication, rate limits, and logs when forbidden."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio.testing

from mtproxy.controller import ClusterConfig, EventRecorder, KubeClient

OBJECT = {"apiVersion": "observability.ethos.io/v1alpha1", "kind": "MetricAccess",
          "metadata": {"name": "app", "namespace": "team-a", "uid": "u1", "resourceVersion": "7"}}


def _status(code: int, message: str) -> httpx.Response:
    return httpx.Response(code, json={"kind": "Status", "status": "Failure", "code": code, "message": message,
                                      "reason": {404: "NotFound", 403: "Forbidden"}.get(code, "")})


class _Server:
    def __init__(self, answers: dict[str, httpx.Response]) -> None:
        self.answers = answers
        self.paths: list[str] = []
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        self.bodies.append(json.loads(request.content))
        for prefix, answer in self.answers.items():
            if request.url.path.startswith(prefix):
                return answer
        return httpx.Response(201, json=self.bodies[-1])


def _recorder(server: _Server, **options: Any) -> tuple[EventRecorder, httpx.AsyncClient]:
    http = httpx.AsyncClient(base_url="http://api.test", transport=httpx.MockTransport(server))
    client = KubeClient(http, config=ClusterConfig(host="http://api.test", verify=False, token=lambda: ""))
    return EventRecorder(client, controller="test/mtproxy", instance="replica-0", **options), http


async def test_events_v1_first_with_a_valid_name_and_what_it_regards() -> None:
    server = _Server({})
    recorder, http = _recorder(server)
    async with http:
        assert await recorder.record(OBJECT, warning=True, reason="InvalidSpec", message="spec.metrics[0]: bad")
    assert server.paths == ["/apis/events.k8s.io/v1/namespaces/team-a/events"]
    body = server.bodies[0]
    assert body["metadata"]["name"].startswith("app.") and "generateName" not in body["metadata"]
    assert body["regarding"]["uid"] == "u1" and body["type"] == "Warning" and body["note"] == "spec.metrics[0]: bad"


async def test_falls_back_to_core_v1_only_when_the_api_is_not_served() -> None:
    missing_namespace = _Server({"/apis/events.k8s.io": _status(404, 'namespaces "team-a" not found')})
    recorder, http = _recorder(missing_namespace)
    async with http:
        assert not await recorder.record(OBJECT, warning=True, reason="A", message="m")
        assert recorder.statistics().api == "events.k8s.io/v1"
    for answer in (
        _status(404, "the server could not find the requested resource"),
        httpx.Response(404, text="404 page not found"),  # kube-apiserver with the group switched off
    ):
        not_served = _Server({"/apis/events.k8s.io": answer})
        recorder, http = _recorder(not_served)
        async with http:
            assert await recorder.record(OBJECT, warning=True, reason="A", message="m")
            assert await recorder.record(OBJECT, warning=False, reason="B", message="m")
        assert recorder.statistics().api == "v1"
        assert not_served.paths[1:] == ["/api/v1/namespaces/team-a/events"] * 2


async def test_repeats_are_recorded_once_and_a_flapping_object_is_rate_limited(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = _Server({})
    recorder, http = _recorder(server, burst=3, refill_s=60)
    async with http:
        for _ in range(5):
            await recorder.record(OBJECT, warning=True, reason="A", message="same")
        assert len(server.paths) == 1 and recorder.statistics().deduplicated == 4
        for index in range(5):
            await recorder.record(OBJECT, warning=True, reason="A", message=f"new {index}")
        assert len(server.paths) == 3 and recorder.statistics().rate_limited == 3
        await trio.sleep(60)
        assert await recorder.record(OBJECT, warning=True, reason="A", message="after a minute")


async def test_forbidden_events_go_to_the_log_with_one_warning(caplog: Any) -> None:
    server = _Server({"/apis/events.k8s.io": _status(403, "forbidden")})
    recorder, http = _recorder(server)
    async with http:
        assert not await recorder.record(OBJECT, warning=True, reason="A", message="one")
        assert not await recorder.record(OBJECT, warning=True, reason="A", message="two")
    assert len(server.paths) == 1
    assert recorder.statistics().api == "logs"
    assert [r.getMessage() for r in caplog.records].count("events forbidden, recording them in logs only") == 1
