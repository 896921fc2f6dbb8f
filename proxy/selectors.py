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
6. otherwise a union of branches S∧Ri, which the caller writes as an exact union where
   it can, and refuses elsewhere.

Where the caller needs branches that share no series (a union written after a function
that drops the metric name), ``split_disjoint`` rewrites a union's branches into parts
that select the same series together and no series twice.

The reasoning is sound but not complete: "contradicts", "entails" and "contains" are
decided only where equality values or identical matchers make them certain, and a regex
verdict counts only where RE2 and the backend's Go regexp are known to agree
(``LabelMatcher.verdict``): with ``\\pL`` or non-ASCII case folding, the matcher is left
for the backend to evaluate. When it cannot decide, it keeps the rule, so the result is
never wider than the policy; at worst it is a longer query. Pure and sync.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from mtproxy.api import LabelMatcher, MatchOp, Rule

__all__ = [
    "MAX_DISJOINT_PARTS",
    "NOTHING_MATCHER",
    "RestrictedSelector",
    "Restriction",
    "quote_meta",
    "restrict_selector",
    "split_disjoint",
]

NOTHING_MATCHER = LabelMatcher(name="__name__", op=MatchOp.NOT_REGEX, value="(?s:.*)")
"""Matches no series at all (every name matches ``(?s:.*)``, newlines included), yet is a non-empty matcher."""

_TRIVIAL_REGEXES = frozenset({"(?s:.*)", "(?s).*"})
"""Regexes that match every value. Not ``.*``: Prometheus 2.42 anchors as ``^(?:.*)$``, so ``.`` skips newlines."""
_QUOTE_META = frozenset("\\.+*?()|[]{}^$")
MAX_DISJOINT_PARTS = 64
"""``split_disjoint`` gives up beyond this many parts (the query would grow too long)."""
_NEGATED = {
    MatchOp.EQUAL: MatchOp.NOT_EQUAL,
    MatchOp.NOT_EQUAL: MatchOp.EQUAL,
    MatchOp.REGEX: MatchOp.NOT_REGEX,
    MatchOp.NOT_REGEX: MatchOp.REGEX,
}


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


_Groups = dict[str, tuple[LabelMatcher, ...]]
"""Matchers grouped by label name: the only matchers that can interact are on one label."""

_HOLDS_MEMO: dict[tuple[MatchOp, str, str], bool | None] = {}
_HOLDS_MEMO_LIMIT = 65_536
_INDEX_MEMO: dict[int, tuple[Sequence[Rule], _RuleIndex]] = {}
_INDEX_MEMO_LIMIT = 256


_Branches = tuple[tuple[LabelMatcher, ...], ...]
_DISJOINT_MEMO: dict[_Branches, _Branches | None] = {}
_DISJOINT_MEMO_LIMIT = 4096


def forget_memos() -> None:
    """Empty what is remembered per query (regex outcomes, per-name shortlists, outcomes per selector).

    Lets a benchmark measure the first sight of a query. The rules grouped by label stay:
    that is done once per policy, not per query.
    """
    _HOLDS_MEMO.clear()
    _DISJOINT_MEMO.clear()
    for _, index in _INDEX_MEMO.values():
        index.by_name.clear()
        index.restricted.clear()


def _holds(matcher: LabelMatcher, value: str) -> bool | None:
    """``matcher.verdict(value)``: None where the backend's regex engine may judge otherwise.

    Remembered for regexes (a RE2 call through the wrapper costs microseconds).
    """
    op = matcher.op
    if op is MatchOp.EQUAL:
        return value == matcher.value
    if op is MatchOp.NOT_EQUAL:
        return value != matcher.value
    key = (op, matcher.value, value)
    try:
        return _HOLDS_MEMO[key]
    except KeyError:
        pass
    if len(_HOLDS_MEMO) >= _HOLDS_MEMO_LIMIT:
        _HOLDS_MEMO.clear()
    found = _HOLDS_MEMO[key] = matcher.verdict(value)
    return found


def _group(matchers: Sequence[LabelMatcher]) -> _Groups:
    grouped: dict[str, list[LabelMatcher]] = defaultdict(list)
    for matcher in matchers:
        grouped[matcher.name].append(matcher)
    return {name: tuple(group) for name, group in grouped.items()}


def _consistent(fixed: Sequence[LabelMatcher], others: Sequence[LabelMatcher]) -> bool:
    """False when an equality value among ``fixed`` fails a matcher among ``others``."""
    for matcher in fixed:
        if matcher.op is MatchOp.EQUAL:
            value = matcher.value
            for other in others:
                if _holds(other, value) is False:
                    return False
    return True


def _satisfiable(groups: _Groups) -> bool:
    """False when an equality value on some label fails another matcher on that label."""
    return all(_consistent(group, group) for group in groups.values())


@dataclass(frozen=True, slots=True)
class _IndexedRule:
    """A rule with its matchers grouped by label, computed once per rule set."""

    rule: Rule
    groups: _Groups
    satisfiable: bool


@dataclass(slots=True)
class _RuleIndex:
    """A rule set indexed for restriction, with the rules each metric name can meet remembered."""

    rules: tuple[_IndexedRule, ...]
    by_name: dict[str, tuple[_IndexedRule, ...]] = field(default_factory=dict)
    restricted: dict[tuple[LabelMatcher, ...], RestrictedSelector] = field(default_factory=dict)
    """Outcomes per selector: a dashboard sends the same selectors on every refresh."""

    def candidates(self, selector: _Groups) -> tuple[_IndexedRule, ...]:
        """The rules not already excluded by the selector's ``__name__`` equality, if it has one."""
        names = [m.value for m in selector.get("__name__", ()) if m.op is MatchOp.EQUAL]
        if len(names) != 1:
            return self.rules
        name = names[0]
        found = self.by_name.get(name)
        if found is None:
            if len(self.by_name) >= _BY_NAME_LIMIT:
                self.by_name.clear()
            found = self.by_name[name] = tuple(
                r for r in self.rules if all(_holds(m, name) is not False for m in r.groups.get("__name__", ()))
            )
        return found


_BY_NAME_LIMIT = 4096
_RESTRICTED_LIMIT = 4096


def _index(rules: Sequence[Rule]) -> _RuleIndex:
    """The rules, indexed; remembered per rule-set object (the policy's tuple lives as long as the policy).

    The memo holds a strong reference to ``rules``, so no other object can take its id
    while the entry exists, and identity is checked before an entry is used.
    """
    entry = _INDEX_MEMO.get(id(rules))
    if entry is not None and entry[0] is rules:
        return entry[1]
    entries = []
    for rule in rules:
        grouped = _group(rule.matchers)
        entries.append(_IndexedRule(rule, grouped, _satisfiable(grouped)))
    indexed = _RuleIndex(rules=tuple(entries))
    if len(_INDEX_MEMO) >= _INDEX_MEMO_LIMIT:
        _INDEX_MEMO.clear()
    _INDEX_MEMO[id(rules)] = (rules, indexed)
    return indexed


def _compatible(selector: _Groups, rule: _IndexedRule) -> bool:
    """Whether S ∧ R can hold, given that S and R can each hold alone."""
    if not rule.satisfiable:
        return False
    for name, theirs in rule.groups.items():
        ours = selector.get(name)
        if ours is not None and not (_consistent(ours, theirs) and _consistent(theirs, ours)):
            return False
    return True


def _always_true(matcher: LabelMatcher) -> bool:
    return matcher.op is MatchOp.REGEX and matcher.value in _TRIVIAL_REGEXES


def _implies(given: _Groups, wanted: LabelMatcher) -> bool:
    """Whether every series satisfying all of ``given`` satisfies ``wanted``."""
    if _always_true(wanted):
        return True
    same_label = given.get(wanted.name, ())
    for matcher in same_label:
        if matcher.op is MatchOp.EQUAL:
            return _holds(wanted, matcher.value) is True
    for matcher in same_label:
        if matcher.op is wanted.op and matcher.value == wanted.value:
            return True
        # every value the given matcher admits differs from the one ``wanted`` excludes
        if wanted.op is MatchOp.NOT_EQUAL and _holds(matcher, wanted.value) is False:
            return True
    return False


def _implies_all(given: _Groups, wanted: Sequence[LabelMatcher]) -> bool:
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
    index = _index(rules)
    found = index.restricted.get(base)
    if found is None:
        if len(index.restricted) >= _RESTRICTED_LIMIT:
            index.restricted.clear()
        found = index.restricted[base] = _restrict(base, index)
    return found


def _drop_contained(base: tuple[LabelMatcher, ...], compatible: list[_IndexedRule]) -> list[Rule]:
    """Step 3: the rules left once each rule Ri with S∧Ri inside some S∧Rj is dropped."""
    if len(compatible) == 1:
        return [compatible[0].rule]
    kept: list[Rule] = []
    for index, indexed in enumerate(compatible):
        rule = indexed.rule
        given = _group(base + rule.matchers)
        contained = any(
            _implies_all(given, other.rule.matchers)
            for other_index, other in enumerate(compatible)
            if other_index != index and (other.rule in kept or other_index > index) and other.rule != rule
        )
        if not contained and rule not in kept:
            kept.append(rule)
    return kept


def _restrict(base: tuple[LabelMatcher, ...], rule_index: _RuleIndex) -> RestrictedSelector:
    groups = _group(base)
    compatible = [r for r in rule_index.candidates(groups) if _compatible(groups, r)] if _satisfiable(groups) else []
    if not compatible:
        return RestrictedSelector(kind=Restriction.EMPTY, branches=((*base, NOTHING_MATCHER),))
    if any(_implies_all(groups, r.rule.matchers) for r in compatible):
        return RestrictedSelector(kind=Restriction.UNCHANGED, branches=(base,))
    kept = _drop_contained(base, compatible)
    extras = [tuple(m for m in r.matchers if not _implies(groups, m)) for r in kept]
    if len(extras) == 1:
        return RestrictedSelector(kind=Restriction.RESTRICTED, branches=((*base, *extras[0]),))
    merged = _merge_single_label(extras)
    if merged is not None:
        common = [m for m in extras[0] if all(m in e for e in extras)]
        return RestrictedSelector(kind=Restriction.RESTRICTED, branches=((*base, *common, merged),))
    return RestrictedSelector(kind=Restriction.UNION, branches=tuple((*base, *extra) for extra in extras))


def split_disjoint(branches: _Branches) -> _Branches | None:
    """Parts that together select exactly the series of ``branches``, no series in two parts.

    Branches are taken widest first (fewest matchers). Each one, B, loses what an earlier
    part D already selects: unless B ∧ D is provably empty, B becomes B ∧ ¬m1,
    B ∧ m1 ∧ ¬m2, …, for the matchers m1, m2, … of D that B does not imply (¬ swaps ``=``
    with ``!=`` and ``=~`` with ``!~``, an exact complement, a missing label reading as
    ``""`` on both sides); when B implies all of D, nothing of B is left. Parts provably
    empty are left out. Sound like the rest of the module: "provably" uses only verdicts
    the backend shares, so an undecided part is kept, and kept parts are still disjoint.

    Returns None when more than ``MAX_DISJOINT_PARTS`` parts would be needed.
    """
    key = tuple(branches)
    if key in _DISJOINT_MEMO:
        return _DISJOINT_MEMO[key]
    if len(_DISJOINT_MEMO) >= _DISJOINT_MEMO_LIMIT:
        _DISJOINT_MEMO.clear()
    found = _DISJOINT_MEMO[key] = _split_disjoint(key)
    return found


def _split_disjoint(branches: _Branches) -> _Branches | None:
    kept: list[tuple[LabelMatcher, ...]] = []
    for branch in sorted(branches, key=len):
        parts = [branch]
        for done in kept:
            parts = [piece for part in parts for piece in _minus(part, done)]
            if len(kept) + len(parts) > MAX_DISJOINT_PARTS:
                return None
        kept.extend(parts)
    return tuple(kept)


def _minus(part: tuple[LabelMatcher, ...], done: tuple[LabelMatcher, ...]) -> list[tuple[LabelMatcher, ...]]:
    """``part`` without the series of ``done``, as disjoint conjunctions."""
    given = _group(part)
    if not _satisfiable(_group(part + done)):
        return [part]  # already disjoint
    missing = [m for m in done if not _implies(given, m)]
    pieces = []
    for index, matcher in enumerate(missing):
        negated = LabelMatcher(name=matcher.name, op=_NEGATED[matcher.op], value=matcher.value)
        piece = (*part, *missing[:index], negated)
        if _satisfiable(_group(piece)):
            pieces.append(piece)
    return pieces
