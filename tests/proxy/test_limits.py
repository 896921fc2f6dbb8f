"""Request limits: query size, range length, points per series, rewrite growth."""

from __future__ import annotations

import pytest
import trio

from mtproxy.api import ProxyConfig
from mtproxy.proxy.errors import BadRequest
from mtproxy.proxy.limits import QueryLimits
from mtproxy.proxy.params import RequestParams

from .proxyharness import metric_access, start_proxy
from .slowbackend import start_slow_backend

DAY_MS = 86_400_000
LIMITS = QueryLimits(max_query_bytes=100, max_query_range_ms=DAY_MS, max_points=1_000)


def _range(start: str, end: str, step: str | None = None) -> RequestParams:
    values = {"start": (start,), "end": (end,)}
    if step is not None:
        values["step"] = (step,)
    return RequestParams(values=values)


def test_a_query_of_the_limit_passes_and_one_byte_more_is_refused() -> None:
    LIMITS.check_size("the query", 100)
    with pytest.raises(BadRequest, match=r"101 bytes, more than the 100 allowed \(proxy.max_query_bytes\)"):
        LIMITS.check_size("the query", 101)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param(
            _range("0", str(86_401)),
            r"query time range exceeds the limit \(query length: 1d1s, limit: 1d\)",
            id="range-in-seconds",
        ),
        pytest.param(
            _range("2024-01-01T00:00:00Z", "2024-01-02T00:00:00.5+00:00"),
            r"query length: 1d500ms",
            id="range-in-rfc3339",
        ),
        pytest.param(
            _range("2024-01-01T02:00:00+02:00", "2024-01-02T00:00:01Z"), r"query length: 1d1s", id="rfc3339-offsets"
        ),
        pytest.param(_range("0", "1000", "1"), r"maximum resolution of 1000 points .* has 1001\)", id="points"),
        pytest.param(_range("0", "3600", "1s"), r"maximum resolution of 1000 points", id="step-as-duration"),
        pytest.param(_range("0", "60", "0"), r"zero or negative query resolution step", id="zero-step"),
        pytest.param(_range("yesterday", "60", "1"), r"invalid parameter 'start'", id="unreadable-start"),
        pytest.param(_range("0", "NaN", "1"), r"invalid parameter 'end'", id="nan-end"),
        pytest.param(_range("0", "60", "a while"), r"invalid parameter 'step'", id="unreadable-step"),
    ],
)
def test_a_range_beyond_a_limit_is_refused_naming_it(params: RequestParams, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        LIMITS.check_range(params)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(_range("0", "86400"), id="exactly-the-range"),
        pytest.param(_range("0", "999", "1"), id="exactly-the-points"),
        pytest.param(RequestParams(values={"start": ("0",)}), id="no-end-the-backend-says-so"),
        pytest.param(_range("100", "0", "1"), id="end-before-start-the-backend-says-so"),
    ],
)
def test_a_range_within_the_limits_passes(params: RequestParams) -> None:
    LIMITS.check_range(params)


def test_without_range_limits_nothing_is_read() -> None:
    QueryLimits(max_query_bytes=100).check_range(_range("yesterday", "today", "never"))


@pytest.mark.parametrize(
    ("given", "sent", "refused"),
    [
        pytest.param(10, 100, False, id="small-queries-may-grow-up-to-max-query-bytes"),
        pytest.param(100, 150, False, id="one-and-a-half-times"),
        pytest.param(100, 151, True, id="beyond-both"),
    ],
)
def test_rewrite_growth_is_bounded_by_the_larger_of_the_factor_and_the_size_limit(
    given: int, sent: int, refused: bool
) -> None:
    limits = QueryLimits(max_query_bytes=100)
    if refused:
        with pytest.raises(BadRequest, match=rf"grows from {given} to {sent} bytes .* 3 access rules"):
            limits.check_growth("the query", given, sent, rules=3)
    else:
        limits.check_growth("the query", given, sent, rules=3)


ACCESS = [metric_access("team-a", "app", ["up"])]
CONFIG = ProxyConfig(enable_metrics=True, max_query_bytes=1024, max_query_range="1d", max_points=1_000)


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        pytest.param(
            "/api/v1/query_range",
            {"query": "up", "start": "0", "end": "100000", "step": "60"},
            "query time range exceeds the limit",
            id="range",
        ),
        pytest.param(
            "/api/v1/query_range",
            {"query": "up", "start": "0", "end": "3600", "step": "1"},
            "maximum resolution of 1000 points",
            id="points",
        ),
        pytest.param("/api/v1/query", {"query": "up" + " " * 1100}, "proxy.max_query_bytes", id="query-size"),
        pytest.param(
            "/api/v1/series", [("match[]", f'up{{pod="{i:0>200}"}}') for i in range(6)], "match[]", id="match-size"
        ),
    ],
)
async def test_the_proxy_refuses_beyond_its_limits_before_the_backend(
    nursery: trio.Nursery, path: str, params: dict[str, str] | list[tuple[str, str]], message: str
) -> None:
    backend = await start_slow_backend(nursery, slow_s=0)
    proxy = await start_proxy(nursery, backend.url, access=ACCESS, config=CONFIG)
    response = await proxy.post(path, params, tenant="team-a")
    assert response.status_code == 400, response.text
    assert response.json()["errorType"] == "bad_data"
    assert message in response.json()["error"]
    assert backend.requests == 0


async def test_a_range_query_within_the_limits_is_served(nursery: trio.Nursery) -> None:
    backend = await start_slow_backend(nursery, slow_s=0)
    proxy = await start_proxy(nursery, backend.url, access=ACCESS, config=CONFIG)
    response = await proxy.post(
        "/api/v1/query_range", {"query": "up", "start": "0", "end": "3600", "step": "15s"}, tenant="team-a"
    )
    assert response.status_code == 200, response.text


async def test_debug_enforce_refuses_a_query_over_the_size_limit(nursery: trio.Nursery) -> None:
    backend = await start_slow_backend(nursery, slow_s=0)
    proxy = await start_proxy(nursery, backend.url, access=ACCESS, config=CONFIG)
    response = await proxy.get("/debug/enforce", {"query": "up" + " " * 1100}, tenant="team-a")
    assert response.status_code == 400, response.text
    assert "proxy.max_query_bytes" in response.json()["error"]
