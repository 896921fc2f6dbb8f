"""Enforcing a tenant's policy on a PromQL query by rewriting every vector selector.

Every vector selector S, wherever it stands (inside matrix selectors, subqueries,
function calls, aggregations, both sides of binary operations, with ``offset`` and
``@``), is printed as S ∧ (R1 or … or Rk) (``mtproxy.proxy.selectors``):

- one branch: the selector with the rule's matchers added, or S unchanged when S already
  implies a rule, or S plus a matcher that matches nothing when no rule is compatible
  (so ``up or secret`` returns the visible part; never a refusal, never S itself);
- several branches of an instant selector: ``(S∧R1 or S∧R2 …)``, which is exact;
- several branches of a matrix selector that is the argument of a per-series range
  function (``rate``, ``*_over_time`` …): the function distributed over the branches,
  ``(rate(S∧R1[5m]) or rate(S∧R2[5m]))``, exact because each output series depends
  only on its own input series. One difference remains: where two visible series differ
  only in their metric name, Prometheus fails the unrestricted query ("vector cannot
  contain metrics with the same labelset") while the union keeps one of them;
- several branches of a matrix selector anywhere else: refused with 403, naming the
  selector and how to narrow it. An unrestricted selector is never forwarded.

The text is printed by the project's printer (``promql_print``), never the parser
library's ``str()``; parsing refuses what Prometheus 2.42 would read differently
(``promql_parity``). Anything the walk does not know is printed by the printer, which
itself refuses unknown nodes. Pure and sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from promql_parser import AggregateExpr, Call, Expr, MatchOp, MatrixSelector, ParenExpr, VectorSelector

from mtproxy.api import LabelMatcher
from mtproxy.api import MatchOp as Op
from mtproxy.proxy import promql_parity, selectors
from mtproxy.proxy.errors import BadRequest, Forbidden
from mtproxy.proxy.policy import AccessPolicy
from mtproxy.proxy.promql_parity import PromQLError, duration_ms, parse_promql
from mtproxy.proxy.promql_print import Piece, format_duration_ms, format_expr, format_modifiers, quote_string
from mtproxy.proxy.selectors import Restriction, restrict_selector

__all__ = [
    "LABEL_WRITING_FUNCTIONS",
    "PER_SERIES_RANGE_FUNCTIONS",
    "EnforcedQuery",
    "enforce",
    "enforce_query",
    "forget_memos",
    "normalize_query",
]

PER_SERIES_RANGE_FUNCTIONS = frozenset(
    {
        "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "holt_winters",
        "changes", "resets", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
        "count_over_time", "quantile_over_time", "stddev_over_time", "stdvar_over_time",
        "last_over_time", "present_over_time",
    }
)  # fmt: skip
"""Functions whose every output series depends on one input series only (absent_over_time does not)."""

_ABSENT_FUNCTIONS = frozenset({"absent", "absent_over_time"})
LABEL_WRITING_FUNCTIONS = frozenset({"label_replace", "label_join", "count_values", "absent", "absent_over_time"})
"""Functions (and the count_values aggregation) whose output labels come from the query text."""

_OPS = (
    (MatchOp.Equal, Op.EQUAL),
    (MatchOp.NotEqual, Op.NOT_EQUAL),
    (MatchOp.Re, Op.REGEX),
    (MatchOp.NotRe, Op.NOT_REGEX),
)


_MATCHER_MEMO: dict[tuple[str, Op, str], LabelMatcher] = {}
_MATCHER_MEMO_LIMIT = 65_536


def _label_matcher(name: str, op: Op, value: str) -> LabelMatcher:
    """The validated matcher, remembered: dashboards send the same matchers on every refresh."""
    key = (name, op, value)
    found = _MATCHER_MEMO.get(key)
    if found is None:
        try:
            found = LabelMatcher(name=name, op=op, value=value)
        except ValueError as exc:
            raise BadRequest(f"invalid matcher {name}: {exc}") from None
        if len(_MATCHER_MEMO) >= _MATCHER_MEMO_LIMIT:
            _MATCHER_MEMO.clear()
        _MATCHER_MEMO[key] = found
    return found


def forget_memos() -> None:
    """Empty what enforcement remembers per query (matchers, regex outcomes, restrictions, parser checks).

    For benchmarks that measure the first sight of a query; a running proxy never needs it.
    """
    _MATCHER_MEMO.clear()
    selectors.forget_memos()
    promql_parity.forget_memos()


def _matchers(selector: VectorSelector) -> tuple[LabelMatcher, ...]:
    out: list[LabelMatcher] = []
    if selector.name:
        out.append(_label_matcher("__name__", Op.EQUAL, selector.name))
    for matcher in selector.matchers.matchers:
        op = next((ours for theirs, ours in _OPS if matcher.op == theirs), None)
        if op is None:
            raise BadRequest(f"unknown matcher operator in {matcher.name}")
        out.append(_label_matcher(matcher.name, op, matcher.value))
    return tuple(out)


def _absent_labels(matchers: Sequence[LabelMatcher]) -> dict[str, str]:
    """The labels Prometheus 2.42 gives absent()'s output for a selector with these matchers.

    In order: the first equality matcher on a label sets it; any other matcher on that
    label (a later equality included) deletes it; ``__name__`` is ignored.
    """
    labels: dict[str, str] = {}
    had: set[str] = set()
    for matcher in matchers:
        if matcher.name == "__name__":
            continue
        if matcher.op is Op.EQUAL and matcher.name not in had:
            labels[matcher.name] = matcher.value
            had.add(matcher.name)
        else:
            labels.pop(matcher.name, None)
    return labels


def _braces(branch: Sequence[LabelMatcher]) -> str:
    return "{" + ",".join(f"{m.name}{m.op.value}{quote_string(m.value)}" for m in branch) + "}"


def _describe(selector: VectorSelector) -> str:
    return _braces(_matchers(selector))


class _Enforcer:
    """The printing hook that writes each selector restricted to the policy."""

    def __init__(self, policy: AccessPolicy) -> None:
        self._policy = policy
        self.writes_labels = False
        """Whether a node seen so far writes labels from the query text (every node is seen)."""

    def _branches(self, selector: VectorSelector) -> tuple[Restriction, list[str]]:
        restricted = restrict_selector(_matchers(selector), self._policy.rules)
        return restricted.kind, [_braces(branch) for branch in restricted.branches]

    def rewrite(self, node: Expr) -> list[Piece] | None:
        if isinstance(node, Call | AggregateExpr) and _label_writing(node):
            self.writes_labels = True
        if isinstance(node, VectorSelector):
            kind, branches = self._branches(node)
            suffix = format_modifiers(node.offset, node.at)
            if kind is Restriction.UNION:
                return ["(" + " or ".join(branch + suffix for branch in branches) + ")"]
            return [branches[0] + suffix]
        if isinstance(node, MatrixSelector):
            return [self._matrix_text(node, allow_union=False)[0]]
        if isinstance(node, Call) and node.func.name in _ABSENT_FUNCTIONS:
            return self._absent(node)
        if isinstance(node, Call) and node.func.name in PER_SERIES_RANGE_FUNCTIONS:
            return self._distributed_call(node)
        return None

    def _absent(self, call: Call) -> list[Piece] | None:
        """``absent(S)`` answering with the labels Prometheus derives from the *original* S.

        Prometheus labels absent()'s output with the equality matchers of a selector
        argument (parentheses are looked through), so the matchers the rewrite adds would
        show up there, and reveal the policy. The labels derived from the rewritten
        selector that the original would not have are deleted, and the original's are set,
        with label_replace; derivation follows 2.42: equality matchers other than
        __name__, a label matched twice left out.
        """
        (argument,) = call.args
        while isinstance(argument, ParenExpr):  # Prometheus looks through parentheses here too
            argument = argument.expr
        selector = argument.vector_selector if isinstance(argument, MatrixSelector) else argument
        if not isinstance(selector, VectorSelector):
            return None
        original = _absent_labels(_matchers(selector))
        restricted = restrict_selector(_matchers(selector), self._policy.rules)
        derived = _absent_labels(restricted.branches[0]) if len(restricted.branches) == 1 else {}
        pieces: list[Piece] = [f"{call.func.name}(", argument, ")"]
        changes = [(name, "") for name in sorted(derived) if name not in original]
        changes += sorted(original.items())
        for name, value in changes:
            pieces = ["label_replace(", *pieces, f', {quote_string(name)}, {quote_string(value)}, "", "")']
        return pieces

    def _matrix_text(self, node: MatrixSelector, *, allow_union: bool) -> list[str]:
        selector = node.vector_selector
        kind, branches = self._branches(selector)
        window = format_duration_ms(duration_ms(node.range, what="range", sign="positive"))
        suffix = f"[{window}]{format_modifiers(selector.offset, selector.at)}"
        if kind is Restriction.UNION and not allow_union:
            raise Forbidden(
                f"the range selector {_describe(selector)}[{window}] would need several of your access rules at once, "
                "which PromQL can only combine for instant vectors and per-series range functions; narrow it, "
                "e.g. with a __name__ or label matcher that one rule covers"
            )
        return [branch + suffix for branch in branches]

    def _distributed_call(self, call: Call) -> list[Piece] | None:
        args = list(call.args)
        matrix_index = next((i for i, a in enumerate(args) if isinstance(a, MatrixSelector)), None)
        if matrix_index is None:
            return None
        matrix = args[matrix_index]
        assert isinstance(matrix, MatrixSelector)
        texts = self._matrix_text(matrix, allow_union=True)
        name = call.func.name
        pieces: list[Piece] = ["("] if len(texts) > 1 else []
        for number, text in enumerate(texts):
            if number:
                pieces.append(" or ")
            pieces.append(f"{name}(")
            for index, arg in enumerate(args):
                if index:
                    pieces.append(", ")
                pieces.append(text if index == matrix_index else arg)
            pieces.append(")")
        if len(texts) > 1:
            pieces.append(")")
        return pieces


@dataclass(frozen=True, slots=True, kw_only=True)
class EnforcedQuery:
    """The text to send, and whether the query writes labels itself (see ``resultcheck``)."""

    text: str
    writes_labels: bool


def _label_writing(node: Call | AggregateExpr) -> bool:
    return (node.func.name if isinstance(node, Call) else str(node.op)) in LABEL_WRITING_FUNCTIONS


def enforce(query: str, policy: AccessPolicy) -> EnforcedQuery:
    """The query with every selector restricted to ``policy``.

    Raises:
        BadRequest: the query does not parse, or uses what Prometheus 2.42 would read differently.
        Forbidden: a selector's restriction cannot be written exactly where it stands.
    """
    if not policy.rules:
        raise Forbidden(f"namespace {policy.namespace!r} has no access rules")
    try:
        enforcer = _Enforcer(policy)
        text = format_expr(parse_promql(query), rewrite=enforcer.rewrite)
        return EnforcedQuery(text=text, writes_labels=enforcer.writes_labels)
    except PromQLError as exc:
        raise BadRequest(f"invalid query: {exc}") from None


def enforce_query(query: str, policy: AccessPolicy) -> str:
    """The enforced query text (see ``enforce``)."""
    return enforce(query, policy).text


def normalize_query(query: str) -> str:
    """The query parsed and printed by the project's printer, without restriction (format_query).

    Raises:
        BadRequest: the query does not parse, or is too deep for the backend to format.
    """
    try:
        return format_expr(parse_promql(query))
    except PromQLError as exc:
        raise BadRequest(f"invalid query: {exc}") from None
