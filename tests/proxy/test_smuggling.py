"""Parameter smuggling: no trick in a request makes an unenforced value reach the backend.

Every request goes to the real proxy (hypercorn) in front of the real infrastructure
Prometheus, sent by httpx with explicit bytes or, where httpx would normalise the request,
written on a raw socket. For each, one of two outcomes is acceptable, and the test says which:

- refused: a 4xx answer in Prometheus's error envelope, and *nothing* reached the backend;
- served: every request the backend received carries only values the proxy built itself
  (known parameter names, every ``query``/``match[]`` selector inside the tenant's policy) and
  never the smuggled text.

The smuggled query is ``node_load1{smuggled="yes"}``: outside team-a's policy and easy to
find in the recorded bytes.
"""

from __future__ import annotations

import gzip
import json
from urllib.parse import quote

import httpx
import pytest
import trio
from realservers import LoadedPrometheus

from mtproxy.api import ProxyConfig
from mtproxy.proxy import AccessPolicy, enforced_matches

from .proxyharness import (
    TENANT_HEADER,
    RunningProxy,
    enforcement_problems,
    label_universe,
    metric_access,
    start_proxy,
)

pytestmark = pytest.mark.slow

SMUGGLED = 'node_load1{smuggled="yes"}'
SMUGGLED_FORM = "node_load1%7Bsmuggled%3D%22yes%22%7D"
MARKER = b"smuggled"
ACCESS = [
    metric_access("team-a", "app", ["http_.*", "up", "container_cpu_usage_seconds_total"]),
    metric_access("team-b", "app", ["up", "node_load1"]),
]
FORM = "application/x-www-form-urlencoded"
QUERY_FORWARDED = {"query", "time", "timeout", "stats"}


@pytest.fixture(scope="module")
def universe(infra_prometheus_with_data: LoadedPrometheus) -> list[dict[str, str]]:
    """The data set's label sets, each also moved to every namespace (see ``label_universe``)."""
    data = infra_prometheus_with_data.data
    return label_universe((s.metric for s in data.series), data.namespaces)


@pytest.fixture
async def proxy(nursery: trio.Nursery, infra_prometheus_with_data: LoadedPrometheus) -> RunningProxy:
    return await start_proxy(nursery, infra_prometheus_with_data.url, access=ACCESS)


@pytest.fixture
def end_s(infra_prometheus_with_data: LoadedPrometheus) -> int:
    return infra_prometheus_with_data.data.end_s


# -- the two acceptable outcomes -----------------------------------------------------------------


def assert_refused(status: int, body: bytes, proxy: RunningProxy, *, expected: int | None = None) -> dict[str, str]:
    """A 4xx Prometheus error envelope, and nothing sent to the backend."""
    assert proxy.recorder.calls == [], "a refused request reached the backend"
    if expected is not None:
        assert status == expected, body[:300]
    assert 400 <= status < 500, body[:300]
    envelope: dict[str, str] = json.loads(body)
    assert envelope["status"] == "error"
    assert envelope["errorType"] and envelope["error"]
    return envelope


def assert_enforced(
    proxy: RunningProxy,
    universe: list[dict[str, str]],
    *,
    forwarded: set[str],
    tenant: str = "team-a",
) -> None:
    """Something reached the backend, and all of it is the proxy's own enforced rebuild."""
    calls = proxy.recorder.calls
    assert calls, "nothing reached the backend"
    policy: AccessPolicy = proxy.policy(tenant)
    assert enforcement_problems(calls, policy, universe) == []
    for call in calls:
        assert MARKER not in call.raw
        assert call.names() <= forwarded, call.params
        assert len(call.values("query")) <= 1
        assert not {"x-tenant-namespace", "authorization", "x-scope-orgid", "x-smuggle"} & set(call.headers)


def assert_served(
    response: httpx.Response, proxy: RunningProxy, universe: list[dict[str, str]], *, forwarded: set[str]
) -> None:
    """A 200 success, and everything the backend received is enforced (``assert_enforced``)."""
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "success"
    assert_enforced(proxy, universe, forwarded=forwarded)


# -- duplicate and look-alike parameters ---------------------------------------------------------


@pytest.mark.parametrize(
    "query_string",
    [
        pytest.param(f"Query={SMUGGLED_FORM}&query=up", id="capitalised-name"),
        pytest.param(f"QUERY={SMUGGLED_FORM}&query=up", id="upper-case-name"),
        pytest.param(f"query%00={SMUGGLED_FORM}&query=up", id="name-with-nul"),
        pytest.param(f"query[]={SMUGGLED_FORM}&query=up", id="name-with-brackets"),
        pytest.param(f"query%3D{SMUGGLED_FORM}=1&query=up", id="encoded-equals-in-name"),
        pytest.param(f"query=up&%26query={SMUGGLED_FORM}", id="encoded-ampersand-in-name"),
        pytest.param(f"+query={SMUGGLED_FORM}&query=up", id="plus-before-name"),
    ],
)
async def test_look_alike_parameter_name_is_dropped(
    proxy: RunningProxy, universe: list[dict[str, str]], end_s: int, query_string: str
) -> None:
    response = await proxy.request("GET", f"/api/v1/query?{query_string}&time={end_s}", tenant="team-a")
    assert_served(response, proxy, universe, forwarded=QUERY_FORWARDED)
    assert [r["metric"]["__name__"] for r in response.json()["data"]["result"]] == ["up"] * 4


@pytest.mark.parametrize(
    ("target", "body"),
    [
        pytest.param(f"query=up&query={SMUGGLED_FORM}", None, id="query-twice-in-url"),
        pytest.param(f"query={SMUGGLED_FORM}&query=up", None, id="smuggled-first"),
        pytest.param(f"%71uery={SMUGGLED_FORM}&query=up", None, id="percent-encoded-name"),
        pytest.param(f"query={SMUGGLED_FORM}", "query=up", id="url-and-body"),
        pytest.param("query=up", f"query={SMUGGLED_FORM}", id="body-and-url"),
        pytest.param("", f"query=up&query={SMUGGLED_FORM}", id="query-twice-in-body"),
        pytest.param("time=1&time=2&query=up", None, id="time-twice"),
    ],
)
async def test_parameter_given_twice_is_refused(proxy: RunningProxy, target: str, body: str | None) -> None:
    method, content = ("POST", body.encode()) if body is not None else ("GET", None)
    headers = {"Content-Type": FORM} if body is not None else {}
    response = await proxy.request(method, f"/api/v1/query?{target}", tenant="team-a", content=content, headers=headers)
    envelope = assert_refused(response.status_code, response.content, proxy, expected=400)
    assert "given 2 times" in envelope["error"]


async def test_match_in_url_and_body_are_both_enforced(proxy: RunningProxy, universe: list[dict[str, str]]) -> None:
    response = await proxy.request(
        "POST",
        "/api/v1/series?match[]=up",
        tenant="team-a",
        content=b"match%5B%5D=%7Bjob%3D%22kubelet%22%7D&match[]=" + SMUGGLED_FORM.encode(),
        headers={"Content-Type": FORM},
    )
    assert_served(response, proxy, universe, forwarded={"match[]", "start", "end"})
    (call,) = proxy.recorder.calls
    assert set(call.values("match[]")) == set(
        enforced_matches(proxy.policy("team-a"), ('{job="kubelet"}', SMUGGLED, "up"))
    )
    assert len(call.values("match[]")) == 2
    names = {series["__name__"] for series in response.json()["data"]}
    assert names == {"up", "container_cpu_usage_seconds_total"}


# -- separators and escapes inside values --------------------------------------------------------


@pytest.mark.parametrize("separator", ["&", ";", "&query=", "\n"])
async def test_encoded_separator_stays_inside_the_label_value(
    proxy: RunningProxy, universe: list[dict[str, str]], end_s: int, separator: str
) -> None:
    value = f"a{separator}query={SMUGGLED}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    query = quote(f'up{{job="{escaped}"}}', safe="")
    response = await proxy.request("GET", f"/api/v1/query?query={query}&time={end_s}", tenant="team-a")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["result"] == []
    (call,) = proxy.recorder.calls
    assert call.values("query") == (f'{{__name__="up",job="{escaped}",namespace="team-a"}}',)
    assert call.names() == {"query", "time"}
    assert enforcement_problems([call], proxy.policy("team-a"), universe) == []


async def test_encoded_ampersand_in_time_stays_a_time_value(
    proxy: RunningProxy, universe: list[dict[str, str]]
) -> None:
    """A value is forwarded as one value: the backend sees a bad ``time``, never a second query."""
    response = await proxy.request("GET", f"/api/v1/query?query=up&time=1%26query%3D{SMUGGLED_FORM}", tenant="team-a")
    assert response.status_code == 400
    (call,) = proxy.recorder.calls
    assert call.values("query") == ('{__name__="up",namespace="team-a"}',)
    assert call.values("time") == (f"1&query={SMUGGLED}",)
    assert enforcement_problems([call], proxy.policy("team-a"), universe) == []


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(f"query=up%3Bquery%3D{SMUGGLED_FORM}", id="encoded-semicolon-in-value"),
        pytest.param(f"query=up%26query%3D{SMUGGLED_FORM}", id="encoded-ampersand-in-value"),
        pytest.param(f"query=up;query={SMUGGLED_FORM}", id="semicolon-separator"),
        pytest.param(f"x=1;query={SMUGGLED_FORM}&query=up", id="semicolon-inside-unknown-parameter"),
        pytest.param("query=up%ZZ", id="malformed-escape"),
        pytest.param("query=up%7", id="truncated-escape"),
        pytest.param("query=up%FF", id="invalid-utf8"),
        pytest.param("query=up%00", id="nul-in-query"),
        pytest.param("query=", id="empty-query"),
        pytest.param("", id="no-query"),
    ],
)
async def test_ambiguous_or_broken_query_string_is_refused(proxy: RunningProxy, target: str) -> None:
    response = await proxy.request("GET", f"/api/v1/query?{target}", tenant="team-a")
    assert_refused(response.status_code, response.content, proxy, expected=400)


async def test_fragment_marker_does_not_end_the_query_string(proxy: RunningProxy) -> None:
    """httpx would strip ``#…``; on the wire it is part of the query, so query is given twice."""
    answer = await proxy.raw(
        f"GET /api/v1/query?query=up#&query={SMUGGLED_FORM} HTTP/1.1\r\nHost: x\r\n{TENANT_HEADER}: team-a".encode()
    )
    assert_refused(answer.status, answer.body, proxy, expected=400)


# -- bodies ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "content_type", "body"),
    [
        pytest.param("GET", FORM, f"query={SMUGGLED_FORM}", id="get-with-form-body"),
        pytest.param("GET", None, f"query={SMUGGLED_FORM}", id="get-with-untyped-body"),
        pytest.param("POST", "application/json", json.dumps({"query": SMUGGLED}), id="json-body"),
        pytest.param("POST", "text/plain", f"query={SMUGGLED_FORM}", id="text-body"),
        pytest.param("POST", None, f"query={SMUGGLED_FORM}", id="post-without-content-type"),
        pytest.param(
            "POST",
            "multipart/form-data; boundary=b",
            f'--b\r\nContent-Disposition: form-data; name="query"\r\n\r\n{SMUGGLED}\r\n--b--\r\n',
            id="multipart",
        ),
        pytest.param("POST", FORM, f"query=%C3%28{SMUGGLED_FORM}", id="invalid-utf8-in-body"),
        pytest.param("POST", FORM, f"query=up;query={SMUGGLED_FORM}", id="semicolon-in-body"),
        pytest.param("POST", FORM, gzip.compress(f"query={SMUGGLED_FORM}".encode()), id="gzip-form"),
    ],
)
async def test_body_the_proxy_cannot_read_as_prometheus_does_is_refused(
    proxy: RunningProxy, method: str, content_type: str | None, body: str | bytes
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if isinstance(body, bytes):
        headers["Content-Encoding"] = "gzip"
    content = body if isinstance(body, bytes) else body.encode()
    response = await proxy.request(method, "/api/v1/query?query=up", tenant="team-a", content=content, headers=headers)
    assert_refused(response.status_code, response.content, proxy, expected=400)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
async def test_other_methods_are_refused(proxy: RunningProxy, method: str) -> None:
    response = await proxy.request(
        method, "/api/v1/query", tenant="team-a", content=b"query=up", headers={"Content-Type": FORM}
    )
    assert response.status_code == 405
    if method != "HEAD":
        assert_refused(response.status_code, response.content, proxy, expected=405)
    assert proxy.recorder.calls == []


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("Application/X-WWW-Form-Urlencoded", id="mixed-case"),
        pytest.param(f"{FORM}; charset=utf-8", id="with-charset"),
    ],
)
async def test_form_body_is_read_and_enforced(
    proxy: RunningProxy, universe: list[dict[str, str]], end_s: int, content_type: str
) -> None:
    response = await proxy.request(
        "POST",
        "/api/v1/query",
        tenant="team-a",
        content=f"query=count(up)&time={end_s}&x={SMUGGLED_FORM}".encode(),
        headers={"Content-Type": content_type},
    )
    assert_served(response, proxy, universe, forwarded=QUERY_FORWARDED)
    assert response.json()["data"]["result"][0]["value"][1] == "4"


async def test_chunked_body_is_merged_like_any_other(proxy: RunningProxy) -> None:
    body = f"query={SMUGGLED_FORM}".encode()
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    answer = await proxy.raw(
        b"POST /api/v1/query?query=up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: " + FORM.encode() + b"\r\n" + TENANT_HEADER.encode() + b": team-a",
        chunked,
    )
    assert_refused(answer.status, answer.body, proxy, expected=400)


async def test_content_length_and_chunked_together_read_one_body(proxy: RunningProxy) -> None:
    """h11 frames by Transfer-Encoding; the smuggled text inside the chunk is one duplicated query."""
    body = f"query={SMUGGLED_FORM}".encode()
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    answer = await proxy.raw(
        b"POST /api/v1/query?query=up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: " + FORM.encode() + b"\r\n" + TENANT_HEADER.encode() + b": team-a",
        chunked,
    )
    assert_refused(answer.status, answer.body, proxy, expected=400)


async def test_two_content_types_are_refused(proxy: RunningProxy) -> None:
    response = await proxy.request(
        "POST",
        "/api/v1/query",
        tenant="team-a",
        content=b"query=up",
        headers=[("Content-Type", FORM), ("Content-Type", "text/plain")],
    )
    assert_refused(response.status_code, response.content, proxy, expected=400)


async def test_body_larger_than_the_limit_is_413(
    nursery: trio.Nursery, infra_prometheus_with_data: LoadedPrometheus
) -> None:
    proxy = await start_proxy(
        nursery,
        infra_prometheus_with_data.url,
        access=ACCESS,
        config=ProxyConfig(enable_metrics=True, max_request_body_bytes=1024),
    )
    body = b"query=" + b"up%20or%20" * 400 + b"up"
    answer = await proxy.raw(
        b"POST /api/v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: " + FORM.encode() + b"\r\nX-Tenant-Namespace: team-a",
        body,
    )
    assert_refused(answer.status, answer.body, proxy, expected=413)


# -- unknown parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "known", "forwarded"),
    [
        pytest.param("/api/v1/query", "query=up&time={end}", QUERY_FORWARDED, id="query"),
        pytest.param(
            "/api/v1/query_range",
            "query=up&start={start}&end={end}&step=60",
            {"query", "start", "end", "step", "timeout", "stats"},
            id="query-range",
        ),
        pytest.param("/api/v1/series", "match[]=up", {"match[]", "start", "end"}, id="series"),
        pytest.param("/api/v1/labels", "match[]=up", {"match[]", "start", "end"}, id="labels"),
        pytest.param("/api/v1/label/job/values", "match[]=up", {"match[]", "start", "end"}, id="label-values"),
        pytest.param("/federate", "match[]=up", {"match[]"}, id="federate"),
    ],
)
async def test_unknown_parameters_never_reach_the_backend(
    proxy: RunningProxy, universe: list[dict[str, str]], end_s: int, path: str, known: str, forwarded: set[str]
) -> None:
    unknown = (
        f"limit=1&lookback_delta=1h&dedup=false&partial_response=true&x={SMUGGLED_FORM}"
        f"&max_source_resolution=1h&engine=thanos&namespace=team-b&{SMUGGLED_FORM}=1"
    )
    target = f"{path}?{known.format(end=end_s, start=end_s - 600)}&{unknown}"
    response = await proxy.request("GET", target, tenant="team-a")
    assert response.status_code == 200, response.text
    assert_enforced(proxy, universe, forwarded=forwarded)


async def test_client_headers_are_not_forwarded(
    proxy: RunningProxy, universe: list[dict[str, str]], end_s: int
) -> None:
    response = await proxy.get(
        "/api/v1/query",
        {"query": "up", "time": end_s},
        tenant="team-a",
        headers={"Authorization": "Bearer x", "X-Scope-OrgID": "team-b", "X-Smuggle": SMUGGLED},
    )
    assert_served(response, proxy, universe, forwarded=QUERY_FORWARDED)


# -- who the tenant is -----------------------------------------------------------------------------


async def test_namespace_parameter_loses_to_the_header(
    proxy: RunningProxy, universe: list[dict[str, str]], end_s: int
) -> None:
    response = await proxy.get("/api/v1/query", {"query": "up", "time": end_s, "namespace": "team-b"}, tenant="team-a")
    assert_served(response, proxy, universe, forwarded=QUERY_FORWARDED)
    assert {r["metric"]["namespace"] for r in response.json()["data"]["result"]} == {"team-a"}


async def test_namespace_in_body_loses_to_the_header(
    proxy: RunningProxy, universe: list[dict[str, str]], end_s: int
) -> None:
    response = await proxy.post(
        "/api/v1/query", {"query": "up", "time": str(end_s), "namespace": "team-b"}, tenant="team-a"
    )
    assert_served(response, proxy, universe, forwarded=QUERY_FORWARDED)
    assert {r["metric"]["namespace"] for r in response.json()["data"]["result"]} == {"team-a"}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([(TENANT_HEADER, "team-a"), (TENANT_HEADER, "team-b")], id="twice"),
        pytest.param([("x-tenant-namespace", "team-a"), ("X-TENANT-NAMESPACE", "team-a")], id="twice-other-case"),
        pytest.param([(TENANT_HEADER, "team-a, team-b")], id="comma-list"),
        pytest.param([(TENANT_HEADER, "TEAM-A")], id="upper-case"),
        pytest.param([(TENANT_HEADER, "team-a/../team-b")], id="path-like"),
    ],
)
async def test_ambiguous_tenant_header_is_refused(proxy: RunningProxy, headers: list[tuple[str, str]]) -> None:
    response = await proxy.request("GET", "/api/v1/query?query=up", tenant=None, headers=headers)
    assert_refused(response.status_code, response.content, proxy, expected=400)


async def test_httpx_refuses_to_send_a_header_with_a_line_break(proxy: RunningProxy) -> None:
    with pytest.raises((httpx.LocalProtocolError, ValueError)):
        await proxy.get("/api/v1/query", {"query": "up"}, tenant="team-a\r\nX-Tenant-Namespace: team-b")
    assert proxy.recorder.calls == []


@pytest.mark.parametrize(
    "header_lines",
    [
        pytest.param(f"{TENANT_HEADER}: team-a\r\n{TENANT_HEADER}: team-b", id="injected-second-header"),
        pytest.param(f"{TENANT_HEADER}: team-b\r\n team-a", id="obsolete-line-folding"),
        pytest.param(f"{TENANT_HEADER}: team-a\x00team-b", id="nul-in-value"),
        pytest.param(f"{TENANT_HEADER}: team-a\rX-Other: 1", id="bare-carriage-return"),
        pytest.param(f"{TENANT_HEADER} : team-a", id="space-before-colon"),
    ],
)
async def test_header_injection_on_the_wire_is_refused(proxy: RunningProxy, header_lines: str) -> None:
    answer = await proxy.raw(f"GET /api/v1/query?query=up HTTP/1.1\r\nHost: x\r\n{header_lines}".encode())
    assert 400 <= answer.status < 500
    assert proxy.recorder.calls == []


# -- paths --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/api/v1/query/?query=up", id="trailing-slash"),
        pytest.param("GET", "//api/v1/query?query=up", id="double-slash"),
        pytest.param("GET", "/api/v1/../v1/status/config", id="dot-segments"),
        pytest.param("GET", "/api/v1/query/../status/config", id="dot-segments-after-route"),
        pytest.param("GET", "/api/v1/label/__name__%2F..%2F/values", id="encoded-slash-in-label"),
        pytest.param("GET", "/api/v1/label/..%2F..%2Fstatus%2Fconfig/values", id="encoded-traversal-in-label"),
        pytest.param("GET", "/api/v1/query%3Fquery=up", id="encoded-question-mark"),
        pytest.param("GET", "/API/V1/QUERY?query=up", id="upper-case-path"),
        pytest.param("GET", "/api/v1/status/config", id="status-config"),
        pytest.param("GET", "/api/v1/status/flags", id="status-flags"),
        pytest.param("GET", "/api/v1/targets", id="targets"),
        pytest.param("POST", "/api/v1/admin/tsdb/delete_series?match[]=up", id="admin-delete-series"),
        pytest.param("POST", "/api/v1/admin/tsdb/snapshot", id="admin-snapshot"),
        pytest.param("POST", "/api/v1/write", id="remote-write"),
        pytest.param("POST", "/api/v1/read", id="remote-read"),
        pytest.param("POST", "/-/reload", id="reload"),
        pytest.param("POST", "/-/quit", id="quit"),
        pytest.param("GET", "/graph", id="ui"),
        pytest.param("GET", "http://127.0.0.1/api/v1/status/config", id="absolute-form-target"),
    ],
)
async def test_path_outside_the_route_table_is_404(proxy: RunningProxy, method: str, path: str) -> None:
    answer = await proxy.raw(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{TENANT_HEADER}: team-a".encode())
    envelope = assert_refused(answer.status, answer.body, proxy, expected=404)
    assert envelope["errorType"] == "not_found"


async def test_invalid_label_name_in_path_is_refused(proxy: RunningProxy) -> None:
    answer = await proxy.raw(
        f"GET /api/v1/label/job%22%7D%20or%20%7B__name__%3D~%22.%2B/values HTTP/1.1\r\nHost: x\r\n"
        f"{TENANT_HEADER}: team-a".encode()
    )
    assert_refused(answer.status, answer.body, proxy, expected=400)


async def test_lower_case_method_is_read_as_get_and_enforced(
    proxy: RunningProxy, universe: list[dict[str, str]], end_s: int
) -> None:
    answer = await proxy.raw(
        f"get /api/v1/query?query=up&time={end_s} HTTP/1.1\r\nHost: x\r\n{TENANT_HEADER}: team-a".encode()
    )
    assert answer.status in (200, 405)
    if answer.status == 200:
        assert_enforced(proxy, universe, forwarded=QUERY_FORWARDED)
    else:
        assert proxy.recorder.calls == []


# -- size ---------------------------------------------------------------------------------------------


async def test_very_long_query_is_refused_not_forwarded(proxy: RunningProxy) -> None:
    response = await proxy.post("/api/v1/query", {"query": " or ".join(["up"] * 20_000)}, tenant="team-a")
    assert_refused(response.status_code, response.content, proxy, expected=400)


async def test_very_long_label_value_is_enforced(
    proxy: RunningProxy, universe: list[dict[str, str]], end_s: int
) -> None:
    value = "a" * 200_000
    response = await proxy.post("/api/v1/query", {"query": f'up{{job="{value}"}}', "time": str(end_s)}, tenant="team-a")
    assert_served(response, proxy, universe, forwarded=QUERY_FORWARDED)
    (call,) = proxy.recorder.calls
    assert call.values("query") == (f'{{__name__="up",job="{value}",namespace="team-a"}}',)


async def test_url_far_beyond_the_header_limit_is_refused(proxy: RunningProxy) -> None:
    value = "a" * 1_000_000
    answer = await proxy.raw(
        f"GET /api/v1/query?query=up{{job=%22{value}%22}} HTTP/1.1\r\nHost: x\r\n{TENANT_HEADER}: team-a".encode()
    )
    assert 400 <= answer.status < 500
    assert proxy.recorder.calls == []


# -- match[] and format_query ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "match",
    [
        pytest.param("up or node_load1", id="binary-expression"),
        pytest.param("sum(node_load1)", id="aggregation"),
        pytest.param("up offset 5m", id="offset"),
        pytest.param("up[5m]", id="range"),
        pytest.param("http_.*", id="bare-regex"),
        pytest.param('{__name__=~".+" or job="x"}', id="or-inside-braces"),
        pytest.param("", id="empty"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/series", "/api/v1/labels", "/api/v1/label/job/values", "/federate"])
async def test_match_that_is_not_a_plain_selector_is_refused(proxy: RunningProxy, path: str, match: str) -> None:
    response = await proxy.request("GET", f"{path}?match[]=up&match[]={quote(match, safe='')}", tenant="team-a")
    assert_refused(response.status_code, response.content, proxy, expected=400)


async def test_format_query_forwards_only_text_the_proxy_parsed(proxy: RunningProxy) -> None:
    nested = "(" * 501 + "up" + ")" * 501
    refused = await proxy.post("/api/v1/query", {"query": nested}, tenant="team-a")
    assert_refused(refused.status_code, refused.content, proxy, expected=400)
    response = await proxy.post("/api/v1/format_query", {"query": nested}, tenant="team-a")
    assert_refused(response.status_code, response.content, proxy, expected=400)


# -- HTTP/2 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "headers", "body"),
    [
        pytest.param("query=up", [(TENANT_HEADER, "team-a"), (TENANT_HEADER, "team-b")], None, id="tenant-twice"),
        pytest.param(f"query=up&query={SMUGGLED_FORM}", [(TENANT_HEADER, "team-a")], None, id="query-twice"),
        pytest.param("query=up", [(TENANT_HEADER, "team-a")], f"query={SMUGGLED_FORM}", id="url-and-body"),
    ],
)
async def test_http2_requests_are_refused_alike(
    proxy: RunningProxy, target: str, headers: list[tuple[str, str]], body: str | None
) -> None:
    """Cleartext HTTP/2 (prior knowledge) reaches the same checks as HTTP/1.1."""
    pytest.importorskip("h2")
    async with httpx.AsyncClient(http1=False, http2=True, trust_env=False) as h2_client:
        if body is None:
            response = await h2_client.get(f"{proxy.base_url}/api/v1/query?{target}", headers=headers)
        else:
            response = await h2_client.post(
                f"{proxy.base_url}/api/v1/query?{target}",
                content=body.encode(),
                headers=[*headers, ("Content-Type", FORM)],
            )
    assert response.http_version == "HTTP/2"
    assert_refused(response.status_code, response.content, proxy, expected=400)


async def test_http2_request_is_enforced(proxy: RunningProxy, universe: list[dict[str, str]], end_s: int) -> None:
    pytest.importorskip("h2")
    async with httpx.AsyncClient(http1=False, http2=True, trust_env=False) as h2_client:
        response = await h2_client.get(
            f"{proxy.base_url}/api/v1/query?query=up&time={end_s}&x={SMUGGLED_FORM}", headers={TENANT_HEADER: "team-a"}
        )
    assert response.http_version == "HTTP/2"
    assert_served(response, proxy, universe, forwarded=QUERY_FORWARDED)
