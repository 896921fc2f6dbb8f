"""The proxy's fairness and limit keys: defaults and validation."""

from __future__ import annotations

import pytest

from mtproxy.api import APIValidationError
from mtproxy.api.config_schema import parse_config


def test_defaults_leave_range_and_points_unlimited_and_the_share_derived() -> None:
    proxy = parse_config({}).config.proxy
    assert proxy.max_concurrent_requests_per_tenant is None  # a quarter of max_concurrent_requests
    assert proxy.max_query_bytes == 256 * 1024
    assert proxy.max_query_range is None and proxy.max_points is None


def test_the_keys_are_read() -> None:
    raw = {"proxy": {"max_concurrent_requests_per_tenant": 3, "max_query_range": "31d", "max_points": 11_000}}
    proxy = parse_config(raw).config.proxy
    assert (proxy.max_concurrent_requests_per_tenant, proxy.max_query_range, proxy.max_points) == (3, "31d", 11_000)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("max_concurrent_requests_per_tenant", 0, id="no-share"),
        pytest.param("max_query_bytes", 0, id="no-bytes"),
        pytest.param("max_query_range", "0s", id="zero-range"),
        pytest.param("max_query_range", "30", id="range-without-unit"),
        pytest.param("max_points", -1, id="negative-points"),
    ],
)
def test_bad_values_name_their_key(key: str, value: object) -> None:
    with pytest.raises(APIValidationError, match=f"proxy.{key}"):
        parse_config({"proxy": {key: value}})
