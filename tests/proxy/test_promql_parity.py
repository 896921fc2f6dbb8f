"""Tests for proxy/promql_parity.py: what the parser library accepts but Prometheus 2.42 would not.

Each refusal in the table says whether 2.42 also refuses the query; the slow test asks a real
Prometheus 2.42 and so keeps those claims honest, including the few places where the proxy
deliberately refuses a query that 2.42 accepts (the library would crash or misread it).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import promql_parser
import pytest
from realservers.prometheus import infrastructure_prometheus

from mtproxy.proxy.promql_parity import (
    AGGREGATIONS_2_42,
    FUNCTIONS_2_42,
    MAX_NESTING,
    PromQLError,
    PromQLSyntaxError,
    PromQLUnsupported,
    check_supported,
    parse_promql,
)
from mtproxy.proxy.promql_print import format_expr

_SAMPLE_ARGUMENT = {"vector": "x", "matrix": "x[5m]", "scalar": "1", "string": '"a"'}


def refused(query: str, construct: str, id: str, *, prometheus_refuses: bool | None = True) -> object:
    """A refused query; ``prometheus_refuses`` says what 2.42 does with it (None: not asked, as
    Prometheus itself takes minutes to format a query 10,000 levels deep)."""
    return pytest.param(query, construct, prometheus_refuses, id=id)


REFUSED = [
    # newer than 2.42
    refused('{a="b" or c="d"}', "{... or ...}", "or-inside-braces"),
    refused("limitk(2, x)", "limitk()", "limitk"),
    refused("limit_ratio(0.5, x)", "limit_ratio()", "limit-ratio"),
    refused("info(x)", "info()", "info"),
    refused('sort_by_label(x, "a")', "sort_by_label()", "sort-by-label"),
    refused('sort_by_label_desc(x, "a")', "sort_by_label_desc()", "sort-by-label-desc"),
    refused("mad_over_time(x[5m])", "mad_over_time()", "mad-over-time"),
    refused("double_exponential_smoothing(x[5m], 0.5, 0.5)", "double_exponential_smoothing()", "renamed-holt-winters"),
    refused("histogram_avg(x)", "histogram_avg()", "histogram-avg"),
    refused("histogram_stddev(x)", "histogram_stddev()", "histogram-stddev"),
    refused("histogram_stdvar(x)", "histogram_stdvar()", "histogram-stdvar"),
    refused("first_over_time(x[5m])", "first_over_time()", "first-over-time"),
    refused("ts_of_max_over_time(x[5m])", "ts_of_max_over_time()", "ts-of-max-over-time"),
    refused("start_timestamp(x)", "start_timestamp()", "start-timestamp"),
    refused("step()", "step()", "duration-function-step"),
    refused("a + fill(0) b", "+ fill(...)", "fill"),
    refused("a + fill_left(0) b", "+ fill(...)", "fill-left"),
    # regular expressions Go's regexp rejects but Rust's accepts
    refused('x{a=~"(?<n>a)"}', "'(?<n>a)'", "angle-named-group"),
    refused('x{a=~"(?x)a b"}', "'(?x)a b'", "verbose-flag"),
    refused('x{a!~"a{1001}"}', "'a{1001}'", "repeat-over-1000"),
    # label names Prometheus cannot spell
    refused('{"foo.bar"="x"}', "'foo.bar'", "dotted-label-name"),
    # out of range
    refused("x[293y]", "range", "range-beyond-go-duration"),
    refused("x offset 293y", "offset", "offset-beyond-go-duration"),
    # deliberate: 2.42 accepts these, the library would crash or misread them
    refused("(" * 10_000 + "x" + ")" * 10_000, "query", "parentheses-10000-deep", prometheus_refuses=None),
    refused(" + ".join(["x"] * 10_000), "query", "operator-chain-10000-long", prometheus_refuses=None),
    refused("-" * 10_000 + "x", "query", "unary-10000-deep", prometheus_refuses=None),
    refused(
        "(" * (MAX_NESTING + 1) + "x" + ")" * (MAX_NESTING + 1),
        "query",
        "one-bracket-over-the-limit",
        prometheus_refuses=False,
    ),
    refused(" + ".join(["x"] * (MAX_NESTING + 2)), "query", "one-operator-over-the-limit", prometheus_refuses=False),
    refused('x{a="\\xff"}', "\\xff", "hex-escape-high-byte", prometheus_refuses=False),
    refused('x{a="\\377"}', "\\377", "octal-escape-high-byte", prometheus_refuses=False),
    refused("x{a=`\\`}", "\\`", "raw-string-ending-in-backslash", prometheus_refuses=False),
    refused("x @ -100", "@ timestamp", "negative-at", prometheus_refuses=False),
    refused("x @ 1e15", "@ timestamp", "at-beyond-year-9999", prometheus_refuses=False),
]


@pytest.mark.parametrize(("query", "construct", "prometheus_refuses"), REFUSED)
def test_unsupported_construct_is_refused_by_name(query: str, construct: str, prometheus_refuses: bool | None) -> None:
    with pytest.raises(PromQLUnsupported) as refusal:
        parse_promql(query)
    assert refusal.value.construct.startswith(construct)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("sum(", id="unclosed"),
        pytest.param("x offset 0s", id="zero-offset"),
        pytest.param('x{a=~"("}', id="bad-regex"),
        pytest.param('{a=~".*"}', id="only-empty-matchers"),
        pytest.param('x{__name__="y"}', id="name-twice"),
        pytest.param("", id="empty"),
    ],
)
def test_unparseable_query_is_a_syntax_error(query: str) -> None:
    with pytest.raises(PromQLSyntaxError):
        parse_promql(query)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(r"x{a=~`\d+`}", id="raw-string-regex-escape"),
        pytest.param(r"`raw\string`", id="raw-string-unknown-escape"),
    ],
)
def test_library_refuses_raw_strings_with_unknown_escapes(query: str) -> None:
    """A known gap: 2.42 reads these; the library does not, so they get a 400."""
    with pytest.raises(PromQLSyntaxError, match="unknown escape sequence"):
        parse_promql(query)


def _aggregation_call(op: str) -> str:
    parameter = {"topk": "1, ", "bottomk": "1, ", "quantile": "0.5, ", "count_values": '"a", '}.get(op, "")
    return f"{op}({parameter}x)"


SUPPORTED = [
    pytest.param("holt_winters(x[5m], 0.5, 0.5)", id="holt-winters"),
    pytest.param('x{a="\\x7f\\x41\\101"}', id="low-byte-escapes"),
    pytest.param('x{a="\\u00ff"}', id="unicode-escape-of-high-code-point"),
    pytest.param('x{a="\\\\xff"}', id="escaped-backslash-before-xff"),
    pytest.param("x{a=`\\\\`}", id="raw-string-with-two-backslashes"),
    pytest.param('x{a=~"(?P<n>a)"}', id="p-named-group"),
    pytest.param('x{a=~"(?i)a"}', id="case-flag"),
    pytest.param('x{a=~"\\\\(?<a"}', id="escaped-parenthesis-before-question-mark"),
    pytest.param('x{a=~"[(?<]"}', id="parenthesis-in-class"),
    pytest.param('x{a=~"\\\\pL+"}', id="unicode-class"),
    pytest.param('x{a=~"a{1000}"}', id="repeat-1000"),
    pytest.param("x[292y]", id="longest-range"),
    pytest.param("x @ 1e10", id="at-far-future"),
    pytest.param("sum by (on, bool) (x) > bool on(group_left) y", id="keyword-labels"),
    pytest.param("(" * (MAX_NESTING - 1) + "x" + ")" * (MAX_NESTING - 1), id="nesting-at-the-limit"),
    *(pytest.param(_aggregation_call(op), id=f"aggregation-{op}") for op in sorted(AGGREGATIONS_2_42)),
    *(
        pytest.param(f"{name}({', '.join(_SAMPLE_ARGUMENT[t] for t in args)})", id=f"function-{name}")
        for name, (args, _variadic, _returns) in sorted(FUNCTIONS_2_42.items())
    ),
]


@pytest.mark.parametrize("query", SUPPORTED)
def test_construct_of_2_42_is_accepted(query: str) -> None:
    check_supported(parse_promql(query))


def test_refusals_are_400_bad_data() -> None:
    with pytest.raises(PromQLError) as refusal:
        parse_promql("limitk(2, x)")
    assert isinstance(refusal.value, ValueError)
    assert (refusal.value.status, refusal.value.error_type) == (400, "bad_data")
    assert str(refusal.value) == "limitk(): is not an aggregation of Prometheus 2.42"


def test_or_matchers_set_by_a_rewriter_are_refused() -> None:
    tree = promql_parser.parse("x")
    eq = promql_parser.Matcher(promql_parser.MatchOp.Equal, "a", "b")
    tree.matchers = promql_parser.Matchers([]).with_or_matchers([[eq], [eq]])
    with pytest.raises(PromQLUnsupported, match="'or' inside"):
        check_supported(tree)


def test_unknown_node_type_is_refused() -> None:
    with pytest.raises(PromQLUnsupported, match="does not know"):
        check_supported(object())  # type: ignore[arg-type]


# -- Prometheus 2.42 as the oracle ------------------------------------------------------------

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = infrastructure_prometheus(tmp_path_factory.mktemp("promql-parity"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def prometheus_parses(url: str, query: str) -> bool:
    params = urllib.parse.urlencode({"query": query})
    try:
        with _NO_PROXY.open(f"{url}/api/v1/format_query?{params}", timeout=60) as response:
            return bool(json.load(response)["status"] == "success")
    except urllib.error.HTTPError as error:
        assert json.load(error)["errorType"] == "bad_data"
        return False


@pytest.mark.slow
@pytest.mark.parametrize(("query", "construct", "prometheus_refuses"), REFUSED)
def test_prometheus_agrees_with_each_refusal(
    prometheus_url: str, query: str, construct: str, prometheus_refuses: bool | None
) -> None:
    if prometheus_refuses is None:
        pytest.skip("Prometheus 2.42 needs minutes to format this query")
    assert prometheus_parses(prometheus_url, query) is not prometheus_refuses


@pytest.mark.slow
@pytest.mark.parametrize("query", SUPPORTED)
def test_prometheus_accepts_each_supported_construct(prometheus_url: str, query: str) -> None:
    assert prometheus_parses(prometheus_url, format_expr(parse_promql(query)))
    assert prometheus_parses(prometheus_url, query)
