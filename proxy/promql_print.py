"""Printing a promql_parser tree as PromQL text that Prometheus 2.42 reads with the same meaning.

The query sent to the backend is always printed here, never by the library's ``str()``:
promql-parser 0.12 prints label values without escaping (``{job="a\\"b"}`` comes out as
``{job="a"b"}``, an injection path), turns raw backtick strings into unescaped double-quoted
ones, prints ``x[5m:]`` as ``x{}[5m]``, drops milliseconds from durations (``90061001ms``
comes out as ``1d1h1m1s``), prints ``@ -100`` as ``@ 0.000`` and numbers as ``inf``.

Contract of :func:`format_expr`, checked by the round-trip tests against the library and
against a real Prometheus 2.42:

- parsing the output gives the same tree, up to the spelling of the metric name
  (``{__name__="sum"}`` for a name that is a keyword or not an identifier);
- strings are double-quoted with Go escapes; non-ASCII stays as is, except U+FFFD (which the
  2.42 lexer refuses raw) and unprintable characters, which become ``\\u`` escapes;
- numbers print with Python's shortest round-trip ``repr``, which Go's ParseFloat reads back to
  the same double; durations print in whole milliseconds as ``1h30m``, never ``1.5h``;
- parentheses are added exactly where precedence or associativity needs them, so trees built
  by the rewriter print correctly too, and the parser's own ParenExpr nodes are kept;
- anything it cannot print faithfully (an unknown node, a label name 2.42 cannot spell, a
  lone surrogate, an out-of-range duration) raises :class:`PromQLUnsupported`: nothing is
  passed through in some other spelling.

The walk uses an explicit stack, so no tree is too deep to print. The enforcer prints through
the same walk, handing its own text for the selectors it restricts (``rewrite``).
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable
from typing import Final

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
    VectorMatchCardinality,
    VectorSelector,
)

from .promql_parity import (
    PromQLUnsupported,
    at_timestamp_ms,
    check_bin_modifier,
    check_label_name,
    duration_ms,
)

__all__ = ["Piece", "format_duration_ms", "format_expr", "format_modifiers", "format_number", "quote_string"]

_PRECEDENCE: Final = {
    "or": 1,
    "and": 2,
    "unless": 2,
    "==": 3,
    "!=": 3,
    ">": 3,
    "<": 3,
    ">=": 3,
    "<=": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
    "atan2": 5,
    "^": 6,
}
_UNARY: Final = 5  # Prometheus gives unary minus the precedence of "*".
_ATOM: Final = 7  # selectors, calls, aggregations, parentheses, subqueries, literals
_POW: Final = _PRECEDENCE["^"]

_METRIC_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_IDENTIFIER: Final = re.compile(r"[a-z_][a-z0-9_]*")
# Words that cannot stand as a bare metric name: the 2.42 lexer's keywords (matched case-blind)
# and numbers, plus the keywords the library knows, so that it reads the output back alike.
_KEYWORDS: Final = frozenset(
    {
        "and", "or", "unless", "atan2", "sum", "avg", "count", "min", "max", "group", "stddev",
        "stdvar", "topk", "bottomk", "count_values", "quantile", "offset", "by", "without", "on",
        "ignoring", "group_left", "group_right", "bool", "start", "end", "inf", "nan",
        "limitk", "limit_ratio", "fill", "fill_left", "fill_right", "anchored", "smoothed",
    }
)  # fmt: skip
_MATCH_OPS: Final = ((MatchOp.Equal, "="), (MatchOp.NotEqual, "!="), (MatchOp.Re, "=~"), (MatchOp.NotRe, "!~"))
_ESCAPES: Final = {
    "\\": "\\\\",
    '"': '\\"',
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_DURATION_UNITS: Final = (
    ("y", 365 * 24 * 3600 * 1000, True),
    ("w", 7 * 24 * 3600 * 1000, True),
    ("d", 24 * 3600 * 1000, False),
    ("h", 3600 * 1000, False),
    ("m", 60 * 1000, False),
    ("s", 1000, False),
    ("ms", 1, False),
)

Piece = str | Expr
"""What a node prints as: text, or a child node printed in turn."""


def format_expr(expr: Expr, *, rewrite: Callable[[Expr], list[Piece] | None] | None = None) -> str:
    """Print ``expr`` as PromQL that Prometheus 2.42 parses back to the same tree.

    Args:
        expr: the tree.
        rewrite: lets the enforcer print some nodes its own way. It is asked first for every
            node and returns the node's pieces (text, and child nodes printed the same way),
            or None to print the node as usual. Its pieces must hold together as one operand
            (a union goes in parentheses): the parent chose its parentheses from the node's
            kind, before the rewrite.

    Raises:
        PromQLUnsupported: some node cannot be printed faithfully.
    """
    out: list[str] = []
    pending: list[Piece] = [expr]
    while pending:
        piece = pending.pop()
        if isinstance(piece, str):
            out.append(piece)
        else:
            pieces = rewrite(piece) if rewrite is not None else None
            pending.extend(reversed(pieces if pieces is not None else _expand(piece)))
    return "".join(out)


_PLAIN_ASCII: Final = re.compile(r"[ !#-\[\]-~]*")
"""Printable ASCII but the double quote and the backslash: printed as it is."""


def quote_string(value: str) -> str:
    """Quote ``value`` as a PromQL double-quoted string that 2.42 unquotes back to ``value``."""
    if _PLAIN_ASCII.fullmatch(value):
        return f'"{value}"'  # the common case: nothing to escape
    parts = ['"']
    for char in value:
        code = ord(char)
        if char in _ESCAPES:
            parts.append(_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            parts.append(f"\\x{code:02x}")
        elif 0xD800 <= code < 0xE000:
            raise PromQLUnsupported(repr(value), "holds a lone surrogate, which is not text")
        elif char == "\ufffd" or not char.isprintable():
            parts.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            parts.append(char)
    parts.append('"')
    return "".join(parts)


def format_number(value: float) -> str:
    """Print a float so that Go's strconv.ParseFloat reads back the very same double."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    text = repr(float(value))
    return text.removesuffix(".0")


def format_duration_ms(ms: int) -> str:
    """Print a non-negative duration as Prometheus does (``1h30m``, ``1d1ms``, ``0s``)."""
    if ms == 0:
        return "0s"
    parts = []
    for unit, size, only_exact in _DURATION_UNITS:
        if only_exact and ms % size:
            continue
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_modifiers(offset: datetime.timedelta | None, at: AtModifier | None) -> str:
    """The `` @ ...`` and `` offset ...`` suffix of a selector or subquery (empty without them)."""
    text = ""
    if at is not None:
        when = at_timestamp_ms(at)
        if when is None:
            text += " @ start()" if at.type == AtModifierType.Start else " @ end()"
        else:
            sign, when = ("-" if when < 0 else ""), abs(when)
            seconds, millis = divmod(when, 1000)
            fraction = f".{millis:03d}".rstrip("0") if millis else ""
            text += f" @ {sign}{seconds}{fraction}"
    if offset is not None:
        ms = duration_ms(offset, what="offset", sign="any")
        if ms:
            text += f" offset {'-' if ms < 0 else ''}{format_duration_ms(abs(ms))}"
    return text


def _expand(node: Expr) -> list[Piece]:
    """Split one node into text and child nodes, in output order."""
    if isinstance(node, VectorSelector):
        return [_selector(node) + format_modifiers(node.offset, node.at)]
    if isinstance(node, MatrixSelector):
        vector = node.vector_selector
        window = format_duration_ms(duration_ms(node.range, what="range", sign="positive"))
        return [f"{_selector(vector)}[{window}]{format_modifiers(vector.offset, vector.at)}"]
    if isinstance(node, SubqueryExpr):
        window = format_duration_ms(duration_ms(node.range, what="subquery range", sign="positive"))
        step_ms = 0 if node.step is None else duration_ms(node.step, what="subquery step", sign="non-negative")
        step = format_duration_ms(step_ms) if step_ms else ""
        suffix = f"[{window}:{step}]{format_modifiers(node.offset, node.at)}"
        return [*_operand(node.expr, wrap=_strength(node.expr) < _ATOM), suffix]
    if isinstance(node, ParenExpr):
        return ["(", node.expr, ")"]
    if isinstance(node, UnaryExpr):
        operand = node.expr
        # "-a ^ b" is -(a ^ b), but "-a * b" is (-a) * b; "--1" would fold to the number 1.
        wrap = (isinstance(operand, BinaryExpr) and _strength(operand) < _POW) or _is_negative_number(operand)
        return ["-", *_operand(operand, wrap=wrap)]
    if isinstance(node, BinaryExpr):
        return _binary(node)
    if isinstance(node, Call):
        return _call(node.func.name, node.args)
    if isinstance(node, AggregateExpr):
        return _aggregation(node)
    if isinstance(node, NumberLiteral):
        return [format_number(node.val)]
    if isinstance(node, StringLiteral):
        return [quote_string(node.val)]
    raise PromQLUnsupported(type(node).__name__, "is a node type the printer does not know")


def _selector(selector: VectorSelector) -> str:
    matchers = selector.matchers
    if matchers.or_matchers:
        raise PromQLUnsupported("{... or ...}", "'or' inside a selector's braces is newer than Prometheus 2.42")
    name = selector.name or ""
    inside = []
    for matcher in matchers.matchers:
        op = next((text for known, text in _MATCH_OPS if matcher.op == known), None)
        if op is None:
            raise PromQLUnsupported(matcher.name, "has a match operator the printer does not know")
        inside.append(f"{check_label_name(matcher.name)}{op}{quote_string(matcher.value)}")
    # 2.42 refuses a bare name next to any __name__ matcher ("metric name must not be set
    # twice"), so a name the rewriter narrowed with __name__=~"..." goes inside the braces.
    bare = (
        _METRIC_NAME.fullmatch(name) is not None
        and name.lower() not in _KEYWORDS
        and all(matcher.name != "__name__" for matcher in matchers.matchers)
    )
    if name and not bare:
        inside.insert(0, f"__name__={quote_string(name)}")
        name = ""
    if not inside:
        if not name:
            raise PromQLUnsupported("{}", "a selector needs a metric name or a matcher")
        return name
    return name + "{" + ",".join(inside) + "}"


def _binary(node: BinaryExpr) -> list[Piece]:
    op = str(node.op)
    precedence = _PRECEDENCE.get(op)
    if precedence is None:
        raise PromQLUnsupported(op, "is a binary operator the printer does not know")
    lhs, rhs = node.lhs, node.rhs
    lhs_strength, rhs_strength = _strength(lhs), _strength(rhs)
    # "^" is right-associative, everything else left-associative. A unary minus on the right
    # needs no parentheses: it takes exactly its operand, whatever follows the whole expression.
    wrap_lhs = lhs_strength < precedence or (lhs_strength == precedence and op == "^")
    wrap_rhs = not _is_unary_like(rhs) and (rhs_strength < precedence or (rhs_strength == precedence and op != "^"))
    text = f" {op}{_bin_modifier(op, node.modifier)} "
    return [*_operand(lhs, wrap=wrap_lhs), text, *_operand(rhs, wrap=wrap_rhs)]


def _bin_modifier(op: str, modifier: BinModifier | None) -> str:
    check_bin_modifier(op, modifier)
    if modifier is None:
        return ""
    text = " bool" if modifier.return_bool else ""
    matching = modifier.matching
    if matching is not None:
        keyword = "on" if matching.type == LabelModifierType.Include else "ignoring"
        text += f" {keyword} ({', '.join(matching.labels)})"
    if modifier.card == VectorMatchCardinality.ManyToOne:
        text += f" group_left ({', '.join(modifier.group_labels or ())})"
    elif modifier.card == VectorMatchCardinality.OneToMany:
        text += f" group_right ({', '.join(modifier.group_labels or ())})"
    return text


def _call(name: str, args: list[object]) -> list[Piece]:
    if _IDENTIFIER.fullmatch(name) is None:
        raise PromQLUnsupported(repr(name), "is not a function name")
    return _applied(name, args, what=f"argument of {name}")


def _aggregation(node: AggregateExpr) -> list[Piece]:
    op = str(node.op)
    if _IDENTIFIER.fullmatch(op) is None:
        raise PromQLUnsupported(repr(op), "is not an aggregation")
    head = op
    modifier = node.modifier
    if modifier is not None:
        if modifier.type == AggModifierType.By:
            keyword = "by"
        elif modifier.type == AggModifierType.Without:
            keyword = "without"
        else:
            raise PromQLUnsupported(op, "has a grouping the printer does not know")
        labels = ", ".join(check_label_name(label, grouping=True) for label in modifier.labels)
        head = f"{op} {keyword} ({labels}) "
    args: list[object] = [node.expr] if node.param is None else [node.param, node.expr]
    return _applied(head, args, what=f"operand of {op}")


def _applied(head: str, args: list[object], *, what: str) -> list[Piece]:
    pieces: list[Piece] = [f"{head}("]
    for index, arg in enumerate(args):
        if not isinstance(arg, Expr):
            raise PromQLUnsupported(what, f"is a {type(arg).__name__}, not an expression")
        if index:
            pieces.append(", ")
        pieces.append(arg)
    pieces.append(")")
    return pieces


def _operand(node: Expr, *, wrap: bool) -> list[Piece]:
    return ["(", node, ")"] if wrap else [node]


def _strength(node: Expr) -> int:
    """How tightly ``node``'s printed text holds together as an operand."""
    if isinstance(node, BinaryExpr):
        return _PRECEDENCE.get(str(node.op), 0)
    return _UNARY if _is_unary_like(node) else _ATOM


def _is_unary_like(node: Expr) -> bool:
    return isinstance(node, UnaryExpr) or _is_negative_number(node)


def _is_negative_number(node: Expr) -> bool:
    # Printed with a leading "-", which the parser reads as a unary minus and then folds.
    return isinstance(node, NumberLiteral) and not math.isnan(node.val) and math.copysign(1.0, node.val) < 0
