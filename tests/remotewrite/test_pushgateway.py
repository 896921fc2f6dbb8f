"""Pushgateway sender: PUT replaces the ``job``/``namespace`` group, DELETE removes it.

What the Pushgateway holds is read back from its own ``/metrics``, so each test checks
what the real server kept, not only what the sender reported.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import trio
from realservers import ServerProcess

from mtproxy.remotewrite.exposition import format_exposition
from mtproxy.remotewrite.job import Destination, DestinationKind
from mtproxy.remotewrite.pushgateway import EXPOSITION_CONTENT_TYPE, PushgatewaySender
from mtproxy.remotewrite.senders import SendOutcome, SendResult

from .scripted_server import Reply, serve_scripted

NAMESPACE = "team-a"
JOB = "tenant-forwarder"

_SAMPLE_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def _destination(url: str, *, job: str | None = JOB) -> Destination:
    return Destination(kind=DestinationKind.PUSHGATEWAY, url=url, name=url, pushgateway_job=job)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
        yield client


async def _held(
    http: httpx.AsyncClient, pushgateway: ServerProcess, name: str
) -> dict[frozenset[tuple[str, str]], str]:
    """The series called ``name`` the Pushgateway exposes: label set → value."""
    response = await http.get(f"{pushgateway.url}/metrics")
    response.raise_for_status()
    held: dict[frozenset[tuple[str, str]], str] = {}
    for line in response.text.splitlines():
        match = _SAMPLE_LINE.match(line)
        if match is None or match["name"] != name:
            continue
        labels = frozenset((m["name"], m["value"]) for m in _LABEL.finditer(match["labels"] or ""))
        held[labels] = match["value"]
    return held


def _series(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset({"job": JOB, "namespace": NAMESPACE, "instance": "", **labels}.items())


async def _eventually_held(
    http: httpx.AsyncClient, pushgateway: ServerProcess, name: str, expected: dict[frozenset[tuple[str, str]], str]
) -> None:
    # DELETE is queued by the Pushgateway (202), so its effect may lag the answer a little.
    with trio.fail_after(5):
        while (held := await _held(http, pushgateway, name)) != expected:
            await trio.sleep(0.05)
    assert held == expected


# -- construction -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        pytest.param(
            Destination(kind=DestinationKind.REMOTE_WRITE, url="http://gw.test", name="gw"),
            "destination.kind",
            id="remote-write-kind",
        ),
        pytest.param(_destination("http://gw.test", job=None), "pushgateway_job", id="no-job"),
        pytest.param(_destination("http://gw.test", job=""), "pushgateway_job", id="empty-job"),
    ],
)
def test_bad_destination_is_refused_naming_the_field(destination: Destination, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PushgatewaySender(httpx.AsyncClient(), destination, namespace=NAMESPACE)


@pytest.mark.parametrize(
    ("base", "job", "expected"),
    [
        pytest.param("http://gw:9091", "fwd", "http://gw:9091/metrics/job/fwd/namespace/team-a", id="plain"),
        pytest.param("http://gw:9091/", "fwd", "http://gw:9091/metrics/job/fwd/namespace/team-a", id="trailing-slash"),
        pytest.param(
            "http://gw:9091", "a/b", "http://gw:9091/metrics/job@base64/YS9i/namespace/team-a", id="slash-job"
        ),
    ],
)
def test_group_url_is_job_and_namespace_under_the_base(base: str, job: str, expected: str) -> None:
    sender = PushgatewaySender(httpx.AsyncClient(), _destination(base, job=job), namespace=NAMESPACE)
    assert sender.group_url == expected


# -- what goes over the wire ------------------------------------------------------------------


@pytest.mark.slow
async def test_push_is_a_put_of_text_exposition_retried_on_503(http: httpx.AsyncClient) -> None:
    body = format_exposition([({"__name__": "tenant_up", "pod": "a"}, 1.0)])
    async with serve_scripted([Reply(status=503), Reply(status=200)]) as server:
        sender = PushgatewaySender(http, _destination(server.url), namespace=NAMESPACE)
        result = await sender.push(body)

    assert result == SendResult(outcome=SendOutcome.DELIVERED, status=200, attempts=2)
    assert [(r.method, r.target) for r in server.requests] == [("PUT", f"/metrics/job/{JOB}/namespace/{NAMESPACE}")] * 2
    assert all(r.headers["content-type"] == EXPOSITION_CONTENT_TYPE and r.body == body for r in server.requests)
    assert server.requests[1].headers["retry-attempt"] == "1"
    assert sender.statistics().samples_sent == 1


# -- a real Pushgateway -----------------------------------------------------------------------


@pytest.mark.slow
async def test_pushed_values_appear_under_job_and_namespace(
    pushgateway: ServerProcess, http: httpx.AsyncClient
) -> None:
    sender = PushgatewaySender(http, _destination(pushgateway.url), namespace=NAMESPACE)
    body = format_exposition(
        [({"__name__": "tenant_up", "pod": "a"}, 1.0), ({"__name__": "tenant_up", "pod": "b"}, 2.5)],
        types={"tenant_up": "gauge"},
    )

    result = await sender.push(body)

    assert result == SendResult(outcome=SendOutcome.DELIVERED, status=200, attempts=1)
    assert await _held(http, pushgateway, "tenant_up") == {_series(pod="a"): "1", _series(pod="b"): "2.5"}
    assert sender.statistics().samples_sent == 2


@pytest.mark.slow
async def test_second_push_without_a_series_removes_it(pushgateway: ServerProcess, http: httpx.AsyncClient) -> None:
    sender = PushgatewaySender(http, _destination(pushgateway.url), namespace=NAMESPACE)
    both = [({"__name__": "tenant_up", "pod": "a"}, 1.0), ({"__name__": "tenant_up", "pod": "b"}, 2.0)]
    assert (await sender.push(format_exposition(both))).outcome is SendOutcome.DELIVERED

    result = await sender.push(format_exposition([({"__name__": "tenant_up", "pod": "a"}, 3.0)]))

    assert result.outcome is SendOutcome.DELIVERED
    assert await _held(http, pushgateway, "tenant_up") == {_series(pod="a"): "3"}


@pytest.mark.slow
async def test_delete_group_removes_the_group_and_only_it(pushgateway: ServerProcess, http: httpx.AsyncClient) -> None:
    ours = PushgatewaySender(http, _destination(pushgateway.url), namespace=NAMESPACE)
    theirs = PushgatewaySender(http, _destination(pushgateway.url), namespace="team-b")
    body = format_exposition([({"__name__": "tenant_up", "pod": "a"}, 1.0)])
    assert (await ours.push(body)).outcome is SendOutcome.DELIVERED
    assert (await theirs.push(body)).outcome is SendOutcome.DELIVERED

    result = await ours.delete_group()

    assert result == SendResult(outcome=SendOutcome.DELIVERED, status=202, attempts=1)
    team_b = frozenset({"job": JOB, "namespace": "team-b", "instance": "", "pod": "a"}.items())
    await _eventually_held(http, pushgateway, "tenant_up", {team_b: "1"})


@pytest.mark.slow
async def test_push_with_timestamps_is_dropped_once_with_400(
    pushgateway: ServerProcess, http: httpx.AsyncClient
) -> None:
    requests: list[httpx.Request] = []

    async def note(request: httpx.Request) -> None:
        requests.append(request)

    http.event_hooks["request"].append(note)
    sender = PushgatewaySender(http, _destination(pushgateway.url), namespace=NAMESPACE)

    result = await sender.push(b"tenant_up 1 1700000000000\n")

    assert (result.outcome, result.status, result.attempts) == (SendOutcome.DROPPED, 400, 1)
    assert "timestamps" in (result.error or "")
    assert len(requests) == 1
    assert sender.statistics().samples_dropped_by_reason == (("http_400", 1),)
    assert await _held(http, pushgateway, "tenant_up") == {}
