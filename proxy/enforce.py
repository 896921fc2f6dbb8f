"""Enforcing a tenant's policy on a PromQL query by rewriting every vector selector.

Every vector selector S, wherever it stands (inside matrix selectors, subqueries,
function calls, aggregations, both sides of binary operations, with ``offset`` and
``@``), is printed as S ∧ (R1 or … or Rk) (``mtproxy.proxy.selectors``):

- one branch: the selector with the rule's matchers added, or S unchanged when S already
  implies a rule, or S plus a matcher that matches nothing when no rule is compatible
  (so ``up or secret`` returns the visible part; never a refusal, never S itself);
- several branches of an instant selector: their exact union. PromQL's ``or`` alone is
  not one, since it matches series without their metric name and would drop a series
  that differs from another only in its name; each branch therefore carries a copy of
  its name through the ``or`` (``label_join``), removed afterwards (``_union``);
- several branches of a matrix selector that is the argument of a per-series range
  function (``rate``, ``*_over_time`` …), or of a selector in ``timestamp()`` (which
  reads sample times only from a selector): the function distributed over the branches,
  exact because each output series depends only on its own input series. Functions that
  drop the name are distributed over *disjoint* parts of the branches
  (``selectors.split_disjoint``), each tagged with its own number through the ``or``, so
  that where two visible series differ only in their name the union fails exactly as
  Prometheus fails the unrestricted query ("vector cannot contain metrics with the same
  labelset"); past ``MAX_DISJOINT_PARTS`` parts the query is refused with 403;
- several branches of a matrix selector anywhere else: refused with 403, naming the
  selector and how to narrow it. An unrestricted selector is never forwarded.

Regex strings of matchers are read as Go reads them: ``\\Q…\\E`` spans are spelled out
before parsing (``mtproxy.api.expand_literal_spans_in_promql``), since the parser library
lacks them.

The text is printed by the project's printer (``promql_print``), never the parser
library's ``str()``; parsing refuses what Prometheus 2.42 would read differently
(``promql_parity``). Anything the walk does not know is printed by the printer, which
itself refuses unknown nodes. Pure and sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from promql_parser import AggregateExpr, Call, Expr, MatchOp, MatrixSelector, ParenExpr, VectorSelector

from mtproxy.api import LabelMatcher, expand_literal_spans_in_promql
from mtproxy.api import MatchOp as Op
from mtproxy.proxy import promql_parity, selectors
from mtproxy.proxy.errors import BadRequest, Forbidden
from mtproxy.proxy.policy import AccessPolicy
from mtproxy.proxy.promql_parity import PromQLError, duration_ms, parse_promql
from mtproxy.proxy.promql_print import Piece, format_duration_ms, format_expr, format_modifiers, quote_string
from mtproxy.proxy.selectors import (
    MAX_DISJOINT_PARTS,
    RestrictedSelector,
    Restriction,
    restrict_selector,
    split_disjoint,
)

__all__ = [
    "LABEL_WRITING_FUNCTIONS",
    "PER_SERIES_RANGE_FUNCTIONS",
    "UNION_LABEL",
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

_NAME_KEEPING_FUNCTIONS = frozenset({"last_over_time"})
"""Per-series range functions whose output keeps the metric name (2.42 and 3.x)."""
UNION_LABEL = "__mtproxy_branch__"
"""The label a union carries between its operands and its result (see ``_union``); never in an answer.

A stored series that carried this label itself would lose it in a union's answer (names
starting with ``__`` are reserved for Prometheus' internal use, so none should)."""
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

    def _restricted(self, selector: VectorSelector) -> RestrictedSelector:
        return restrict_selector(_matchers(selector), self._policy.rules)

    def rewrite(self, node: Expr) -> list[Piece] | None:
        if isinstance(node, Call | AggregateExpr) and _label_writing(node):
            self.writes_labels = True
        if isinstance(node, VectorSelector):
            restricted = self._restricted(node)
            suffix = format_modifiers(node.offset, node.at)
            texts: list[Piece] = [_braces(branch) + suffix for branch in restricted.branches]
            return texts if len(texts) == 1 else _union([[text] for text in texts], keeps_name=True)
        if isinstance(node, MatrixSelector):
            return [self._matrix_texts(node, self._refuse_union(node))[0]]
        if isinstance(node, Call) and node.func.name in _ABSENT_FUNCTIONS:
            return self._absent(node)
        if isinstance(node, Call) and node.func.name in PER_SERIES_RANGE_FUNCTIONS:
            return self._distributed_call(node)
        if isinstance(node, Call) and node.func.name == "timestamp":
            return self._distributed_timestamp(node)
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
        restricted = self._restricted(selector)
        derived = _absent_labels(restricted.branches[0]) if len(restricted.branches) == 1 else {}
        pieces: list[Piece] = [f"{call.func.name}(", argument, ")"]
        changes = [(name, "") for name in sorted(derived) if name not in original]
        changes += sorted(original.items())
        for name, value in changes:
            pieces = ["label_replace(", *pieces, f', {quote_string(name)}, {quote_string(value)}, "", "")']
        return pieces

    @staticmethod
    def _window(node: MatrixSelector) -> str:
        return format_duration_ms(duration_ms(node.range, what="range", sign="positive"))

    def _refuse_union(self, node: MatrixSelector) -> tuple[tuple[LabelMatcher, ...], ...]:
        restricted = self._restricted(node.vector_selector)
        if restricted.kind is Restriction.UNION:
            raise Forbidden(
                f"the range selector {_describe(node.vector_selector)}[{self._window(node)}] would need several of "
                "your access rules at once, which PromQL can only combine for instant vectors and per-series range "
                "functions; narrow it, e.g. with a __name__ or label matcher that one rule covers"
            )
        return restricted.branches

    def _matrix_texts(self, node: MatrixSelector, branches: Sequence[Sequence[LabelMatcher]]) -> list[str]:
        selector = node.vector_selector
        suffix = f"[{self._window(node)}]{format_modifiers(selector.offset, selector.at)}"
        return [_braces(branch) + suffix for branch in branches]

    def _disjoint(self, restricted: RestrictedSelector, what: str) -> tuple[tuple[LabelMatcher, ...], ...]:
        parts = split_disjoint(restricted.branches)
        if parts is None:
            raise Forbidden(
                f"{what} would need more than {MAX_DISJOINT_PARTS} disjoint parts of your access rules to be "
                "answered exactly; narrow it, e.g. with a __name__ or label matcher that one rule covers"
            )
        return parts

    def _distributed_call(self, call: Call) -> list[Piece] | None:
        """``f(S[d])`` for a per-series range function f: one call per branch, joined by an exact union.

        last_over_time keeps the metric name, so its branches are joined as instant
        selectors are. The other functions drop it: their branches are first made disjoint.
        """
        args = list(call.args)
        matrix_index = next((i for i, a in enumerate(args) if isinstance(a, MatrixSelector)), None)
        if matrix_index is None:
            return None
        matrix = args[matrix_index]
        assert isinstance(matrix, MatrixSelector)
        name = call.func.name
        restricted = self._restricted(matrix.vector_selector)
        keeps_name = name in _NAME_KEEPING_FUNCTIONS
        branches = restricted.branches
        if restricted.kind is Restriction.UNION and not keeps_name:
            branches = self._disjoint(
                restricted, f"{name}({_describe(matrix.vector_selector)}[{self._window(matrix)}])"
            )
        operands: list[list[Piece]] = []
        for text in self._matrix_texts(matrix, branches):
            operand: list[Piece] = [f"{name}("]
            for index, arg in enumerate(args):
                if index:
                    operand.append(", ")
                operand.append(text if index == matrix_index else arg)
            operand.append(")")
            operands.append(operand)
        return operands[0] if len(operands) == 1 else _union(operands, keeps_name=keeps_name)

    def _distributed_timestamp(self, call: Call) -> list[Piece] | None:
        """``timestamp(S)``: Prometheus reads sample times only from a selector argument, so a union is distributed.

        Parentheses are looked through, as Prometheus does. timestamp() drops the metric
        name, so the branches are made disjoint first.
        """
        (argument,) = call.args
        while isinstance(argument, ParenExpr):
            argument = argument.expr
        if not isinstance(argument, VectorSelector):
            return None
        restricted = self._restricted(argument)
        if restricted.kind is not Restriction.UNION:
            return None
        suffix = format_modifiers(argument.offset, argument.at)
        parts = self._disjoint(restricted, f"timestamp({_describe(argument)})")
        return _union([[f"timestamp({_braces(part)}{suffix})"] for part in parts], keeps_name=False)


def _union(operands: Sequence[Sequence[Piece]], *, keeps_name: bool) -> list[Piece]:
    """The exact union of the operands' series, written with PromQL's ``or``.

    ``or`` matches series by their labels without ``__name__``: alone, it would take two
    series that differ only in their name for one and drop the second. So each operand
    first gets the label ``UNION_LABEL``, which ``or`` does compare, and the union's result
    loses it again:

    - operands that keep the metric name (``keeps_name``) get a copy of each series' own
      name: two series are then alike to ``or`` only if they are the same series, which is
      kept once, and removing the copy cannot make two results alike;
    - operands whose function dropped the name get one constant per operand, and must
      share no series (``split_disjoint``): every result then stands for a distinct series,
      and two results left alike after the removal are exactly the case where Prometheus
      fails the unrestricted query ("vector cannot contain metrics with the same
      labelset"), and so does this union.

    label_join and label_replace keep ``__name__`` in Prometheus 2.42 and 3.x, with or
    without delayed name removal.
    """
    label = quote_string(UNION_LABEL)
    pieces: list[Piece] = ["label_replace(("]
    for number, operand in enumerate(operands):
        if number:
            pieces.append(" or ")
        if keeps_name:
            pieces += ["label_join(", *operand, f', {label}, "", "__name__")']
        else:
            pieces += ["label_replace(", *operand, f', {label}, "{number + 1}", "", "")']
    pieces.append(f'), {label}, "", "", "")')
    return pieces


@dataclass(frozen=True, slots=True, kw_only=True)
class EnforcedQuery:
    """The text to send, and whether the query writes labels itself (see ``resultcheck``)."""

    text: str
    writes_labels: bool


def _label_writing(node: Call | AggregateExpr) -> bool:
    return (node.func.name if isinstance(node, Call) else str(node.op)) in LABEL_WRITING_FUNCTIONS


def _parse(query: str) -> Expr:
    return parse_promql(expand_literal_spans_in_promql(query))


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
        text = format_expr(_parse(query), rewrite=enforcer.rewrite)
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
        return format_expr(_parse(query))
    except PromQLError as exc:
        raise BadRequest(f"invalid query: {exc}") from None
