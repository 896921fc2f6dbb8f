"""Parameter parsing: Prometheus' merge order, and refusal of every ambiguous encoding."""

from __future__ import annotations

import pytest

from mtproxy.proxy.errors import BadRequest
from mtproxy.proxy.params import FORM_CONTENT_TYPE, encode_form, parse_request_params


def _parse(query: str = "", body: str = "", *, method: str = "GET", content_type: str | None = None):  # type: ignore[no-untyped-def]
    return parse_request_params(
        method=method, query_string=query.encode(), content_type=content_type, body=body.encode()
    )


def test_body_values_come_before_url_values_as_go_form_does() -> None:
    params = _parse("match[]=a", "match[]=b", method="POST", content_type=FORM_CONTENT_TYPE)
    assert params.multi("match[]") == ("b", "a")


def test_plus_and_percent_escapes_decode_like_go() -> None:
    params = _parse("query=sum%28up%29+by+%28job%29&x=%E2%9C%93")
    assert params.single("query") == "sum(up) by (job)"
    assert params.single("x") == "\u2713"


def test_form_content_type_parameters_are_accepted() -> None:
    params = _parse("", "query=up", method="POST", content_type="application/x-www-form-urlencoded; charset=UTF-8")
    assert params.single("query") == "up"


def test_parameter_names_are_case_sensitive() -> None:
    params = _parse("Query=secret&query=up")
    assert params.single("query") == "up"
    assert params.single("Query") == "secret"


@pytest.mark.parametrize(
    ("query", "body", "method", "content_type", "fragment"),
    [
        pytest.param("query=up;query=secret", "", "GET", None, "semicolon", id="semicolon-separator"),
        pytest.param("query=up%2", "", "GET", None, "percent-encoding", id="truncated-escape"),
        pytest.param("query=up%zz", "", "GET", None, "percent-encoding", id="non-hex-escape"),
        pytest.param("query=%ff", "", "GET", None, "UTF-8", id="invalid-utf8"),
        pytest.param("", "query=up;x=1", "POST", FORM_CONTENT_TYPE, "semicolon", id="semicolon-in-body"),
        pytest.param("", "query=up", "GET", FORM_CONTENT_TYPE, "must not have a body", id="get-with-body"),
        pytest.param("", '{"query":"up"}', "POST", "application/json", "unsupported body", id="json-body"),
        pytest.param("", "--x\r\nquery", "POST", "multipart/form-data; boundary=x", "unsupported", id="multipart"),
        pytest.param("", "query=up", "PUT", FORM_CONTENT_TYPE, "must not have a body", id="put-body"),
    ],
)
def test_ambiguous_requests_are_refused(
    query: str, body: str, method: str, content_type: str | None, fragment: str
) -> None:
    with pytest.raises(BadRequest, match=fragment):
        _parse(query, body, method=method, content_type=content_type)


@pytest.mark.parametrize(
    ("query", "body"),
    [
        pytest.param("query=up&query=secret", "", id="twice-in-url"),
        pytest.param("query=secret", "query=up", id="url-and-body"),
    ],
)
def test_single_valued_parameter_given_twice_is_refused(query: str, body: str) -> None:
    params = _parse(query, body, method="POST", content_type=FORM_CONTENT_TYPE)
    with pytest.raises(BadRequest, match="given 2 times"):
        params.single("query")


def test_required_parameter_missing_is_named() -> None:
    with pytest.raises(BadRequest, match="'query' is required"):
        _parse("").single("query", required=True)


def test_encode_form_round_trips_every_character() -> None:
    value = 'sum(rate({job="a&b;c=d+e%f"}[5m])) \u2713 \n'
    encoded = encode_form([("query", value), ("match[]", "x")])
    params = _parse("", encoded.decode(), method="POST", content_type=FORM_CONTENT_TYPE)
    assert params.single("query") == value
    assert params.multi("match[]") == ("x",)


@pytest.mark.parametrize(
    ("query", "body"),
    [
        pytest.param("namespace=team-a&query=up&namespace=team-a", "", id="twice-in-url"),
        pytest.param("namespace=team-a", "namespace=team-a&query=up", id="url-repeated-in-body-as-promtool-does"),
    ],
)
def test_a_parameter_repeated_with_the_identical_value_is_one_value(query: str, body: str) -> None:
    params = _parse(query, body, method="POST", content_type=FORM_CONTENT_TYPE)
    assert params.single("namespace") == "team-a"
    assert params.single("query") == "up"


def test_a_parameter_repeated_with_another_value_is_still_refused() -> None:
    params = _parse("namespace=team-a", "namespace=team-b", method="POST", content_type=FORM_CONTENT_TYPE)
    with pytest.raises(BadRequest, match="'namespace' is given 2 times"):
        params.single("namespace")


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("match=up", id="match-alone"),
        pytest.param("match[]=up&match=secret", id="match-beside-match-brackets"),
    ],
)
def test_match_without_brackets_is_refused_not_ignored(query: str) -> None:
    """Prometheus reads only ``match[]``: a bare ``match`` would silently select everything visible."""
    with pytest.raises(BadRequest, match=r"'match' .*'match\[\]'"):
        _parse(query).multi("match[]")
