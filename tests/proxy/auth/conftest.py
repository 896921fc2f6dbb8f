"""Fixtures for the auth plugin tests: requests built from plain headers and parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from mtproxy.proxy.auth.base import AuthRequest
from mtproxy.proxy.params import RequestParams

RequestFactory = Callable[..., AuthRequest]


def build_request(
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str | tuple[str, ...]] | None = None,
    *,
    method: str = "GET",
    path: str = "/api/v1/query",
) -> AuthRequest:
    """An ``AuthRequest`` with lower-cased header names, as the server builds it."""
    values = {name: (value,) if isinstance(value, str) else value for name, value in (params or {}).items()}
    return AuthRequest(
        method=method,
        path=path,
        headers={name.lower(): value for name, value in (headers or {}).items()},
        params=RequestParams(values=values),
    )


@pytest.fixture
def make_request() -> RequestFactory:
    return build_request
