"""watch_events decoding, on canned streams served by an httpx MockTransport.

The double cannot be told to send a malformed line, an unknown event type or a 500
ERROR event, so these cases use canned answers; the request the watch sent is checked
too.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from kubetesting import CONFIGMAPS, http_config

from mtproxy.controller.client import KubeClient
from mtproxy.controller.errors import Gone, NotFound, RetryableError
from mtproxy.controller.watch import EventType, WatchEvent, watch_events


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def _client(status: int, body: bytes, sent: list[httpx.Request]) -> KubeClient:
    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status, content=body)

    http = httpx.AsyncClient(base_url="http://double.invalid", transport=httpx.MockTransport(answer))
    return KubeClient(http, config=http_config("http://double.invalid"))


async def _collect(client: KubeClient) -> list[WatchEvent]:
    return [event async for event in watch_events(client, CONFIGMAPS, "ns", resource_version="7", timeout_s=60)]


async def test_decodes_events_skips_unknown_and_malformed_lines_and_asks_for_bookmarks() -> None:
    body = b"".join([
        _line("ADDED", {"metadata": {"name": "a", "resourceVersion": "8"}}),
        b"\n",
        b"not json\n",
        _line("SOMETHING_NEW", {"metadata": {"name": "x"}}),
        _line("BOOKMARK", {"metadata": {"resourceVersion": "9"}}),
        _line("DELETED", {"metadata": {"name": "a", "resourceVersion": "10"}}),
    ])
    sent: list[httpx.Request] = []
    events = await _collect(_client(200, body, sent))
    assert [(event.type, event.resource_version) for event in events] == [
        (EventType.ADDED, "8"),
        (EventType.BOOKMARK, "9"),
        (EventType.DELETED, "10"),
    ]
    (request,) = sent
    assert request.url.path == "/api/v1/namespaces/ns/configmaps"
    assert dict(request.url.params) == {
        "watch": "true", "allowWatchBookmarks": "true", "resourceVersion": "7", "timeoutSeconds": "60",
    }
    assert request.headers["Authorization"] == "Bearer test"


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        pytest.param(200, _line("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"}), Gone,
                     id="error-event-410"),
        pytest.param(200, _line("ERROR", {"kind": "Status", "code": 500, "reason": "InternalError"}),
                     RetryableError, id="error-event-500"),
        pytest.param(410, json.dumps({"kind": "Status", "code": 410, "reason": "Gone"}).encode(), Gone,
                     id="answer-410"),
        pytest.param(404, json.dumps({"kind": "Status", "code": 404, "reason": "NotFound"}).encode(), NotFound,
                     id="answer-404"),
    ],
)
async def test_errors_become_the_matching_api_error(status: int, body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        await _collect(_client(status, body, []))
