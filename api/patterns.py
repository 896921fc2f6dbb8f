"""Metric patterns (``spec.metrics`` entries) parsed into access rules.

Each entry is one of three forms, told apart in this order:

1. a vector selector, when it contains ``{`` or ``}``: ``{job="my-app"}``,
   ``up{job="x"}``, ``{__name__=~"a|b",job!="y"}``; parsed by a real PromQL parser, so
   ``=~``, ``!=`` and ``!~`` mean what they mean in PromQL and a regex is anchored;
2. an exact metric name, when it is a valid metric name (``[a-zA-Z_:][a-zA-Z0-9_:]*``):
   such a string has no regex metacharacter, so it can only mean itself;
3. otherwise an RE2 regex over the metric name, **fully anchored** as Prometheus anchors
   ``=~`` (``http_.*`` does not match ``my_http_x``). The original matched regexes
   unanchored; this is a deliberate fix, documented in the README.

The rule of an entry is its matchers ANDed with the object's ``labelSelectors`` (equality)
and, under ``metricIsolation``, with ``namespace="<namespace>"``.

Every entry, whatever its form, passes the depth-and-size guard of
``mtproxy.api.promql_guard`` first, and selectors are parsed only through it: an entry or a
``match[]`` selector deep enough to overflow the native parser's stack is a
``PatternError``, never a crash of every process that reads the object. A selector's regex
``\\Q…\\E`` spans are spelled out first, as for queries, so Go's literal spans mean here
what they mean to Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import promql_parser

from mtproxy.api.errors import PatternError
from mtproxy.api.matchers import LABEL_NAME_RE, METRIC_NAME_RE, LabelMatcher, MatchOp, Rule
from mtproxy.api.promql_guard import ParserInputError, ParserInputRefused, check_parser_depth, parse_guarded
from mtproxy.api.regex import compile_anchored
from mtproxy.api.regex_text import expand_literal_spans_in_promql

__all__ = ["ISOLATION_LABEL", "parse_pattern", "parse_selector", "rule_for_pattern", "rules_for"]

ISOLATION_LABEL = "namespace"

# The library's MatchOp is not hashable; its members compare by equality only.
_LIBRARY_OPS = (
    (promql_parser.MatchOp.Equal, MatchOp.EQUAL),
    (promql_parser.MatchOp.NotEqual, MatchOp.NOT_EQUAL),
    (promql_parser.MatchOp.Re, MatchOp.REGEX),
    (promql_parser.MatchOp.NotRe, MatchOp.NOT_REGEX),
)


def _library_op(op: object) -> MatchOp:
    for library_op, ours in _LIBRARY_OPS:
        if op == library_op:
            return ours
    raise ValueError(f"unknown matcher operator {op!r}")  # fail closed on a new library operator


# One matcher of a selector body, as Prometheus 2.42 writes it: an identifier, an
# operator, a quoted string. Used only to refuse syntax newer than 2.42 (quoted label or
# metric names) that the parser library accepts.
_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
_BODY_ITEM = re.compile(r"\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*(?:" + _STRING + r")\s*(?:,|$)", re.S)
_MAX_PATTERN_LENGTH = 16_384


def parse_pattern(pattern: str) -> tuple[LabelMatcher, ...]:
    """The matchers one ``metrics`` entry stands for.

    Raises:
        PatternError: the entry is empty, too long, or not a name, RE2 regex or selector.
    """
    if not isinstance(pattern, str):
        raise PatternError(str(pattern), "must be a string")
    text = pattern.strip()
    if not text:
        raise PatternError(pattern, "must not be empty")
    if len(text) > _MAX_PATTERN_LENGTH:
        raise PatternError(pattern, f"is longer than {_MAX_PATTERN_LENGTH} characters")
    if "{" in text or "}" in text:
        return _parse_selector(pattern, text)
    # A name or regex is never parsed as PromQL here, but its rule is printed into every query
    # and match[] of the tenant: the same depth bound keeps those texts parseable.
    # Escapes are left alone: a regex's \xff means U+00FF to RE2 and to Go alike.
    try:
        check_parser_depth(text, what="pattern", max_chars=_MAX_PATTERN_LENGTH)
    except ParserInputRefused as exc:
        raise PatternError(pattern, _refusal(exc, what="pattern")) from None
    if METRIC_NAME_RE.match(text):
        return (LabelMatcher(name="__name__", op=MatchOp.EQUAL, value=text),)
    try:
        regex = compile_anchored(text)
    except ValueError as exc:
        raise PatternError(pattern, f"is neither a metric name, a selector nor a valid regex: {exc}") from None
    matchers = [LabelMatcher(name="__name__", op=MatchOp.REGEX, value=text)]
    if regex.fullmatch("") is not None:
        # Every series has a name, so "or empty" changes nothing; the extra matcher keeps
        # the rule a selector Prometheus accepts (it refuses all-empty-matching selectors).
        matchers.append(LabelMatcher(name="__name__", op=MatchOp.NOT_EQUAL, value=""))
    return tuple(matchers)


def parse_selector(text: str) -> tuple[LabelMatcher, ...]:
    """The matchers of a PromQL series selector (``up``, ``up{job="x"}``, ``{__name__=~"a.*"}``).

    This is what ``match[]`` parameters hold: unlike ``parse_pattern``, a bare ``http_.*``
    is an error here, as it is for Prometheus.

    Raises:
        PatternError: not a plain vector selector Prometheus 2.42 accepts.
    """
    if not isinstance(text, str) or not text.strip():
        raise PatternError(str(text), "must be a non-empty series selector")
    if len(text) > _MAX_PATTERN_LENGTH:
        raise PatternError(text, f"is longer than {_MAX_PATTERN_LENGTH} characters")
    return _parse_selector(text, text.strip())


def _refusal(exc: ParserInputRefused, *, what: str) -> str:
    """The guard's refusal as a pattern problem: the reason alone when it is about the whole text."""
    return exc.reason if exc.construct == what else str(exc)


def _parse_selector(pattern: str, text: str) -> tuple[LabelMatcher, ...]:
    text = expand_literal_spans_in_promql(text)  # only escapes added: no operator or bracket more
    try:
        expr = parse_guarded(text, what="selector")
    except ParserInputRefused as exc:
        raise PatternError(pattern, _refusal(exc, what="selector")) from None
    except ParserInputError as exc:
        raise PatternError(pattern, f"is not a valid selector: {exc}") from None
    if not isinstance(expr, promql_parser.VectorSelector):
        raise PatternError(pattern, f"must be a plain vector selector, not a {type(expr).__name__}")
    if expr.offset is not None or expr.at is not None:
        raise PatternError(pattern, "must not use offset or @")
    if expr.matchers.or_matchers:
        raise PatternError(pattern, "must not use 'or' inside braces (not PromQL before Prometheus 3)")
    body = text[text.index("{") + 1 : text.rindex("}")] if "{" in text else ""
    if body.strip() and not _is_plain_body(body):
        raise PatternError(pattern, "must name each label with an identifier (quoted names are not PromQL 2.x)")
    matchers: list[LabelMatcher] = []
    if expr.name:
        matchers.append(LabelMatcher(name="__name__", op=MatchOp.EQUAL, value=expr.name))
    for item in expr.matchers.matchers:
        if not LABEL_NAME_RE.match(item.name):
            raise PatternError(pattern, f"has an invalid label name {item.name!r}")
        try:
            matchers.append(LabelMatcher(name=item.name, op=_library_op(item.op), value=item.value))
        except ValueError as exc:
            raise PatternError(pattern, str(exc)) from None
    return tuple(matchers)


def _is_plain_body(body: str) -> bool:
    position = 0
    stripped = body.rstrip()
    while position < len(stripped):
        match = _BODY_ITEM.match(stripped, position)
        if match is None or match.end() == position:
            return False
        position = match.end()
    return True


def rule_for_pattern(
    pattern: str,
    *,
    label_selectors: Mapping[str, str],
    isolation_namespace: str | None,
) -> Rule:
    """The rule of one entry: its matchers, the label selectors and the isolation label."""
    matchers = list(parse_pattern(pattern))
    for name, value in label_selectors.items():
        matchers.append(LabelMatcher(name=name, op=MatchOp.EQUAL, value=value))
    if isolation_namespace is not None:
        matchers.append(LabelMatcher(name=ISOLATION_LABEL, op=MatchOp.EQUAL, value=isolation_namespace))
    return Rule.of(matchers)


def rules_for(
    patterns: Iterable[str],
    *,
    label_selectors: Mapping[str, str],
    isolation_namespace: str | None,
) -> tuple[Rule, ...]:
    """The rules of a whole ``metrics`` list, de-duplicated, in first-seen order."""
    seen: dict[Rule, None] = {}
    for pattern in patterns:
        seen.setdefault(
            rule_for_pattern(pattern, label_selectors=label_selectors, isolation_namespace=isolation_namespace)
        )
    return tuple(seen)
