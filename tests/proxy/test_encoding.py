"""gzip between backend and client: asked for only when the client accepts it, passed through, never redone.

The real-server tests check both ends: what the backend was asked for (``Accept-Encoding``
as it left the proxy) and what the client got. A backend that answers with another
tenant's series, gzipped, shows that a body the result check changed is never replaced
by the backend's compressed bytes.
"""

from __future__ import annotations

import functools
import gzip
import json

import pytest
import trio
from realservers import LoadedPrometheus

from mtproxy.proxy.encoding import BodyDecoder, accepts_gzip
from mtproxy.proxy.errors import BackendError

from .proxyharness import metric_access, start_proxy
from .rawhttp import read_request_head


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("deflate, br", False),
        ("gzip;q=0", False),
        ("gzip; q=0.0, *", False),
        ("gzip;q=0.5", True),
        ("*", True),
        ("*;q=0", False),
        ("br, *;q=0.1", True),
        ("identity", False),
        ("gzip;q=bogus", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def decode_body(raw: bytes, content_encoding: str | None) -> bytes:
    """A whole body through the decoder in one chunk."""
    decoder = BodyDecoder(content_encoding)
    decoder.feed(raw)
    return decoder.finish()


def test_decode_body_handles_what_the_proxy_asks_for_and_names_the_rest() -> None:
    body = b'{"status":"success"}' * 100
    assert decode_body(body, None) is body
    assert decode_body(body, "identity") is body
    assert decode_body(gzip.compress(body), "gzip") == body
    with pytest.raises(BackendError, match="'br'"):
        decode_body(body, "br")
    with pytest.raises(BackendError, match="corrupt"):
        decode_body(b"not gzip at all", "gzip")
    with pytest.raises(BackendError, match="truncated"):
        decode_body(gzip.compress(body)[:-12], "gzip")


def test_an_answer_past_the_bound_is_refused_however_it_is_encoded() -> None:
    bomb = gzip.compress(b"\0" * (8 << 20))  # 8 MiB of zeros in about 8 KiB
    decoder = BodyDecoder("gzip", max_bytes=1 << 20)
    with pytest.raises(BackendError, match="larger than 1048576 bytes"):
        for start in range(0, len(bomb), 1024):
            decoder.feed(bomb[start : start + 1024])
        decoder.finish()
    plain = BodyDecoder(None, max_bytes=10)
    plain.feed(b"0123456789")
    with pytest.raises(BackendError, match="larger than 10 bytes"):
        plain.feed(b"!")
    exact = BodyDecoder("gzip", max_bytes=10)
    exact.feed(gzip.compress(b"0123456789"))
    assert exact.finish() == b"0123456789"


ACCESS = [metric_access("team-a", "app", ["up", "http_.*"])]


@pytest.mark.slow
async def test_gzip_reaches_the_client_only_when_it_asked_and_the_answer_is_the_same(
    nursery: trio.Nursery, infra_prometheus_with_data: LoadedPrometheus
) -> None:
    proxy = await start_proxy(nursery, infra_prometheus_with_data.url, access=ACCESS)
    params = {"query": "up", "time": str(infra_prometheus_with_data.data.end_s)}

    zipped = await proxy.get("/api/v1/query", params, tenant="team-a", headers={"Accept-Encoding": "gzip"})
    (call,) = proxy.recorder.take()
    assert call.headers["accept-encoding"] == "gzip"
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert int(zipped.headers["content-length"]) < len(zipped.content)  # httpx decoded what came compressed

    plain = await proxy.get("/api/v1/query", params, tenant="team-a", headers={"Accept-Encoding": "identity"})
    (call,) = proxy.recorder.take()
    assert call.headers["accept-encoding"] == "identity"
    assert "content-encoding" not in plain.headers
    assert int(plain.headers["content-length"]) == len(plain.content)

    assert zipped.json() == plain.json()
    namespaces = {item["metric"].get("namespace") for item in plain.json()["data"]["result"]}
    assert namespaces == {"team-a"}


async def _lying_backend(stream: trio.SocketStream) -> None:
    """Answers every request with a gzipped vector holding team-a's and team-b's series."""
    if await read_request_head(stream) is None:
        return
    document = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"__name__": "up", "namespace": "team-a"}, "value": [1, "1"]},
                {"metric": {"__name__": "up", "namespace": "team-b"}, "value": [1, "1"]},
            ],
        },
    }
    body = gzip.compress(json.dumps(document).encode())
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    await stream.send_all(head.encode() + body)
    await stream.aclose()


@pytest.mark.slow
async def test_a_body_the_check_changed_is_never_replaced_by_the_backends_gzip(nursery: trio.Nursery) -> None:
    (listener,) = await nursery.start(functools.partial(trio.serve_tcp, _lying_backend, 0, host="127.0.0.1"))
    port = listener.socket.getsockname()[1]
    proxy = await start_proxy(nursery, f"http://127.0.0.1:{port}", access=ACCESS)

    answer = await proxy.get("/api/v1/query", {"query": "up"}, tenant="team-a", headers={"Accept-Encoding": "gzip"})

    assert answer.status_code == 200
    assert "content-encoding" not in answer.headers
    assert [item["metric"]["namespace"] for item in answer.json()["data"]["result"]] == ["team-a"]
    assert await proxy.violations() == 1
