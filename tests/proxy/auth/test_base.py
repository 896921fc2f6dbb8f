"""The namespace rules every plugin shares, and bearer-token parsing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mtproxy.proxy.auth.base import AuthRequest, bearer_token, requested_namespace, select_namespace
from mtproxy.proxy.errors import BadRequest, Forbidden, ProxyError, Unauthenticated

RequestFactory = Callable[..., AuthRequest]


@pytest.mark.parametrize(
    ("headers", "params", "expected"),
    [
        pytest.param({"X-Tenant-Namespace": "team-a"}, {}, "team-a", id="header"),
        pytest.param({}, {"namespace": "team-b"}, "team-b", id="parameter-when-no-header"),
        pytest.param({"X-Tenant-Namespace": "team-a"}, {"namespace": "team-b"}, "team-a", id="header-wins"),
        pytest.param({"X-Tenant-Namespace": ""}, {"namespace": "team-b"}, "team-b", id="empty-header-is-absent"),
        pytest.param({}, {}, None, id="nothing-requested"),
        pytest.param({}, {"namespace": ""}, None, id="empty-parameter-is-absent"),
        pytest.param({"x-tenant-namespace": "a" * 63}, {}, "a" * 63, id="63-characters"),
    ],
)
def test_requested_namespace_reads_header_then_parameter(
    make_request: RequestFactory, headers: dict[str, str], params: dict[str, str], expected: str | None
) -> None:
    assert requested_namespace(make_request(headers, params)) == expected


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Team-A", id="upper-case"),
        pytest.param("team_a", id="underscore"),
        pytest.param("-team", id="leading-dash"),
        pytest.param("team-", id="trailing-dash"),
        pytest.param("a" * 64, id="64-characters"),
        pytest.param("team.a", id="dot"),
        pytest.param("team a", id="space"),
        pytest.param('x"} or vector(1)', id="injection-attempt"),
    ],
)
def test_requested_namespace_that_is_not_a_dns_label_is_bad_request(make_request: RequestFactory, name: str) -> None:
    with pytest.raises(BadRequest, match="not a valid namespace name"):
        requested_namespace(make_request({"X-Tenant-Namespace": name}))
    with pytest.raises(BadRequest, match="not a valid namespace name"):
        requested_namespace(make_request({}, {"namespace": name}))


def test_namespace_parameter_given_twice_is_bad_request(make_request: RequestFactory) -> None:
    with pytest.raises(BadRequest, match="given 2 times"):
        requested_namespace(make_request({}, {"namespace": ("a", "b")}))


@pytest.mark.parametrize(
    ("headers", "granted", "expected"),
    [
        pytest.param({"X-Tenant-Namespace": "b"}, ("a", "b"), "b", id="requested-and-granted"),
        pytest.param({}, ("a",), "a", id="one-granted-none-requested"),
        pytest.param({"X-Tenant-Namespace": "c"}, ("a", "b"), Forbidden, id="requested-not-granted"),
        pytest.param({}, ("a", "b"), BadRequest, id="several-granted-none-requested"),
        pytest.param({}, (), Forbidden, id="nothing-granted"),
        pytest.param({"X-Tenant-Namespace": "a"}, (), Forbidden, id="requested-nothing-granted"),
    ],
)
def test_select_namespace(
    make_request: RequestFactory, headers: dict[str, str], granted: tuple[str, ...], expected: str | type[ProxyError]
) -> None:
    request = make_request(headers)
    if isinstance(expected, str):
        assert select_namespace(request, granted) == expected
    else:
        with pytest.raises(expected):
            select_namespace(request, granted)


def test_several_granted_none_requested_says_to_set_the_header(make_request: RequestFactory) -> None:
    with pytest.raises(BadRequest, match="X-Tenant-Namespace"):
        select_namespace(make_request(), ("a", "b"))


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        pytest.param("Bearer abc.def", "abc.def", id="bearer"),
        pytest.param("bearer abc", "abc", id="scheme-case-insensitive"),
        pytest.param("Bearer   abc  ", "abc", id="surrounding-space"),
        pytest.param(None, None, id="missing"),
        pytest.param("Basic dXNlcjpwdw==", None, id="other-scheme"),
        pytest.param("Bearer", None, id="no-token"),
        pytest.param("Bearer ", None, id="empty-token"),
        pytest.param("abc", None, id="no-scheme"),
    ],
)
def test_bearer_token(make_request: RequestFactory, authorization: str | None, expected: str | None) -> None:
    request = make_request({} if authorization is None else {"Authorization": authorization})
    if expected is not None:
        assert bearer_token(request) == expected
    else:
        with pytest.raises(Unauthenticated, match="Authorization: Bearer"):
            bearer_token(request)
