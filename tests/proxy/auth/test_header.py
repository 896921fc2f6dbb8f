"""``auth.type: none``: the named namespace is trusted as sent."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mtproxy.proxy.auth.base import AuthRequest, Tenant
from mtproxy.proxy.auth.header import HeaderAuthenticator
from mtproxy.proxy.errors import BadRequest, Unauthenticated

RequestFactory = Callable[..., AuthRequest]


@pytest.mark.parametrize(
    ("headers", "params", "namespace"),
    [
        pytest.param({"X-Tenant-Namespace": "team-a"}, {}, "team-a", id="header"),
        pytest.param({}, {"namespace": "team-b"}, "team-b", id="parameter"),
        pytest.param({"X-Tenant-Namespace": "team-a"}, {"namespace": "team-b"}, "team-a", id="header-wins"),
    ],
)
async def test_named_namespace_is_the_tenant(
    make_request: RequestFactory, headers: dict[str, str], params: dict[str, str], namespace: str
) -> None:
    tenant = await HeaderAuthenticator().authenticate(make_request(headers, params))
    assert tenant == Tenant(namespace=namespace, subject="header")


async def test_no_namespace_is_401_with_the_original_message(make_request: RequestFactory) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await HeaderAuthenticator().authenticate(make_request({"Authorization": "Bearer x"}))
    assert caught.value.message == "Authentication failed: no tenant information found in request"
    assert caught.value.status == 401


async def test_invalid_namespace_is_bad_request(make_request: RequestFactory) -> None:
    with pytest.raises(BadRequest):
        await HeaderAuthenticator().authenticate(make_request({"X-Tenant-Namespace": "Not_Valid"}))
