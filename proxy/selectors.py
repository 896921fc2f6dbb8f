"""Restricting one vector selector to an access policy: the six steps of DESIGN.md.

Given a selector S (its matchers, the metric name included as ``__name__="…"``) and the
rules R1…Rk of a policy, ``restrict_selector`` returns an equivalent of S ∧ (R1 or … or Rk):

1. rules that contradict S are dropped; if none remain the result selects nothing
   (``Restriction.EMPTY``), never S itself;
2. a rule entailed by S means S is already inside the policy: S is kept as it is;
3. a rule Ri with S∧Ri contained in S∧Rj (j ≠ i) is dropped;
4. one rule left: its matchers (those S does not already imply) are added to S;
5. several, differing only in one label's ``=``/``=~`` matchers: merged into one ``=~``
   alternation (``=`` values regex-escaped as Go's ``regexp.QuoteMeta`` does);
6. otherwise a union of branches S∧Ri, which the caller writes as ``(… or …)`` where
   that is exact, and refuses elsewhere.

The reasoning is sound but not complete: "contradicts", "entails" and "contains" are
decided only where equality values or identical matchers make them certain. When it
cannot decide, it keeps the rule, so the result is never wider than the policy; at worst
it is a longer query. Pure and sync.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from mtproxy.api import LabelMatcher, MatchOp, Rule

__all__ = ["NOTHING_MATCHER", "RestrictedSelector", "Restriction", "quote_meta", "restrict_selector"]

NOTHING_MATCHER = LabelMatcher(name="__name__", op=MatchOp.NOT_REGEX, value="(?s:.*)")
"""Matches no series at all (every name matches ``(?s:.*)``, newlines included), yet is a non-empty matcher."""

_TRIVIAL_REGEXES = frozenset({"(?s:.*)", "(?s).*"})
"""Regexes that match every value. Not ``.*``: Prometheus 2.42 anchors as ``^(?:.*)$``, so ``.`` skips newlines."""
_QUOTE_META = frozenset("\\.+*?()|[]{}^$")


class Restriction(enum.Enum):
    """The shape of a restricted selector."""

    UNCHANGED = "unchanged"
    """S already lies inside the policy (step 2)."""
    RESTRICTED = "restricted"
    """One selector, S with matchers added (steps 4 and 5)."""
    UNION = "union"
    """Several branches whose union is exact (step 6)."""
    EMPTY = "empty"
    """No rule is compatible with S (step 1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RestrictedSelector:
    """The outcome for one selector; ``branches`` holds one matcher tuple per selector to write."""

    kind: Restriction
    branches: tuple[tuple[LabelMatcher, ...], ...]


def quote_meta(text: str) -> str:
    """Escape every RE2 metacharacter, as Go's ``regexp.QuoteMeta``."""
    return "".join("\\" + ch if ch in _QUOTE_META else ch for ch in text)


def _by_label(matchers: Sequence[LabelMatcher]) -> dict[str, list[LabelMatcher]]:
    grouped: dict[str, list[LabelMatcher]] = defaultdict(list)
    for matcher in matchers:
        grouped[matcher.name].append(matcher)
    return grouped


def _satisfiable(matchers: Sequence[LabelMatcher]) -> bool:
    """False when an equality value on some label fails another matcher on that label."""
    for group in _by_label(matchers).values():
        for fixed in (m.value for m in group if m.op is MatchOp.EQUAL):
            if not all(m.matches(fixed) for m in group):
                return False
    return True


def _always_true(matcher: LabelMatcher) -> bool:
    return matcher.op is MatchOp.REGEX and matcher.value in _TRIVIAL_REGEXES


def _implies(given: Sequence[LabelMatcher], wanted: LabelMatcher) -> bool:
    """Whether every series satisfying all of ``given`` satisfies ``wanted``."""
    if _always_true(wanted):
        return True
    same_label = [m for m in given if m.name == wanted.name]
    for matcher in same_label:
        if matcher.op is MatchOp.EQUAL:
            return wanted.matches(matcher.value)
    for matcher in same_label:
        if matcher.op is wanted.op and matcher.value == wanted.value:
            return True
        # every value the given matcher admits differs from the one ``wanted`` excludes
        if wanted.op is MatchOp.NOT_EQUAL and not matcher.matches(wanted.value):
            return True
    return False


def _implies_all(given: Sequence[LabelMatcher], wanted: Sequence[LabelMatcher]) -> bool:
    return all(_implies(given, m) for m in wanted)


def _merge_single_label(extras: list[tuple[LabelMatcher, ...]]) -> LabelMatcher | None:
    """Step 5: one ``=~`` matcher standing for all rules, or None when they differ elsewhere."""
    differing = [set(extra) for extra in extras]
    common = set.intersection(*differing)
    rest = [d - common for d in differing]
    labels = {m.name for r in rest for m in r}
    if len(labels) != 1 or any(len(r) != 1 for r in rest):
        return None
    alternatives: list[str] = []
    for (matcher,) in (tuple(r) for r in rest):
        if matcher.op is MatchOp.EQUAL:
            alternatives.append(quote_meta(matcher.value))
        elif matcher.op is MatchOp.REGEX:
            alternatives.append(f"(?:{matcher.value})")
        else:
            return None
    return LabelMatcher(name=labels.pop(), op=MatchOp.REGEX, value="|".join(sorted(set(alternatives))))


def restrict_selector(selector: Sequence[LabelMatcher], rules: Sequence[Rule]) -> RestrictedSelector:
    """S ∧ (R1 or … or Rk), by the six steps in the module docstring."""
    base = tuple(selector)
    compatible = [r for r in rules if _satisfiable(base + r.matchers)]
    if not compatible:
        return RestrictedSelector(kind=Restriction.EMPTY, branches=((*base, NOTHING_MATCHER),))
    if any(_implies_all(base, r.matchers) for r in compatible):
        return RestrictedSelector(kind=Restriction.UNCHANGED, branches=(base,))
    kept: list[Rule] = []
    for index, rule in enumerate(compatible):
        given = base + rule.matchers
        contained = any(
            _implies_all(given, other.matchers)
            for other_index, other in enumerate(compatible)
            if other_index != index and (other in kept or other_index > index) and other != rule
        )
        if not contained and rule not in kept:
            kept.append(rule)
    extras = [tuple(m for m in r.matchers if not _implies(base, m)) for r in kept]
    if len(extras) == 1:
        return RestrictedSelector(kind=Restriction.RESTRICTED, branches=((*base, *extras[0]),))
    merged = _merge_single_label(extras)
    if merged is not None:
        common = [m for m in extras[0] if all(m in e for e in extras)]
        return RestrictedSelector(kind=Restriction.RESTRICTED, branches=((*base, *common, merged),))
    return RestrictedSelector(kind=Restriction.UNION, branches=tuple((*base, *extra) for extra in extras))
