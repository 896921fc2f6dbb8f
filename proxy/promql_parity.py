"""Parser parity: refuse any query that Prometheus 2.42 would reject or read differently.

The proxy parses tenant queries with promql-parser 0.12, which follows Prometheus 2.45 plus
later additions, and forwards its own printing of the rewritten tree to a Prometheus 2.42. A
construct the library accepts but 2.42 does not must therefore be refused here with a clear
400, never forwarded in some other spelling, and nothing may be parsed to a different meaning.

Guarantees of :func:`parse_promql`, the one entry point for tenant query text:

- the text reaches the library only through :func:`mtproxy.api.promql_guard.parse_guarded`,
  the one guard every parsed text passes (``match[]`` and MetricAccess patterns too): text
  with more than :data:`MAX_NESTING` operators and brackets, which could overflow the
  library's native stack (a SIGSEGV, not an exception), is refused before parsing, and so
  are the ``\\x80``-``\\xff`` / ``\\200``-``\\377`` string escapes and a backslash before a
  backtick, which Prometheus and the library read as different values;
- it registers ``holt_winters``, which 2.42 has and the library dropped;
- parse errors become :class:`PromQLSyntaxError`, and everything it returns has passed
  :func:`check_supported`.

:func:`check_supported` walks the tree iteratively (no recursion limit) and refuses, naming the
construct: ``or`` inside a selector's braces, functions and aggregations newer than 2.42 or
with a different signature, ``fill`` modifiers, regular expressions Go's RE2 rejects, label
names Prometheus cannot spell, durations outside Prometheus's range, ``@`` timestamps the
library cannot represent (negative ones make it panic), and any node type or operator it
does not know. Known differences invisible in the tree, where the library is only more lenient
(``1ms`` read as a number, ``x[300]``, quoted label names, ``1e400`` read as +Inf, a raw U+FFFD
in a string), are accepted: the printed query is valid 2.42 with the same meaning.

The 2.42 tables and the walk over the tree state one contract, hence one module; the checks
on the text live with the guard, since ``match[]`` and MetricAccess patterns need them too.

Error tree (every class carries ``status`` 400 and Prometheus's ``error_type`` "bad_data")::

    PromQLError(ValueError)
    ├── PromQLSyntaxError    the library cannot parse the text
    └── PromQLUnsupported    it parses, but 2.42 would refuse it or read it differently
"""

from __future__ import annotations

import datetime
import functools
import re
from typing import Final, Literal

import promql_parser
import re2
from promql_parser import (
    AggModifierType,
    AggregateExpr,
    AtModifier,
    AtModifierType,
    BinaryExpr,
    BinModifier,
    Call,
    Expr,
    LabelModifierType,
    MatchOp,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    ValueType,
    VectorMatchCardinality,
    VectorSelector,
)

from mtproxy.api.promql_guard import MAX_NESTING, ParserInputRefused, ParserSyntaxError, is_library_panic, parse_guarded

__all__ = [
    "AGGREGATIONS_2_42",
    "BINARY_OPERATORS",
    "COMPARISON_OPERATORS",
    "FUNCTIONS_2_42",
    "MAX_NESTING",
    "SET_OPERATORS",
    "DurationSign",
    "PromQLError",
    "PromQLSyntaxError",
    "PromQLUnsupported",
    "at_timestamp_ms",
    "check_bin_modifier",
    "check_label_name",
    "check_supported",
    "duration_ms",
    "forget_memos",
    "is_library_panic",
    "parse_promql",
]

DurationSign = Literal["positive", "non-negative", "any"]
"""Which durations :func:`duration_ms` accepts: ranges, subquery steps, offsets."""


class PromQLError(ValueError):
    """A query the proxy refuses with HTTP 400, as Prometheus refuses a bad query."""

    status: int = 400
    error_type: str = "bad_data"


class PromQLSyntaxError(PromQLError):
    """The parser library could not parse the query text."""


class PromQLUnsupported(PromQLError):
    """The query parses, but Prometheus 2.42 would refuse it or give it another meaning.

    Args:
        construct: the offending construct, quoted back to the tenant.
        reason: why it is refused.
    """

    def __init__(self, construct: str, reason: str) -> None:
        super().__init__(f"{construct}: {reason}")
        self.construct = construct
        self.reason = reason


# Prometheus 2.42.0, promql/parser/functions.go: name -> (argument types, variadic, return type).
_V, _M, _S, _T = "vector", "matrix", "scalar", "string"
# fmt: off
FUNCTIONS_2_42: Final[dict[str, tuple[tuple[str, ...], int, str]]] = {
    **{name: ((_V,), 0, _V) for name in (
        "abs", "absent", "acos", "acosh", "asin", "asinh", "atan", "atanh", "ceil", "cos", "cosh",
        "deg", "exp", "floor", "histogram_count", "histogram_sum", "ln", "log10", "log2", "rad",
        "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt", "tan", "tanh", "timestamp",
    )},
    **{name: ((_M,), 0, _V) for name in (
        "absent_over_time", "avg_over_time", "changes", "count_over_time", "delta", "deriv",
        "idelta", "increase", "irate", "last_over_time", "max_over_time", "min_over_time",
        "present_over_time", "rate", "resets", "stddev_over_time", "stdvar_over_time",
        "sum_over_time",
    )},
    **{name: ((_V,), 1, _V) for name in (
        "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month",
        "year",
    )},
    "clamp": ((_V, _S, _S), 0, _V),
    "clamp_max": ((_V, _S), 0, _V),
    "clamp_min": ((_V, _S), 0, _V),
    "histogram_fraction": ((_S, _S, _V), 0, _V),
    "histogram_quantile": ((_S, _V), 0, _V),
    "holt_winters": ((_M, _S, _S), 0, _V),
    "label_join": ((_V, _T, _T, _T), -1, _V),
    "label_replace": ((_V, _T, _T, _T, _T), 0, _V),
    "pi": ((), 0, _S),
    "predict_linear": ((_M, _S), 0, _V),
    "quantile_over_time": ((_S, _M), 0, _V),
    "round": ((_V, _S), 1, _V),
    "scalar": ((_V,), 0, _S),
    "time": ((), 0, _S),
    "vector": ((_S,), 0, _V),
}
AGGREGATIONS_2_42: Final = frozenset({
    "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
    "count_values", "quantile",
})
# fmt: on
SET_OPERATORS: Final = frozenset({"and", "or", "unless"})
COMPARISON_OPERATORS: Final = frozenset({"==", "!=", ">", "<", ">=", "<="})
BINARY_OPERATORS: Final = SET_OPERATORS | COMPARISON_OPERATORS | {"+", "-", "*", "/", "%", "^", "atan2"}

_VALUE_TYPES: Final = ((ValueType.Vector, _V), (ValueType.Matrix, _M), (ValueType.Scalar, _S), (ValueType.String, _T))
_LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Words the 2.42 lexer turns into numbers even inside a grouping list.
_NUMBER_WORDS: Final = frozenset({"inf", "nan"})
# Nanoseconds in a Go time.Duration: model.ParseDuration refuses anything longer.
_MAX_DURATION_MS: Final = (2**63 - 1) // 1_000_000
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_ONE_MS: Final = datetime.timedelta(milliseconds=1)

_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False

# 2.42 has holt_winters; the library only knows its later name, double_exponential_smoothing.
promql_parser.register_extra_functions(
    [promql_parser.Function("holt_winters", [ValueType.Matrix, ValueType.Scalar, ValueType.Scalar], ValueType.Vector)]
)


def parse_promql(query: str) -> Expr:
    """Parse tenant query text into a tree whose printing 2.42 reads with the same meaning.

    Raises:
        PromQLUnsupported: the text is too deeply nested, uses a high-byte escape, or uses a
            construct 2.42 lacks (see :func:`check_supported`).
        PromQLSyntaxError: the library cannot parse the text.
    """
    try:
        expr = parse_guarded(query, what="query")
    except ParserInputRefused as exc:
        raise PromQLUnsupported(exc.construct, exc.reason) from exc
    except ParserSyntaxError as exc:
        raise PromQLSyntaxError(str(exc)) from exc
    check_supported(expr)
    return expr


def check_supported(expr: Expr) -> None:
    """Refuse the first node of ``expr`` that Prometheus 2.42 would not read as the library did.

    Raises:
        PromQLUnsupported: naming the construct and why.
    """
    pending: list[Expr] = [expr]
    while pending:
        node = pending.pop()
        if isinstance(node, VectorSelector):
            _check_selector(node)
        elif isinstance(node, MatrixSelector):
            _check_selector(node.vector_selector)
            duration_ms(node.range, what="range", sign="positive")
        elif isinstance(node, SubqueryExpr):
            duration_ms(node.range, what="subquery range", sign="positive")
            if node.step is not None:
                duration_ms(node.step, what="subquery step", sign="non-negative")
            _check_offset_and_at(node.offset, node.at)
            pending.append(node.expr)
        elif isinstance(node, Call):
            _check_call(node)
            pending.extend(_expressions(node.args, what=f"argument of {node.func.name}"))
        elif isinstance(node, AggregateExpr):
            _check_aggregation(node)
            if node.param is not None:
                pending.extend(_expressions([node.param], what=f"parameter of {node.op}"))
            pending.append(node.expr)
        elif isinstance(node, BinaryExpr):
            op = str(node.op)
            if op not in BINARY_OPERATORS:
                raise PromQLUnsupported(op, "is not a binary operator of Prometheus 2.42")
            check_bin_modifier(op, node.modifier)
            pending.extend((node.rhs, node.lhs))
        elif isinstance(node, UnaryExpr | ParenExpr):
            pending.append(node.expr)
        elif not isinstance(node, NumberLiteral | StringLiteral):
            raise PromQLUnsupported(type(node).__name__, "is a node type the proxy does not know")


def check_label_name(name: str, *, grouping: bool = False) -> str:
    """Return ``name`` if Prometheus 2.42 can spell it as a label name, else refuse it.

    In a ``by``/``on``/``group_left`` list the 2.42 lexer reads ``inf`` and ``nan`` as numbers.
    """
    if _LABEL_NAME.fullmatch(name) is None or (grouping and name.lower() in _NUMBER_WORDS):
        raise PromQLUnsupported(repr(name), "is not a label name Prometheus 2.42 can parse")
    return name


def check_bin_modifier(op: str, modifier: BinModifier | None) -> None:
    """Refuse binary-operator modifiers that 2.42 lacks or that its grammar cannot express."""
    if modifier is None:
        return
    fill = modifier.fill_values
    if fill is not None and (fill.lhs is not None or fill.rhs is not None):
        raise PromQLUnsupported(f"{op} fill(...)", "fill modifiers are newer than Prometheus 2.42")
    card = modifier.card
    grouped = card == VectorMatchCardinality.ManyToOne or card == VectorMatchCardinality.OneToMany
    if grouped and (op in SET_OPERATORS or modifier.matching is None):
        raise PromQLUnsupported(f"{op} group_left/group_right", "needs on(...) or ignoring(...) and a non-set operator")
    if card == VectorMatchCardinality.ManyToMany and op not in SET_OPERATORS:
        raise PromQLUnsupported(op, "many-to-many matching exists only for and/or/unless")
    if modifier.return_bool and op not in COMPARISON_OPERATORS:
        raise PromQLUnsupported(f"{op} bool", "bool applies to comparison operators only")
    matching = modifier.matching
    if matching is not None:
        if matching.type != LabelModifierType.Include and matching.type != LabelModifierType.Exclude:
            raise PromQLUnsupported(op, "has a vector matching the proxy does not know")
        for label in matching.labels:
            check_label_name(label, grouping=True)
    for label in modifier.group_labels or ():
        check_label_name(label, grouping=True)


def duration_ms(value: datetime.timedelta | None, *, what: str, sign: DurationSign) -> int:
    """Return ``value`` in whole milliseconds, refusing what 2.42's durations cannot hold.

    Args:
        value: the duration from the tree; None (a subquery without a range) is refused.
        what: names the duration in the refusal ("range", "offset", ...).
        sign: "positive" for ranges, "non-negative" for subquery steps (zero means the
            default step), "any" for offsets.
    """
    if value is None:
        raise PromQLUnsupported(what, "is missing")
    ms, rest = divmod(value, _ONE_MS)
    if rest:
        raise PromQLUnsupported(f"{what} {value}", "is not a whole number of milliseconds")
    if (sign == "positive" and ms <= 0) or (sign == "non-negative" and ms < 0):
        raise PromQLUnsupported(f"{what} {value}", f"must be {sign}")
    if abs(ms) > _MAX_DURATION_MS:
        raise PromQLUnsupported(f"{what} {value}", "is out of range (about 292 years at most)")
    return int(ms)


def at_timestamp_ms(at: AtModifier) -> int | None:
    """Return an ``@ <timestamp>`` in epoch milliseconds, or None for ``@ start()``/``@ end()``.

    The library panics on negative timestamps and overflows past year 9999; both are refused.
    """
    if at.type == AtModifierType.Start or at.type == AtModifierType.End:
        return None
    if at.type != AtModifierType.At:
        raise PromQLUnsupported("@", "is an @ modifier the proxy does not know")
    try:
        when = at.at
    except (ValueError, OverflowError) as exc:
        raise PromQLUnsupported("@ timestamp", "is beyond the year 9999") from exc
    except BaseException as exc:
        if not is_library_panic(exc):
            raise
        raise PromQLUnsupported("@ timestamp", "negative timestamps are not supported") from exc
    if when is None:
        raise PromQLUnsupported("@", "has no timestamp")
    ms, rest = divmod(when - _EPOCH, _ONE_MS)
    if rest:
        raise PromQLUnsupported(f"@ {when.isoformat()}", "is not a whole number of milliseconds")
    return int(ms)


def _check_selector(selector: VectorSelector) -> None:
    matchers = selector.matchers
    if matchers.or_matchers:
        raise PromQLUnsupported(
            f"{{... or ...}} in {selector.name or 'a selector'}",
            "'or' inside a selector's braces is newer than Prometheus 2.42",
        )
    for matcher in matchers.matchers:
        check_label_name(matcher.name)
        if matcher.op == MatchOp.Re or matcher.op == MatchOp.NotRe:
            _check_regex(matcher.value)
        elif matcher.op != MatchOp.Equal and matcher.op != MatchOp.NotEqual:
            raise PromQLUnsupported(matcher.name, "has a match operator the proxy does not know")
    _check_offset_and_at(selector.offset, selector.at)


def _check_regex(pattern: str) -> None:
    problem = _regex_problem(pattern)
    if problem is not None:
        raise PromQLUnsupported(repr(pattern), problem)


@functools.lru_cache(maxsize=4096)
def _regex_problem(pattern: str) -> str | None:
    """Why 2.42 would not take ``pattern``, or None; remembered, as dashboards repeat their regexes."""
    # Prometheus anchors the pattern and compiles it with Go's regexp; RE2 agrees with Go where
    # the library's Rust engine does not (the x flag, more than {1000} repeats), except that
    # this RE2 also takes (?<name>...) groups, which Go 1.19 did not: only (?P<name>...) counts.
    try:
        compiled = re2.compile(f"^(?:{pattern})$", options=_RE2_OPTIONS)
    except re2.error as exc:
        return f"is not a valid RE2 expression: {exc}"
    for name in compiled.groupindex:
        if f"(?P<{name}>" not in pattern:
            return "(?<name>...) groups are not valid in Prometheus 2.42"
    return None


def _check_offset_and_at(offset: datetime.timedelta | None, at: AtModifier | None) -> None:
    if offset is not None:
        duration_ms(offset, what="offset", sign="any")
    if at is not None:
        at_timestamp_ms(at)


def _check_call(call: Call) -> None:
    func = call.func
    name = func.name
    if name in _CHECKED_FUNCTIONS:
        return
    expected = FUNCTIONS_2_42.get(name)
    if expected is None:
        raise PromQLUnsupported(f"{name}()", "is not a function of Prometheus 2.42")
    signature = (tuple(_value_type(t) for t in func.arg_types), func.variadic, _value_type(func.return_type))
    if signature != expected or func.experimental:
        raise PromQLUnsupported(f"{name}()", "has another signature in Prometheus 2.42")
    _CHECKED_FUNCTIONS.add(name)  # the library's function table is fixed once this module is imported


_CHECKED_FUNCTIONS: set[str] = set()
"""Function names whose library signature was found equal to 2.42's (checked once per process)."""


def forget_memos() -> None:
    """Empty the memos (regex verdicts, checked signatures): lets a benchmark measure the cold path."""
    _regex_problem.cache_clear()
    _CHECKED_FUNCTIONS.clear()


def _check_aggregation(aggregation: AggregateExpr) -> None:
    op = str(aggregation.op)
    if op not in AGGREGATIONS_2_42:
        raise PromQLUnsupported(f"{op}()", "is not an aggregation of Prometheus 2.42")
    modifier = aggregation.modifier
    if modifier is not None:
        if modifier.type != AggModifierType.By and modifier.type != AggModifierType.Without:
            raise PromQLUnsupported(op, "has a grouping the proxy does not know")
        for label in modifier.labels:
            check_label_name(label, grouping=True)


def _value_type(value_type: ValueType) -> str:
    for known, name in _VALUE_TYPES:
        if value_type == known:
            return name
    raise PromQLUnsupported(str(value_type), "is a value type the proxy does not know")


def _expressions(values: list[object], *, what: str) -> list[Expr]:
    for value in values:
        if not isinstance(value, Expr):
            raise PromQLUnsupported(what, f"is a {type(value).__name__}, not an expression")
    return [value for value in reversed(values) if isinstance(value, Expr)]
