"""Composable checks for enforcement tests, after prom-label-proxy's ``checks``, ``noError``,
``errorIs`` and ``hasExpression`` (``injectproxy/enforce_test.go``).

A table row enforces one query under one policy and gets an :class:`Outcome`: the text sent
on, or the refusal. Each check is a small callable that raises ``AssertionError`` naming the
query when the outcome is wrong; :func:`checks` runs several in order.

The meaning checks do not trust the rewriter's reasoning. They parse the output again, walk
every vector selector in it (inside matrix selectors, subqueries, calls, aggregations, binary
operations), and evaluate the selectors and the policy rules on a *universe* of label sets:
sample values per label (names by namespaces by a few values), every value the matchers and the
rules mention, and some awkward ones (empty, newline); metric names only valid ones, as real
series have. Because every matcher constrains one
label, the label sets need not be enumerated: :func:`reachable_masks` folds the labels one by
one, keeping for each combination of "which conjunctions hold so far" one witness series, so
a violation comes with a concrete series the selector would leak.

``answers_absent_like_the_original`` checks the one place where the rewrite shows in the
answer's labels: ``absent()`` labels its output with the argument's equality matchers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import promql_parser
from promql_parser import (
    AggregateExpr,
    BinaryExpr,
    Call,
    Expr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorSelector,
)
from promql_parser import MatchOp as LibraryOp

from mtproxy.api import LabelMatcher, MatchOp, expand_literal_spans_in_promql
from mtproxy.api.matchers import METRIC_NAME_RE
from mtproxy.proxy.enforce import enforce_query
from mtproxy.proxy.errors import ProxyError
from mtproxy.proxy.policy import AccessPolicy
from mtproxy.proxy.promql_parity import PromQLUnsupported, check_supported, parse_promql
from mtproxy.proxy.promql_print import format_expr

__all__ = [
    "SAMPLE_VALUES",
    "Check",
    "Outcome",
    "absent_labels",
    "answers_absent_like_the_original",
    "carries_policy",
    "checks",
    "enforce",
    "error_is",
    "has_expression",
    "idempotent_in_meaning",
    "keeps_user_matchers",
    "leak_witness",
    "no_error",
    "parse_output",
    "parse_query",
    "parses_back",
    "reachable_masks",
    "selectors_of",
    "selects_exactly",
]

Conjunction = tuple[LabelMatcher, ...]

SAMPLE_VALUES: Mapping[str, tuple[str, ...]] = {
    "__name__": (
        "up",
        "http_requests_total",
        "http_x",
        "my_http_x",
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "kube_pod_info",
        "app_info",
        "secret",
    ),
    "namespace": ("team-a", "team-b", "kube-system", "team-a\n"),
    "mode": ("idle", "user", "system"),
    "env": ("prod", "dev"),
    "job": ("api", "node", 'a"b', "a\\b"),
    "version": ("1.0+beta", "1x0+beta", "2.0", "(rc)"),
}
"""Values every universe holds for these labels, besides those the matchers mention."""

_AWKWARD = ("", "\n", "zz", "a\nb")
_LIBRARY_OPS = (
    (LibraryOp.Equal, MatchOp.EQUAL),
    (LibraryOp.NotEqual, MatchOp.NOT_EQUAL),
    (LibraryOp.Re, MatchOp.REGEX),
    (LibraryOp.NotRe, MatchOp.NOT_REGEX),
)
_REGEX_ESCAPE = re.compile(r"\\(.)", re.S)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One enforcement: the query, the policy, and either the output text or the refusal."""

    query: str
    policy: AccessPolicy
    output: str | None = None
    error: ProxyError | None = None

    def accepted(self) -> str:
        """The output text; fails the test when the query was refused."""
        assert self.error is None, f"{self.query!r} was refused: {type(self.error).__name__}: {self.error}"
        assert self.output is not None
        return self.output


Check = Callable[[Outcome], None]


def enforce(query: str, policy: AccessPolicy) -> Outcome:
    """Enforce ``policy`` on ``query``, catching the proxy's refusals into the outcome."""
    try:
        return Outcome(query=query, policy=policy, output=enforce_query(query, policy))
    except ProxyError as error:
        return Outcome(query=query, policy=policy, error=error)


def checks(*each: Check) -> tuple[Check, ...]:
    """A row's list of checks, run in order by the table test."""
    return each


def no_error() -> Check:
    """The query is accepted."""

    def check(outcome: Outcome) -> None:
        outcome.accepted()

    return check


def error_is(kind: type[ProxyError], *fragments: str) -> Check:
    """The query is refused with ``kind`` (its HTTP status), and the message holds ``fragments``."""

    def check(outcome: Outcome) -> None:
        assert outcome.error is not None, f"{outcome.query!r} was accepted as {outcome.output!r}"
        assert type(outcome.error) is kind, f"{outcome.query!r}: {type(outcome.error).__name__}: {outcome.error}"
        assert outcome.error.status == kind.status
        for fragment in fragments:
            assert fragment in outcome.error.message, f"{fragment!r} not in {outcome.error.message!r}"

    return check


def has_expression(expected: str) -> Check:
    """The query is accepted and the text sent on is exactly ``expected``."""

    def check(outcome: Outcome) -> None:
        assert outcome.accepted() == expected

    return check


def parses_back() -> Check:
    """The output parses, and the project's printer prints the parsed tree as the very output."""

    def check(outcome: Outcome) -> None:
        output = outcome.accepted()
        assert format_expr(parse_output(output)) == output

    return check


def carries_policy(*, universe: Mapping[str, Iterable[str]] = SAMPLE_VALUES) -> Check:
    """Every vector selector of the output selects only series the policy admits."""

    def check(outcome: Outcome) -> None:
        for selector in selectors_of(parse_output(outcome.accepted())):
            witness = leak_witness(selector, outcome.policy, universe=universe)
            assert witness is None, (
                f"{outcome.query!r} -> {outcome.output!r}: selector {_text(selector)} selects {witness!r}, "
                "which the policy does not admit"
            )

    return check


def selects_exactly(*, universe: Mapping[str, Iterable[str]] = SAMPLE_VALUES) -> Check:
    """The query's one selector S becomes selectors whose union is exactly S ∧ policy."""

    def check(outcome: Outcome) -> None:
        (given,) = selectors_of(parse_query(outcome.query))
        written = selectors_of(parse_output(outcome.accepted()))
        rules = [rule.matchers for rule in outcome.policy.rules]
        states = reachable_masks([given, *rules, *written], universe=universe)
        rule_bits = ((1 << len(rules)) - 1) << 1
        for mask, witness in states.items():
            wanted = bool(mask & 1) and bool(mask & rule_bits)
            got = bool(mask >> (1 + len(rules)))
            assert wanted == got, (
                f"{outcome.query!r} -> {outcome.output!r}: on {witness!r} the policy says "
                f"{'visible' if wanted else 'hidden'} but the output {'selects' if got else 'misses'} it"
            )

    return check


def keeps_user_matchers() -> Check:
    """Every matcher of the query is still in the output: enforcement only adds matchers."""

    def check(outcome: Outcome) -> None:
        written = {m for selector in selectors_of(parse_output(outcome.accepted())) for m in selector}
        for selector in selectors_of(parse_query(outcome.query)):
            missing = [str(m) for m in selector if m not in written]
            assert not missing, f"{outcome.query!r} -> {outcome.output!r} lost {missing}"

    return check


def idempotent_in_meaning(*, universe: Mapping[str, Iterable[str]] = SAMPLE_VALUES) -> Check:
    """Enforcing the output once more selects the same series, selector by selector in union."""

    def check(outcome: Outcome) -> None:
        once = outcome.accepted()
        twice = enforce(once, outcome.policy).accepted()
        first, second = selectors_of(parse_promql(once)), selectors_of(parse_promql(twice))
        states = reachable_masks([*first, *second], universe=universe)
        split = len(first)
        for mask, witness in states.items():
            in_first, in_second = bool(mask & ((1 << split) - 1)), bool(mask >> split)
            assert in_first == in_second, f"{once!r} -> {twice!r} differ on {witness!r}"

    return check


def answers_absent_like_the_original() -> Check:
    """``absent(S)`` / ``absent_over_time(S[d])`` answer with the labels the original query would.

    The output's labels are worked out as Prometheus 2.42 does (:func:`absent_labels`), then the
    ``label_replace(…, dst, repl, "", "")`` wrappers around the call are applied in turn.
    """

    def check(outcome: Outcome) -> None:
        wanted = _absent_answer(parse_query(outcome.query))
        got = _absent_answer(parse_output(outcome.accepted()))
        assert got == wanted, f"{outcome.query!r} -> {outcome.output!r} answers {got!r}, the query itself {wanted!r}"

    return check


def absent_labels(selector: Sequence[LabelMatcher]) -> dict[str, str]:
    """The labels Prometheus 2.42 gives ``absent()`` of a selector, as measured with promtool 2.42.

    A label takes the value of its first ``=`` matcher and is dropped by any later matcher on
    it (``{a="x",a!="y"}`` gives ``{}``, ``{a!="y",a="x"}`` gives ``{a="x"}``); ``__name__``
    never counts, and an empty value is no label.
    """
    labels: dict[str, str] = {}
    dropped: set[str] = set()
    for matcher in selector:
        if matcher.name == "__name__":
            continue
        if matcher.name in labels:
            dropped.add(matcher.name)
        elif matcher.op is MatchOp.EQUAL:
            labels[matcher.name] = matcher.value
    return {name: value for name, value in labels.items() if name not in dropped and value}


def _absent_answer(expr: Expr) -> dict[str, str]:
    replacements: list[tuple[str, str]] = []
    while isinstance(expr, Call) and expr.func.name == "label_replace":
        inner, *strings = expr.args
        dst, replacement, source, regex = (s.val for s in strings if isinstance(s, StringLiteral))
        assert (source, regex) == ("", ""), f"not a plain label setter: {source!r}, {regex!r}"
        replacements.append((dst, replacement))
        expr = inner
    assert isinstance(expr, Call) and expr.func.name in {"absent", "absent_over_time"}, type(expr).__name__
    (argument,) = expr.args
    while isinstance(argument, ParenExpr):  # Prometheus looks through parentheses
        argument = argument.expr
    if isinstance(argument, MatrixSelector):
        argument = argument.vector_selector
    labels = absent_labels(_conjunction(argument)) if isinstance(argument, VectorSelector) else {}
    for dst, replacement in reversed(replacements):
        labels[dst] = replacement
    return {name: value for name, value in labels.items() if value}


def parse_query(query: str) -> Expr:
    """The tenant's query as the enforcer reads it (``\\Q…\\E`` regex spans spelled out first)."""
    return parse_promql(expand_literal_spans_in_promql(query))


def parse_output(text: str) -> Expr:
    """The enforced text parsed as the proxy parses a tenant's query.

    Every union repeats the selector's matchers, so an accepted query can come out with more
    operators than :func:`parse_promql` takes from a tenant (a cheap stand-in for depth that
    keeps the library's native stack safe). The output's depth is the input's plus a few, so
    such text is handed to the library directly, then to the same 2.42 checks.
    """
    try:
        return parse_promql(text)
    except PromQLUnsupported as error:
        if "operators and brackets" not in error.reason:
            raise
    expr = promql_parser.parse(text)
    check_supported(expr)
    return expr


def selectors_of(expr: Expr) -> list[Conjunction]:
    """The matchers of every vector selector in ``expr``, in order, the metric name as ``__name__``.

    The walk fails on a node type it does not know, so a new node cannot hide a selector.
    """
    found: list[Conjunction] = []
    pending: list[object] = [expr]
    while pending:
        node = pending.pop()
        if isinstance(node, MatrixSelector):
            node = node.vector_selector
        if isinstance(node, VectorSelector):
            found.append(_conjunction(node))
        elif isinstance(node, SubqueryExpr | UnaryExpr | ParenExpr):
            pending.append(node.expr)
        elif isinstance(node, Call):
            pending.extend(reversed(node.args))
        elif isinstance(node, AggregateExpr):
            pending.append(node.expr)
            if node.param is not None:
                pending.append(node.param)
        elif isinstance(node, BinaryExpr):
            pending.extend((node.rhs, node.lhs))
        elif not isinstance(node, NumberLiteral | StringLiteral):
            raise AssertionError(f"unknown node {type(node).__name__}")
    return found


def leak_witness(
    selector: Sequence[LabelMatcher], policy: AccessPolicy, *, universe: Mapping[str, Iterable[str]] = SAMPLE_VALUES
) -> dict[str, str] | None:
    """A series of the universe that ``selector`` selects and ``policy`` does not admit, if any."""
    states = reachable_masks([tuple(selector), *(rule.matchers for rule in policy.rules)], universe=universe)
    for mask, witness in states.items():
        if mask == 1:  # the selector holds and no rule does
            return witness
    return None


def reachable_masks(
    conjunctions: Sequence[Sequence[LabelMatcher]], *, universe: Mapping[str, Iterable[str]] = SAMPLE_VALUES
) -> dict[int, dict[str, str]]:
    """Every combination of conjunctions that some series of the universe satisfies at once.

    Bit i of a mask says conjunction i holds; each mask maps to one witness series (its
    labels that any conjunction mentions, ``""`` standing for a missing label).
    """
    labels = sorted({m.name for c in conjunctions for m in c})
    states: dict[int, dict[str, str]] = {(1 << len(conjunctions)) - 1: {}}
    for label in labels:
        values = _values(label, conjunctions, universe)
        holds = [
            sum(1 << i for i, c in enumerate(conjunctions) if all(m.matches(value) for m in c if m.name == label))
            for value in values
        ]
        following: dict[int, dict[str, str]] = {}
        for mask, witness in states.items():
            for value, bits in zip(values, holds, strict=True):
                following.setdefault(mask & bits, {**witness, label: value})
        states = following
    return states


def _values(
    label: str, conjunctions: Sequence[Sequence[LabelMatcher]], universe: Mapping[str, Iterable[str]]
) -> list[str]:
    values = dict.fromkeys(universe.get(label, ()))
    values.update(dict.fromkeys(_AWKWARD))
    for matcher in (m for c in conjunctions for m in c if m.name == label):
        values.update(dict.fromkeys(_mentioned(matcher)))
    if label == "__name__":
        # Every series has a metric name, and a valid one: the universe models real series.
        return [value for value in values if METRIC_NAME_RE.match(value)]
    return list(values)


def _mentioned(matcher: LabelMatcher) -> Iterator[str]:
    """The value a matcher names and, for a regex, its unescaped alternatives (``a\\.b|c``: ``a.b``, ``c``)."""
    yield matcher.value
    if matcher.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
        for alternative in matcher.value.split("|"):
            plain = alternative.removeprefix("(?:").removesuffix(")")
            yield _REGEX_ESCAPE.sub(r"\1", plain)
            yield _REGEX_ESCAPE.sub(r"\1", plain.replace(".*", "").replace(".+", "x"))


def _conjunction(selector: VectorSelector) -> Conjunction:
    matchers = [] if not selector.name else [LabelMatcher(name="__name__", op=MatchOp.EQUAL, value=selector.name)]
    for matcher in selector.matchers.matchers:
        op = next(ours for theirs, ours in _LIBRARY_OPS if matcher.op == theirs)
        matchers.append(LabelMatcher(name=matcher.name, op=op, value=matcher.value))
    return tuple(matchers)


def _text(selector: Sequence[LabelMatcher]) -> str:
    return "{" + ",".join(str(m) for m in selector) + "}"
