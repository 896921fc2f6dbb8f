"""Tests for proxy/promql_print.py: every printed query parses back to the tree it came from.

The oracle for "same meaning" is structural: ``tree_shape(parse(format_expr(parse(q))))``
must equal ``tree_shape(parse(q))``, walking both trees node by node (never ``str()``). The
slow tests ask a real Prometheus 2.42 the same question: it must accept every printed query
and format it exactly as it formats the original.
"""

from __future__ import annotations

import datetime
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import promql_parser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from promql_parser import (
    AggregateExpr,
    BinaryExpr,
    Call,
    Expr,
    Matcher,
    Matchers,
    MatchOp,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorSelector,
)
from realservers.prometheus import infrastructure_prometheus

from mtproxy.proxy.promql_parity import MAX_NESTING, PromQLUnsupported, parse_promql
from mtproxy.proxy.promql_print import Piece, format_duration_ms, format_expr, format_number, quote_string

# -- the structural oracle ------------------------------------------------------------------


def tree_shape(expr: Expr, *, parens: bool = True) -> list[object]:
    """Each node in pre-order as (kind, fields..., number of children): equal lists, equal trees.

    A metric name counts as its ``__name__="..."`` matcher, the spelling the printer may use.
    With ``parens=False`` ParenExpr nodes are skipped, for trees built without them.
    """
    shape: list[object] = []
    pending = [expr]
    while pending:
        node = pending.pop()
        if not parens and isinstance(node, ParenExpr):
            pending.append(node.expr)
            continue
        fields, children = _node_fields(node)
        shape.append((*fields, len(children)))
        pending.extend(reversed(children))
    return shape


def _node_fields(node: Expr) -> tuple[tuple[object, ...], list[Expr]]:
    if isinstance(node, VectorSelector):
        return ("selector", *_selector_fields(node)), []
    if isinstance(node, MatrixSelector):
        return ("matrix", node.range, *_selector_fields(node.vector_selector)), []
    if isinstance(node, SubqueryExpr):
        step = node.step or None
        return ("subquery", node.range, step, node.offset or None, _at(node.at)), [node.expr]
    if isinstance(node, Call):
        return ("call", node.func.name), list(node.args)
    if isinstance(node, AggregateExpr):
        mod = node.modifier
        grouping = None if mod is None else (str(mod.type), tuple(mod.labels))
        params = [] if node.param is None else [node.param]
        return ("aggregate", str(node.op), grouping), [*params, node.expr]
    if isinstance(node, BinaryExpr):
        return ("binary", str(node.op), _bin_modifier(node)), [node.lhs, node.rhs]
    if isinstance(node, UnaryExpr):
        return ("unary",), [node.expr]
    if isinstance(node, ParenExpr):
        return ("paren",), [node.expr]
    if isinstance(node, NumberLiteral):
        value = node.val
        return ("number", "NaN" if math.isnan(value) else (value, math.copysign(1.0, value))), []
    if isinstance(node, StringLiteral):
        return ("string", node.val), []
    raise AssertionError(f"unknown node {type(node).__name__}")


def _selector_fields(selector: VectorSelector) -> tuple[object, ...]:
    def matcher(m: Matcher) -> tuple[str, str, str]:
        return (m.name, str(m.op), m.value)

    named = [("__name__", str(MatchOp.Equal), selector.name)] if selector.name else []
    matchers = tuple(named + [matcher(m) for m in selector.matchers.matchers])
    alternatives = tuple(tuple(matcher(m) for m in group) for group in selector.matchers.or_matchers)
    return matchers, alternatives, selector.offset or None, _at(selector.at)


def _at(at: promql_parser.AtModifier | None) -> object:
    if at is None:
        return None
    return (str(at.type), at.at if at.type == promql_parser.AtModifierType.At else None)


def _bin_modifier(node: BinaryExpr) -> object:
    mod = node.modifier
    if mod is None:
        return None
    matching = None if mod.matching is None else (str(mod.matching.type), tuple(mod.matching.labels))
    fill = mod.fill_values
    fills = None if fill is None else (fill.lhs, fill.rhs)
    return (str(mod.card), matching, mod.return_bool, tuple(mod.group_labels or ()), fills)


# -- the table ------------------------------------------------------------------------------


def case(query: str, id: str, *, prometheus: str | None = None) -> object:
    """A round-trip case; ``prometheus`` is the 2.42 spelling when the original is not one."""
    return pytest.param(query, prometheus or query, id=id)


_OPERATOR_NAMES = {
    "+": "add", "-": "sub", "*": "mul", "/": "div", "%": "mod", "^": "pow", "atan2": "atan2", "==": "eq",
    "!=": "ne", ">": "gt", "<": "lt", ">=": "ge", "<=": "le", "and": "and", "or": "or", "unless": "unless",
}  # fmt: skip

ROUND_TRIPS = [
    # selectors and tricky label values
    case("up", "bare-name"),
    case('up{job="api"}', "name-and-matcher"),
    case('{__name__="up",job="api"}', "name-as-matcher"),
    case("job:http_requests:rate5m", "recording-rule-name"),
    case(r'up{job="a\"b"}', "value-with-double-quote"),
    case(r'up{job="a\\b"}', "value-with-backslash"),
    case(r"up{job=`a\b`}", "raw-string-with-backslash"),
    case('up{job=`a"b`}', "raw-string-with-double-quote"),
    case('up{job="a`b"}', "value-with-backtick"),
    case(r'up{job="a\nb"}', "value-with-newline-escape"),
    case("up{job=`a\nb`}", "raw-string-with-newline"),
    case(r'up{job="a}b",x="{,}"}', "value-with-braces-and-comma"),
    case(r'up{job="\"} or vector(1) or up{job=\""}', "value-that-injects-with-library-str"),
    case('up{job="é日本🙂"}', "unicode-value"),
    case(r'up{job="\u00e9\U0001F642"}', "unicode-escapes"),
    case(r'up{job="\x01\x7f\x41\101"}', "control-hex-and-octal-escapes"),
    case(r'up{job="\a\b\f\r\t\v"}', "named-control-escapes"),
    case(r'up{job="\u2028\u0085\u200b"}', "unprintable-unicode"),
    case(r'up{job="\ufffd"}', "replacement-character-escaped"),
    case("up{job='single \"quoted\" \\''}", "single-quoted-string"),
    case(r'up{job=~"a|b.*",env!="prod",team!~"x\\d+"}', "all-match-operators"),
    case('{on="x",bool="y",nan="z",inf="w"}', "keyword-label-names"),
    case("sum", "keyword-metric-name", prometheus='{__name__="sum"}'),
    case('{__name__="offset"}', "keyword-metric-name-as-matcher"),
    case('{__name__="metric.with.dots"}', "metric-name-that-is-no-identifier"),
    case('{"metric.with.dots"}', "quoted-metric-name", prometheus='{__name__="metric.with.dots"}'),
    case('x{"job"="a"}', "quoted-label-name", prometheus='x{job="a"}'),
    case("up # a comment", "comment"),
    # range selectors, subqueries, durations, offset and @
    case("x[5m]", "range"),
    case("x[1h30m]", "compound-range"),
    case("x[90s]", "seconds-over-a-minute"),
    case("x[1500ms]", "milliseconds"),
    case("x[90061001ms]", "day-hour-minute-second-ms"),
    case("x[1y]", "year"),
    case("x[2w]", "weeks"),
    case("x[292y]", "longest-duration"),
    case('x{a="b"}[5m] offset 1m', "range-offset"),
    case("x[5m] @ 100 offset -1m", "range-at-negative-offset"),
    case("x[5m:]", "subquery-default-step"),
    case("x[5m:1m]", "subquery-step"),
    case("rate(x[5m])[1h:1m]", "subquery-of-call"),
    case("x[5m:] offset 1m @ 100", "subquery-offset-at"),
    case("(a + b)[5m:]", "subquery-of-binary"),
    case("x offset 1m[5m:]", "subquery-of-offset-selector"),
    case("max_over_time(x[5m:30s] @ end())", "subquery-at-end"),
    case("x offset 5m", "offset"),
    case("x offset -5m", "negative-offset"),
    case("x @ 100", "at"),
    case("x @ 100.123", "at-milliseconds"),
    case("x @ 1.5", "at-fraction"),
    case("x @ 0", "at-epoch"),
    case("x @ 1e10", "at-far-future"),
    case("x @ start()", "at-start"),
    case("x @ end()", "at-end"),
    case("x offset 5m @ 100", "offset-then-at"),
    # functions
    case('label_replace(x, "dst", "$1", "src", "(.*)")', "label-replace"),
    case('label_join(x, "dst", ",", "a", "b", "c")', "label-join-variadic"),
    case("round(x)", "optional-argument-absent"),
    case("round(x, 0.5)", "optional-argument-present"),
    case("days_in_month()", "no-arguments-variadic"),
    case("time()", "time"),
    case("vector(1)", "vector"),
    case("clamp(x, -1, 1)", "negative-argument"),
    case("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))", "histogram-quantile"),
    case("holt_winters(x[5m], 0.5, 0.5)", "holt-winters-of-2-42"),
    case('absent(nonexistent{job="x"})', "absent"),
    # aggregations
    case("sum(x)", "sum"),
    case("sum by (job) (x)", "sum-by"),
    case("sum(x) by (job)", "sum-by-after"),
    case("sum without () (x)", "sum-without-nothing"),
    case("sum by () (x)", "sum-by-nothing"),
    case("avg without (instance, pod) (x)", "avg-without"),
    case("topk(3, x)", "topk"),
    case("bottomk(3, x)", "bottomk"),
    case("quantile(0.9, x)", "quantile"),
    case('count_values("le", x)', "count-values"),
    case('count_values without (a) ("le", x)', "count-values-without"),
    case("topk by (job) (scalar(y), x)", "topk-expression-parameter"),
    case("group(x)", "group"),
    case("stddev(x) + stdvar(x) + count(x) + min(x) + max(x) + avg(x)", "other-aggregations"),
    case("sum by (on, bool, group_left, offset) (x)", "keyword-grouping-labels"),
    # binary operators and modifiers
    *(case(f"a {op} b", f"operator-{name}") for op, name in _OPERATOR_NAMES.items()),
    case("a > bool 1", "bool"),
    case("1 == bool 2", "scalar-bool"),
    case("a + on(job) group_left(x) b", "on-group-left"),
    case("a * ignoring(pod) group_right b", "ignoring-group-right-no-labels"),
    case("a / on(job, instance) group_left(region, zone) b", "group-left-labels"),
    case("a and on() b", "on-nothing"),
    case("a or ignoring(x) b", "set-ignoring"),
    case("a + ignoring() b", "ignoring-nothing"),
    case("a > bool on(job) b", "bool-on"),
    # precedence and associativity
    case("-x^2", "unary-minus-below-pow"),
    case("2^3^2", "pow-right-assoc"),
    case("(2^3)^2", "pow-parenthesised"),
    case("-(a)^b", "unary-paren-pow"),
    case("a - b - c", "sub-left-assoc"),
    case("a - (b - c)", "sub-parenthesised"),
    case("a / b * c", "mul-left-assoc"),
    case("a / (b * c)", "mul-parenthesised"),
    case("1 + 2 * 3", "mul-above-add"),
    case("(1 + 2) * 3", "add-parenthesised"),
    case("a or b and c", "and-above-or"),
    case("(a or b) and c", "or-parenthesised"),
    case("a unless b or c", "unless-above-or"),
    case("a == b + c", "add-above-comparison"),
    case("-a * b", "unary-then-mul"),
    case("a * -b", "mul-unary-rhs"),
    case("a ^ -b", "pow-unary-rhs"),
    case("- -x", "double-unary"),
    case("-(-1)", "negated-negative-number"),
    case("-x offset 5m", "unary-of-offset"),
    # numbers and strings
    case("1", "integer"),
    case("1.5", "fraction"),
    case("-1.5", "negative"),
    case("0x1F", "hex"),
    case("010", "leading-zero"),
    case(".5", "leading-dot"),
    case("1e308", "huge"),
    case("1.7976931348623157e308", "max-float"),
    case("5e-324", "min-subnormal"),
    case("0.1", "inexact-decimal"),
    case("123456789012345678", "beyond-2-53"),
    case("NaN", "nan"),
    case("Inf", "inf"),
    case("-Inf", "negative-inf"),
    case("-0", "negative-zero"),
    case(r'"a\"b\\c"', "string-escapes"),
    case(r"`raw\nstring`", "raw-string-keeps-backslash-n"),
    case("'single'", "single-quoted"),
    # nested
    case(
        'sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) / ignoring(code) group_left '
        "sum by (job) (rate(http_requests_total[5m]))",
        "error-ratio",
    ),
    case("histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m] offset 1h)))", "nested-offset"),
    case("max_over_time((rate(x[1m]) > bool 0)[10m:30s] @ end())", "nested-subquery"),
    case('label_replace(-sum(x) by (a), "b", "$1", "a", "(.*)")', "nested-unary-aggregation"),
]


@pytest.mark.parametrize(("query", "prometheus"), ROUND_TRIPS)
def test_printed_query_parses_to_the_same_tree(query: str, prometheus: str) -> None:
    tree = parse_promql(query)
    printed = format_expr(tree)
    assert tree_shape(parse_promql(printed)) == tree_shape(tree)
    assert format_expr(parse_promql(printed)) == printed, "printing is not a fixed point"


@pytest.mark.parametrize(
    ("query", "printed"),
    [
        pytest.param(r'up{job="a\"b"}', r'up{job="a\"b"}', id="quote-escaped"),
        pytest.param(r"up{job=`a\b`}", r'up{job="a\\b"}', id="raw-string-requoted"),
        pytest.param("up{job=`a\nb`}", r'up{job="a\nb"}', id="raw-newline-escaped"),
        pytest.param('"\ufffd"', r'"\ufffd"', id="replacement-character-escaped"),
        pytest.param('"\x00\x1b\x7f"', r'"\x00\x1b\x7f"', id="control-characters"),
        pytest.param('"é\u2028"', r'"é\u2028"', id="unicode-kept-unprintable-escaped"),
        pytest.param("x[5m:]", "x[5m:]", id="subquery-default-step"),
        pytest.param("x[5m:1m]", "x[5m:1m]", id="subquery-step"),
        pytest.param("x[90s]", "x[1m30s]", id="compound-duration"),
        pytest.param("x[90061001ms]", "x[1d1h1m1s1ms]", id="milliseconds-kept"),
        pytest.param("x[14d]", "x[2w]", id="whole-weeks"),
        pytest.param("x[10d]", "x[10d]", id="days-not-split-into-weeks"),
        pytest.param("x offset -90m", "x offset -1h30m", id="negative-offset"),
        pytest.param("x offset 5m @ 100", "x @ 100 offset 5m", id="at-before-offset"),
        pytest.param("x @ 100.120", "x @ 100.12", id="at-milliseconds"),
        pytest.param("x @ end()", "x @ end()", id="at-end"),
        pytest.param("sum", '{__name__="sum"}', id="keyword-name-braced"),
        pytest.param("Offset", '{__name__="Offset"}', id="keyword-case-blind"),
        pytest.param('{"a.b"}', '{__name__="a.b"}', id="dotted-name-braced"),
        pytest.param("sum without() (x)", "sum without () (x)", id="without-nothing"),
        pytest.param("a + on(job) group_left(x) b", "a + on (job) group_left (x) b", id="group-left"),
        pytest.param("a * on(b) group_left c", "a * on (b) group_left () c", id="group-left-bare"),
        pytest.param("-x^2", "-x ^ 2", id="unary-pow"),
        pytest.param("1e308", "1e+308", id="exponent"),
        pytest.param("0x1F", "31", id="hex-as-decimal"),
        pytest.param("Inf", "Inf", id="inf"),
        pytest.param("nan", "NaN", id="nan"),
    ],
)
def test_printed_text(query: str, printed: str) -> None:
    assert format_expr(parse_promql(query)) == printed


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(r'up{job="a\"b"}', id="unescaped-quote"),
        pytest.param(r"up{job=`a\b`}", id="raw-string-loses-backslash"),
        pytest.param("x[5m:]", id="subquery-becomes-range"),
        pytest.param("x[1500ms]", id="milliseconds-dropped"),
    ],
)
def test_library_str_changes_meaning(query: str) -> None:
    """Why the printer exists: the library's own str() reads back as something else."""
    tree = parse_promql(query)
    try:
        reread = tree_shape(promql_parser.parse(str(tree)))
    except ValueError:
        return
    assert reread != tree_shape(tree)


# -- rewritten trees --------------------------------------------------------------------------


def _substitute(query: str, replacements: dict[str, str]) -> Expr:
    """Replace selectors by name with parsed expressions, as the enforcement rewriter does."""

    def replace(node: Expr) -> Expr | None:
        if isinstance(node, VectorSelector) and node.name in replacements:
            return promql_parser.parse(replacements[node.name])
        return None

    return promql_parser.transform(promql_parser.parse(query), post_visit=replace)


@pytest.mark.parametrize(
    ("query", "replacements", "printed"),
    [
        pytest.param("a * b", {"a": "c + d"}, "(c + d) * b", id="lower-precedence-lhs"),
        pytest.param("a - b", {"b": "c - d"}, "a - (c - d)", id="left-assoc-rhs"),
        pytest.param("a - b", {"a": "c - d"}, "c - d - b", id="left-assoc-lhs"),
        pytest.param("a ^ b", {"a": "c ^ d"}, "(c ^ d) ^ b", id="right-assoc-lhs"),
        pytest.param("a ^ b", {"b": "c ^ d"}, "a ^ c ^ d", id="right-assoc-rhs"),
        pytest.param("a ^ b", {"a": "-2"}, "(-2) ^ b", id="negative-number-under-pow"),
        pytest.param("a ^ b", {"a": "-c"}, "(-c) ^ b", id="unary-under-pow"),
        pytest.param("-a", {"a": "c + d"}, "-(c + d)", id="unary-of-sum"),
        pytest.param("-a", {"a": "c ^ d"}, "-c ^ d", id="unary-of-pow"),
        pytest.param("-a", {"a": "-1"}, "-(-1)", id="unary-of-negative-number"),
        pytest.param("a[5m:]", {"a": "c + d"}, "(c + d)[5m:]", id="subquery-of-sum"),
        pytest.param("a[5m:]", {"a": "-c"}, "(-c)[5m:]", id="subquery-of-unary"),
        pytest.param("a and b", {"b": "c or d"}, "a and (c or d)", id="union-under-and"),
        pytest.param("a or b", {"a": "c or d", "b": "e or f"}, "c or d or (e or f)", id="union-chain"),
        pytest.param("sum(a)", {"a": "c or d"}, "sum(c or d)", id="union-under-aggregation"),
        pytest.param("rate(a[5m])", {}, "rate(a[5m])", id="untouched"),
    ],
)
def test_rewritten_tree_prints_with_needed_parentheses(query: str, replacements: dict[str, str], printed: str) -> None:
    tree = _substitute(query, replacements)
    assert format_expr(tree) == printed
    assert tree_shape(parse_promql(printed), parens=False) == tree_shape(tree, parens=False)


def test_rewrite_hook_prints_its_pieces_and_their_children() -> None:
    def rewrite(node: Expr) -> list[Piece] | None:
        if isinstance(node, VectorSelector) and node.name == "secret":
            return ['(secret{ns="a"} or secret{ns="b"})']
        if isinstance(node, Call):
            return ["abs(", node.args[0], ")"]
        return None

    tree = promql_parser.parse('-secret * rate(x{a="\\""}[5m])')
    assert format_expr(tree, rewrite=rewrite) == '-(secret{ns="a"} or secret{ns="b"}) * abs(x{a="\\""}[5m])'


def test_name_narrowed_by_name_matcher_moves_into_braces() -> None:
    # 2.42 refuses x{__name__=~"..."}: "metric name must not be set twice".
    tree = promql_parser.parse("http_requests_total")
    tree.matchers = Matchers([Matcher(MatchOp.Re, "__name__", "http_.*")])
    assert format_expr(tree) == '{__name__="http_requests_total",__name__=~"http_.*"}'


@pytest.mark.parametrize(
    ("mutate", "construct"),
    [
        pytest.param(
            lambda s: setattr(s, "matchers", Matchers([Matcher(MatchOp.Equal, "a-b", "x")])),
            "'a-b'",
            id="label-name-with-dash",
        ),
        pytest.param(
            lambda s: setattr(s, "matchers", Matchers([]).with_or_matchers([[Matcher(MatchOp.Equal, "a", "b")]])),
            "{... or ...}",
            id="or-matchers",
        ),
        pytest.param(lambda s: (setattr(s, "name", None), setattr(s, "matchers", Matchers([]))), "{}", id="empty"),
        pytest.param(
            lambda s: setattr(s, "offset", datetime.timedelta(microseconds=1500)), "offset", id="sub-millisecond"
        ),
        pytest.param(lambda s: setattr(s, "offset", datetime.timedelta(days=365 * 293)), "offset", id="too-long"),
    ],
)
def test_unprintable_selector_is_refused(mutate: object, construct: str) -> None:
    tree = promql_parser.parse("x")
    mutate(tree)  # type: ignore[operator]
    with pytest.raises(PromQLUnsupported) as refused:
        format_expr(tree)
    assert refused.value.construct.startswith(construct)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("range", datetime.timedelta(0), id="zero-range"),
        pytest.param("range", datetime.timedelta(minutes=-5), id="negative-range"),
        pytest.param("range", datetime.timedelta(days=365 * 293), id="range-out-of-go-duration"),
    ],
)
def test_invalid_range_is_refused(field: str, value: datetime.timedelta) -> None:
    tree = promql_parser.parse("x[5m]")
    setattr(tree, field, value)
    with pytest.raises(PromQLUnsupported):
        format_expr(tree)


def test_lone_surrogate_is_refused() -> None:
    # The library cannot even hold one; a caller of quote_string could.
    with pytest.raises(PromQLUnsupported, match="surrogate"):
        quote_string("a\ud800")


def test_unknown_node_type_is_refused() -> None:
    with pytest.raises(PromQLUnsupported, match="does not know"):
        format_expr(object())  # type: ignore[arg-type]


def test_deep_tree_prints_without_recursion() -> None:
    query = " + ".join(["x"] * MAX_NESTING)
    tree = parse_promql(query)
    assert format_expr(tree) == query
    nested = "(" * (MAX_NESTING // 2) + "-x" + ")" * (MAX_NESTING // 2)
    assert tree_shape(parse_promql(format_expr(parse_promql(nested)))) == tree_shape(parse_promql(nested))


# -- strings, numbers and durations -------------------------------------------------------


@given(st.text())
def test_any_text_is_quoted_back_to_itself(value: str) -> None:
    assert promql_parser.parse(f"x{{a={quote_string(value)}}}").matchers.matchers[0].value == value
    tree = promql_parser.parse(quote_string(value))
    assert isinstance(tree, StringLiteral)
    assert tree.val == value


@given(st.floats())
def test_any_float_is_printed_back_to_itself(value: float) -> None:
    tree = promql_parser.parse(format_number(value))
    assert isinstance(tree, NumberLiteral)
    if math.isnan(value):
        assert math.isnan(tree.val)
    else:
        assert (tree.val, math.copysign(1.0, tree.val)) == (value, math.copysign(1.0, value))


@given(st.integers(min_value=1, max_value=(2**63 - 1) // 1_000_000))
def test_any_duration_is_printed_back_to_itself(ms: int) -> None:
    assert promql_parser.parse_duration(format_duration_ms(ms)) == datetime.timedelta(milliseconds=ms)


# -- random queries -------------------------------------------------------------------------

_TRICKY = ['"', "\\", "`", "'", "\n", "\t", "}", "{", ",", "=", "#", "\ufffd", "é", "🙂", "\x00", "\u2028", '\\"']
label_values = st.lists(st.one_of(st.text(max_size=4), st.sampled_from(_TRICKY)), max_size=5).map("".join)
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True).filter(
    lambda name: name != "__name__" and name.lower() not in {"inf", "nan"}
)
numbers = st.one_of(
    st.sampled_from(["1", "0.5", "0x1F", "1e3", "NaN", "Inf", "-Inf", "-1.5", ".5"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


def encode(value: str, style: str) -> str:
    """Quote ``value`` without quote_string: raw when possible, else every non-ASCII-word
    character as a \\u escape, in double or single quotes."""
    if style == "raw" and not set(value) & {"`", "\\", "\ufffd"}:
        return f"`{value}`"
    quote = "'" if style == "single" else '"'
    escaped = "".join(
        char
        if char.isascii() and char.isalnum()
        else f"\\U{ord(char):08x}"
        if ord(char) > 0xFFFF
        else f"\\u{ord(char):04x}"
        for char in value
    )
    return f"{quote}{escaped}{quote}"


def regex_literal(value: str) -> str:
    return "".join("\\" + char if char in ".+*?()|[]{}^$\\" else char for char in value)


@st.composite
def selectors(draw: st.DrawFn) -> str:
    style = draw(st.sampled_from(["raw", "double", "single"]))
    matchers = []
    for _ in range(draw(st.integers(0, 3))):
        name, op, value = draw(label_names), draw(st.sampled_from(["=", "!=", "=~", "!~"])), draw(label_values)
        matchers.append(f"{name}{op}{encode(regex_literal(value) if '~' in op else value, style)}")
    name = draw(st.sampled_from(["up", "http_requests_total", "job:rate5m:sum", None]))
    if name is None:
        metric = draw(label_values.filter(bool))
        matchers.insert(0, f"__name__={encode(metric, style)}")
    braces = "{" + ",".join(matchers) + "}" if matchers else ""
    return (name or "") + braces


modifiers = st.tuples(
    st.sampled_from(["", " offset 5m", " offset -90s", " offset 1h30m", " offset 1500ms"]),
    st.sampled_from(["", " @ 100", " @ 1.5", " @ start()", " @ end()"]),
).map("".join)
vectors = st.one_of(
    st.builds("{}{}".format, selectors(), modifiers),
    st.builds("rate({}[{}]{})".format, selectors(), st.sampled_from(["5m", "90s", "1h30m"]), modifiers),
)
_ARITHMETIC = ["+", "-", "*", "/", "%", "^", "atan2"]
_COMPARISON = ["==", "!=", ">", "<", ">=", "<="]
_VECTOR_MATCHING = ["", " on(job)", " ignoring(instance)", " on(job) group_left(team)", " ignoring(pod) group_right"]
operators = st.one_of(
    st.builds("{}{}".format, st.sampled_from(_ARITHMETIC), st.sampled_from(_VECTOR_MATCHING)),
    st.builds(
        "{}{}{}".format, st.sampled_from(_COMPARISON), st.sampled_from(["", " bool"]), st.sampled_from(_VECTOR_MATCHING)
    ),
    st.builds(
        "{}{}".format, st.sampled_from(["and", "or", "unless"]), st.sampled_from(["", " on(job)", " ignoring()"])
    ),
)
groupings = st.one_of(
    st.just(""),
    st.builds(
        lambda kind, labels: f" {kind} ({', '.join(labels)})",
        st.sampled_from(["by", "without"]),
        st.lists(label_names, max_size=2),
    ),
)


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("{} {} {}".format, inner, operators, inner),
        inner.map("-{}".format),
        inner.map("({})".format),
        st.builds(
            "{}{} ({})".format,
            st.sampled_from(["sum", "avg", "min", "max", "count", "group", "stddev"]),
            groupings,
            inner,
        ),
        st.builds("topk{} (2, {})".format, groupings, inner),
        st.builds("quantile{} (0.5, {})".format, groupings, inner),
        st.builds("count_values{} ({}, {})".format, groupings, label_values.map(lambda v: encode(v, "double")), inner),
        st.builds(
            'label_replace({}, "dst", {}, "src", "(.*)")'.format, inner, label_values.map(lambda v: encode(v, "double"))
        ),
        st.builds("max_over_time(({})[{}]{})".format, inner, st.sampled_from(["5m:", "5m:1m", "1h:90s"]), modifiers),
        st.builds("{} * {}".format, inner, numbers),
        st.builds("{} ^ {}".format, numbers, inner),
        st.builds("clamp({}, {}, {})".format, inner, numbers, numbers),
    )


queries = st.recursive(vectors, _extend, max_leaves=6)


@given(queries)
@settings(max_examples=400, deadline=None)
def test_random_query_round_trips(query: str) -> None:
    tree = promql_parser.parse(query)
    printed = format_expr(tree)
    assert tree_shape(parse_promql(printed)) == tree_shape(tree)


# -- Prometheus 2.42 as the oracle ------------------------------------------------------------

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PrometheusOracle:
    """Asks a real Prometheus how it parses a query."""

    def __init__(self, url: str) -> None:
        self.url = url

    def answer(self, path: str, query: str) -> dict[str, object]:
        params = urllib.parse.urlencode({"query": query, "time": "1000"})
        try:
            with _NO_PROXY.open(f"{self.url}{path}?{params}", timeout=10) as response:
                body: dict[str, object] = json.load(response)
        except urllib.error.HTTPError as error:
            body = json.load(error)
        return body

    def format_query(self, query: str) -> str:
        body = self.answer("/api/v1/format_query", query)
        assert body["status"] == "success", f"Prometheus refuses {query!r}: {body.get('error')}"
        assert isinstance(body["data"], str)
        return body["data"]

    def evaluates(self, query: str) -> bool:
        """Whether Prometheus parses ``query`` for evaluation (it may still fail at run time)."""
        return self.answer("/api/v1/query", query).get("errorType") != "bad_data"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusOracle]:
    server = infrastructure_prometheus(tmp_path_factory.mktemp("promql-oracle"))
    server.start()
    try:
        yield PrometheusOracle(server.url)
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize(("query", "spelling"), ROUND_TRIPS)
def test_prometheus_reads_the_printed_query_as_the_original(
    prometheus: PrometheusOracle, query: str, spelling: str
) -> None:
    printed = format_expr(parse_promql(query))
    assert prometheus.format_query(printed) == prometheus.format_query(spelling)
    assert prometheus.evaluates(printed)


@pytest.mark.slow
@given(query=queries)
@settings(max_examples=150, deadline=None)
def test_prometheus_reads_random_printed_queries_as_the_original(prometheus: PrometheusOracle, query: str) -> None:
    assert prometheus.format_query(format_expr(promql_parser.parse(query))) == prometheus.format_query(query)


@pytest.mark.slow
@given(value=st.text())
@settings(max_examples=150, deadline=None)
def test_prometheus_unquotes_quoted_text_to_itself(prometheus: PrometheusOracle, value: str) -> None:
    ours = prometheus.format_query(f"x{{a={quote_string(value)}}}")
    assert ours == prometheus.format_query(f"x{{a={encode(value, 'double')}}}")


@pytest.mark.slow
@given(value=st.floats())
@settings(max_examples=150, deadline=None)
def test_prometheus_reads_printed_numbers_exactly(prometheus: PrometheusOracle, value: float) -> None:
    read = float(prometheus.format_query(format_number(value)))
    assert (math.isnan(read) and math.isnan(value)) or (read, math.copysign(1.0, read)) == (
        value,
        math.copysign(1.0, value),
    )


@pytest.mark.slow
@given(ms=st.integers(min_value=1, max_value=(2**63 - 1) // 1_000_000))
@settings(max_examples=150, deadline=None)
def test_prometheus_prints_durations_as_we_do(prometheus: PrometheusOracle, ms: int) -> None:
    text = f"x[{format_duration_ms(ms)}]"
    assert prometheus.format_query(text) == text
