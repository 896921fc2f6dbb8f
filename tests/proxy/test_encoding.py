"""Content coding: backends answer plain, the proxy gzips for clients that accept it.

The real-server tests check both ends: what the backend was asked for (``Accept-Encoding``
as it left the proxy) and what the client got, on the wire and decoded. A backend that
answers gzip anyway, with another tenant's series in it, shows that the body the client
gets is the checked one, compressed by the proxy, never the backend's bytes.
"""

from __future__ import annotations

import gzip
import json

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from realservers import LoadedPrometheus

from mtproxy.api import ProxyConfig
from mtproxy.proxy.encoding import COMPRESS_MIN_BYTES, BodyDecoder, accepts_gzip, gzip_encode
from mtproxy.proxy.errors import BackendError

from .proxyharness import metric_access, start_proxy
from .rawhttp import Handler, answering, serve_on_loopback


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


@given(st.binary(max_size=64 * 1024) | st.text(max_size=8 * 1024).map(str.encode))
def test_what_the_proxy_compresses_any_gzip_reader_restores(body: bytes) -> None:
    assert gzip.decompress(gzip_encode(body)) == body


def test_a_prometheus_answer_compresses_as_well_as_prometheus_does_it() -> None:
    series = [
        {"metric": {"__name__": "up", "namespace": "team-a", "pod": f"api-{i:04d}"}, "value": [1.5, str(i)]}
        for i in range(1000)
    ]
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": series}}).encode()
    assert len(gzip_encode(body)) < len(gzip.compress(body, compresslevel=6)) * 1.25


ACCESS = [metric_access("team-a", "app", ["up", "http_.*"])]


@pytest.mark.slow
async def test_the_backend_answers_plain_and_the_client_gets_gzip_only_when_it_asked(
    nursery: trio.Nursery, infra_prometheus_with_data: LoadedPrometheus
) -> None:
    proxy = await start_proxy(nursery, infra_prometheus_with_data.url, access=ACCESS)
    params = {"query": '{__name__=~"up|http_.*"}', "time": str(infra_prometheus_with_data.data.end_s)}

    zipped = await proxy.get("/api/v1/query", params, tenant="team-a", headers={"Accept-Encoding": "gzip"})
    (call,) = proxy.recorder.take()
    assert call.headers["accept-encoding"] == "identity"
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert int(zipped.headers["content-length"]) < len(zipped.content)  # httpx decoded what came compressed

    plain = await proxy.get("/api/v1/query", params, tenant="team-a", headers={"Accept-Encoding": "identity"})
    (call,) = proxy.recorder.take()
    assert call.headers["accept-encoding"] == "identity"
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    assert int(plain.headers["content-length"]) == len(plain.content)

    assert zipped.json() == plain.json()
    assert len(plain.content) >= COMPRESS_MIN_BYTES
    namespaces = {item["metric"].get("namespace") for item in plain.json()["data"]["result"]}
    assert namespaces == {"team-a"}


@pytest.mark.slow
async def test_backend_compression_asks_the_backend_for_gzip_and_answers_the_same(
    nursery: trio.Nursery, infra_prometheus_with_data: LoadedPrometheus
) -> None:
    params = {"query": '{__name__=~"up|http_.*"}', "time": str(infra_prometheus_with_data.data.end_s)}
    proxy = await start_proxy(
        nursery,
        infra_prometheus_with_data.url,
        access=ACCESS,
        config=ProxyConfig(enable_metrics=True, backend_compression=True),
    )
    for accept in ("gzip", "identity"):
        answer = await proxy.get("/api/v1/query", params, tenant="team-a", headers={"Accept-Encoding": accept})
        (call,) = proxy.recorder.take()
        assert call.headers["accept-encoding"] == "gzip"
        assert answer.headers.get("content-encoding") == ("gzip" if accept == "gzip" else None)
        assert {item["metric"]["namespace"] for item in answer.json()["data"]["result"]} == {"team-a"}


async def test_a_small_answer_goes_out_as_it_is(
    nursery: trio.Nursery, infra_prometheus_with_data: LoadedPrometheus
) -> None:
    proxy = await start_proxy(nursery, infra_prometheus_with_data.url, access=ACCESS)
    answer = await proxy.get(
        "/api/v1/query", {"query": "up == -1"}, tenant="team-a", headers={"Accept-Encoding": "gzip"}
    )
    assert answer.status_code == 200
    assert len(answer.content) < COMPRESS_MIN_BYTES
    assert "content-encoding" not in answer.headers
    assert "vary" not in answer.headers


_FOREIGN_POD = "pod-of-team-b-7f9c"


def _lying_backend() -> Handler:
    """Answers gzipped, though asked for identity, with team-a's series and one of team-b's."""
    result = [
        {"metric": {"__name__": "up", "namespace": "team-a", "pod": f"a-{i}"}, "value": [1, "1"]} for i in range(50)
    ]
    result.insert(25, {"metric": {"__name__": "up", "namespace": "team-b", "pod": _FOREIGN_POD}, "value": [1, "1"]})
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
    return answering(200, gzip.compress(body), encoding="gzip")


@pytest.mark.slow
async def test_the_client_gets_the_checked_body_compressed_never_the_backends_bytes(nursery: trio.Nursery) -> None:
    proxy = await start_proxy(nursery, await serve_on_loopback(nursery, _lying_backend()), access=ACCESS)

    raw = await proxy.raw(
        b"GET /api/v1/query?query=up HTTP/1.1\r\nHost: proxy\r\nX-Tenant-Namespace: team-a\r\nAccept-Encoding: gzip"
    )

    assert raw.status == 200
    assert raw.headers["content-encoding"] == "gzip"
    plain = gzip.decompress(raw.body)
    assert _FOREIGN_POD.encode() not in plain
    assert [item["metric"]["namespace"] for item in json.loads(plain)["data"]["result"]] == ["team-a"] * 50
    assert await proxy.violations() == 1


def _big_backend(series: int) -> Handler:
    """Answers plain with ``series`` team-a series (about 110 bytes each)."""
    result = [
        {"metric": {"__name__": "up", "namespace": "team-a", "pod": f"a-{i:07d}"}, "value": [1, "1"]}
        for i in range(series)
    ]
    return answering(
        200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
    )


@pytest.mark.slow
async def test_an_answer_of_megabytes_is_compressed_off_the_event_loop_and_arrives_whole(
    nursery: trio.Nursery,
) -> None:
    proxy = await start_proxy(nursery, await serve_on_loopback(nursery, _big_backend(30_000)), access=ACCESS)

    raw = await proxy.raw(
        b"GET /api/v1/query?query=up HTTP/1.1\r\nHost: proxy\r\nX-Tenant-Namespace: team-a\r\nAccept-Encoding: gzip"
    )

    assert raw.status == 200
    assert raw.headers["content-encoding"] == "gzip"
    plain = gzip.decompress(raw.body)
    assert len(plain) > 2 << 20  # past the size that moves compression to a worker thread
    assert len(json.loads(plain)["data"]["result"]) == 30_000


@pytest.mark.slow
async def test_accept_encoding_given_in_two_header_lines_counts_as_one_list(nursery: trio.Nursery) -> None:
    proxy = await start_proxy(nursery, await serve_on_loopback(nursery, _big_backend(100)), access=ACCESS)

    raw = await proxy.raw(
        b"GET /api/v1/query?query=up HTTP/1.1\r\nHost: proxy\r\nX-Tenant-Namespace: team-a\r\n"
        b"Accept-Encoding: br\r\nAccept-Encoding: gzip"
    )

    assert raw.status == 200
    assert raw.headers["content-encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(raw.body))["data"]["result"]) == 100
