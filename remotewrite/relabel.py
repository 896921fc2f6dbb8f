"""Relabelling of one series' labels by a tenant's ``metricRelabelings``, exactly as Prometheus relabels.

This is Prometheus' ``model/relabel/relabel.go`` (``Process``, with its
``labels.Builder``) in Python. :func:`compile_rules` validates the rules as Prometheus
does (``api.relabel.relabel_problems``) and compiles each regex once, anchored as
``^(?s:regex)$`` with RE2, the syntax Go's regexp implements; :func:`apply` runs them,
in order, on one series.

Guarantees:

- **Prometheus' semantics.** A missing source label reads as ``""``; source values are
  joined with the separator; ``replace`` expands ``$1``/``${name}`` in ``target_label``
  and ``replacement`` by Go's rules (:mod:`.relabel_expand`), changes nothing when the
  regex does not match or the expanded target is no label name, and deletes the target
  when the result is empty; ``labelmap``/``labeldrop``/``labelkeep`` see the labels as
  they were before the rule, ``__name__`` included, and ``labelmap`` visits them in
  ``Builder.Range`` order, so the same one wins when two names map to one; setting
  ``""`` deletes, and an input label valued ``""`` is absent, as in ``labels.Builder``;
  ``lowercase``/``uppercase`` map one character to one as Go does (``ß`` stays, ``İ``
  lowers to ``i``, no final-sigma form); the first rule that drops the series ends it.
- **Checked and compiled once.** A rule Prometheus would reject raises ``ValueError``
  naming ``rules[i].<field>``; nothing is parsed or compiled per series.
- **Never raises on data.** Any labels, any Unicode. A lone surrogate has no UTF-8 form
  for RE2 or MD5 to read (and no Prometheus JSON holds one); when a rule must read one,
  the series is relabelled as if each lone surrogate were U+FFFD, as Go's JSON decoder
  reads an unpaired ``\\ud800``.
- **Pure.** :func:`apply` does no I/O and never changes its input. The only mutable
  state is a bounded per-rule memo of regex and hash outcomes, which changes speed,
  never results, and stays correct under threads (entries are written whole; a full
  memo is emptied; a lookup treats a missing key as "compute it").

Representation and speed (about 100,000 series per cycle): label sets come as dicts
(the JSON of a query result) or as a :data:`LabelSet`, a sorted tuple of pairs, which is
hashable and already in remote-write order. :func:`apply` returns what it was given, so
neither kind is converted: a dict gives a new dict (no sort; ``labels.py`` takes dicts
and the encoder sorts once), a tuple gives a tuple, and that very tuple when no rule
changed it. Rules work on a dict, for constant-time gets, sets and deletes. Regex and
hash outcomes are memoised per rule, since series repeat values (``__name__``, ``job``)
and names endlessly, and an RE2 call from Python costs about a microsecond.

Deviations from Prometheus:

- The expanded ``replace`` target must be a legacy name, ``[a-zA-Z_][a-zA-Z0-9_]*``, as
  ``api.relabel`` validates names; Prometheus 3 accepts any UTF-8 name by default.
  ``labelmap`` checks no name, there as here, so it can make a name such as ``""``.
- Case tables are Python's (Unicode 14.0 on 3.11; Go 1.21+ has 15.0).
- Go's ``$name`` falls through to a later group of the same name when the first did not
  take part; RE2 reports one index per name, so here the first group always wins.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, overload

from mtproxy.api.relabel import DEFAULT_REGEX, RelabelAction, RelabelConfig, relabel_problems

from .relabel_expand import GoRegex, Template, compile_go_regex

__all__ = ["CompiledRules", "LabelSet", "apply", "compile_rules"]

LabelSet: TypeAlias = tuple[tuple[str, str], ...]
"""Labels of one series: ``(name, value)`` pairs sorted by name, names unique, values non-empty."""

# A memo that reaches this many entries is emptied: a bound, not a cache policy.
_MEMO_LIMIT = 1 << 16

# Prometheus' legacy label-name syntax (model.LabelName.IsValid under LegacyValidation).
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SURROGATE = re.compile("[\ud800-\udfff]")
# replace's outcome when the regex does not match or the target is invalid; a real outcome
# always has a non-empty target.
_NO_CHANGE = ("", "")

_REPLACE = RelabelAction.REPLACE
_KEEP = RelabelAction.KEEP
_DROP = RelabelAction.DROP
_KEEPEQUAL = RelabelAction.KEEPEQUAL
_DROPEQUAL = RelabelAction.DROPEQUAL
_HASHMOD = RelabelAction.HASHMOD
_LABELMAP = RelabelAction.LABELMAP
_LABELDROP = RelabelAction.LABELDROP
_LABELKEEP = RelabelAction.LABELKEEP
_LOWERCASE = RelabelAction.LOWERCASE
_UPPERCASE = RelabelAction.UPPERCASE

# The characters whose full upper-case mapping (Python's) has several characters but whose
# simple mapping (Go's unicode.ToUpper) is another single character: Greek letters with
# ypogegrammeni. Every other multi-character mapping has no simple mapping: Go keeps the char.
_SIMPLE_UPPER = {
    **{chr(start + i): chr(start + 8 + i) for start in (0x1F80, 0x1F90, 0x1FA0) for i in range(8)},
    "\u1fb3": "\u1fbc",
    "\u1fc3": "\u1fcc",
    "\u1ff3": "\u1ffc",
}


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _Step:
    """One compiled rule (compared by identity: its memos are not part of its value)."""

    action: RelabelAction
    sources: tuple[str, ...]
    separator: str
    target: str
    modulus: int
    regex: GoRegex | None
    target_template: Template | None
    replacement_template: Template | None
    static_replacement: str | None
    """For ``replace`` without ``$`` and with the default regex: what an empty source sets."""
    # Memos map an input text to its outcome; a missing key (never a stored None) means
    # "not yet computed", so a concurrent clear() cannot make a lookup fail.
    match_memo: dict[str, bool] = field(default_factory=dict)
    replace_memo: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Source value -> (target, value) to set, or :data:`_NO_CHANGE`."""
    hash_memo: dict[str, str] = field(default_factory=dict)
    name_memo: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Label name -> ``(new name,)`` when the regex matches it, else ``()``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledRules:
    """Relabel rules checked and compiled for :func:`apply`; build with :func:`compile_rules`.

    Two compiled rule lists are equal (and hash equal) when their ``configs`` are.
    """

    configs: tuple[RelabelConfig, ...]
    """The rules as written, in order."""
    _steps: tuple[_Step, ...] = field(repr=False, compare=False)
    _tracks_order: bool = field(repr=False, compare=False)
    """Whether a ``labelmap`` needs Go's iteration order of modified labels."""


def compile_rules(rules: Sequence[RelabelConfig]) -> CompiledRules:
    """Check ``rules`` as Prometheus does and compile each regex and template once.

    Raises:
        ValueError: naming every bad field as ``rules[i].<field>``.
    """
    problems: list[str] = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, RelabelConfig):
            problems.append(f"rules[{index}]: expected a RelabelConfig, got {type(rule).__name__}")
        elif not isinstance(rule.action, RelabelAction):
            problems.append(f"rules[{index}].action: unknown relabel action {rule.action!r}")
        else:
            problems.extend(f"rules[{index}].{where}: {message}" for where, message in relabel_problems(rule))
    if problems:
        raise ValueError("invalid relabel rules: " + "; ".join(problems))
    steps = tuple(_compile_step(rule) for rule in rules)
    return CompiledRules(
        configs=tuple(rules),
        _steps=steps,
        _tracks_order=any(step.action is _LABELMAP for step in steps),
    )


def _compile_step(rule: RelabelConfig) -> _Step:
    action = rule.action
    uses_regex = action in (_REPLACE, _KEEP, _DROP, _LABELMAP, _LABELDROP, _LABELKEEP)
    regex = compile_go_regex(rule.regex) if uses_regex else None
    target_template = replacement_template = None
    static_replacement = None
    if regex is not None and action is _REPLACE:
        target_template = _template(rule.target_label, regex)
        replacement_template = _template(rule.replacement, regex)
        if rule.regex == DEFAULT_REGEX and "$" not in rule.target_label + rule.replacement:
            static_replacement = _sane(rule.replacement)
    elif regex is not None and action is _LABELMAP:
        replacement_template = _template(rule.replacement, regex)
    return _Step(
        action=action,
        sources=tuple(rule.source_labels or ()),
        separator=_sane(rule.separator),
        target=rule.target_label,
        modulus=rule.modulus,
        regex=regex,
        target_template=target_template,
        replacement_template=replacement_template,
        static_replacement=static_replacement,
    )


def _template(text: str, regex: GoRegex) -> Template:
    return regex.template(_sane(text))


@overload
def apply(compiled: CompiledRules, labels: LabelSet) -> LabelSet | None: ...
@overload
def apply(compiled: CompiledRules, labels: Mapping[str, str]) -> dict[str, str] | None: ...
def apply(compiled: CompiledRules, labels: LabelSet | Mapping[str, str]) -> LabelSet | dict[str, str] | None:
    """Run the compiled rules, in order, on one series' labels; ``None`` when a rule drops it.

    Args:
        compiled: from :func:`compile_rules`.
        labels: a mapping of name to value, or a :data:`LabelSet` (sorted, names unique).

    Returns:
        For a mapping, a new dict in no particular order. For a tuple, a :data:`LabelSet`:
        ``labels`` itself when no rule changed anything (hence it must be sorted).
    """
    try:
        return _apply(compiled, labels)
    except UnicodeEncodeError:  # a lone surrogate reached an RE2 or MD5 input
        sane = {_sane(name): _sane(value) for name, value in _pairs(labels)}
        return _apply(compiled, sane if isinstance(labels, Mapping) else tuple(sorted(sane.items())))


def _pairs(labels: LabelSet | Mapping[str, str]) -> Iterable[tuple[str, str]]:
    return labels.items() if isinstance(labels, Mapping) else labels


def _sane(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


class _Builder:
    """Go's ``labels.Builder`` over a dict, in the order Go's ``Builder.Range`` visits.

    ``Range`` visits the untouched base labels in sorted order, then Go's ``add`` list:
    the labels set since, in the order they entered it (``Del`` takes a label out again).
    With ``added`` mirroring that list, a label entering it moves to the end of the dict,
    so iterating the dict gives Go's order (``labelmap`` needs it when two names map to
    one target).
    """

    __slots__ = ("added", "changed", "labels")

    def __init__(self, labels: dict[str, str], *, changed: bool, track_order: bool) -> None:
        self.labels = labels
        self.changed = changed
        self.added: set[str] | None = set() if track_order else None

    def set(self, name: str, value: str) -> None:
        if not value:
            self.delete(name)
            return
        labels = self.labels
        added = self.added
        if added is not None and name not in added:
            added.add(name)
            previous = labels.pop(name, None)
            labels[name] = value
            self.changed = self.changed or previous != value
        elif labels.get(name) != value:
            labels[name] = value
            self.changed = True

    def delete(self, name: str) -> None:
        if self.added is not None:
            self.added.discard(name)
        if self.labels.pop(name, None) is not None:
            self.changed = True


def _apply(compiled: CompiledRules, labels: LabelSet | Mapping[str, str]) -> LabelSet | dict[str, str] | None:
    if isinstance(labels, tuple):
        state = dict(labels)
        changed = len(state) != len(labels)
    else:  # labelmap's order needs the base labels sorted, as Go's are
        state = dict(sorted(labels.items())) if compiled._tracks_order else dict(labels)
        changed = False  # unused: a mapping always gets a new dict back
    if "" in state.values():
        state = {name: value for name, value in state.items() if value}
        changed = True
    builder = _Builder(state, changed=changed, track_order=compiled._tracks_order)
    for step in compiled._steps:
        if not _run_step(step, builder):
            return None
    if not isinstance(labels, tuple):
        return builder.labels
    if not builder.changed:
        return labels
    return tuple(sorted(builder.labels.items()))


def _run_step(step: _Step, builder: _Builder) -> bool:
    """Prometheus' ``relabel``: apply one rule; ``False`` when it drops the series."""
    labels = builder.labels
    sources = step.sources
    if len(sources) == 1:
        value = labels.get(sources[0], "")
    elif sources:
        value = step.separator.join([labels.get(name, "") for name in sources])
    else:
        value = ""
    action = step.action
    if action is _DROP:
        return not _memo_match(step, value)
    if action is _KEEP:
        return _memo_match(step, value)
    if action is _REPLACE:
        if value == "" and step.static_replacement is not None:
            builder.set(step.target, step.static_replacement)
            return True
        outcome = step.replace_memo.get(value)
        if outcome is None:
            outcome = _replace_outcome(step, value)
            _remember(step.replace_memo, value, outcome)
        if outcome is not _NO_CHANGE:
            builder.set(*outcome)
        return True
    if action is _DROPEQUAL:
        return labels.get(step.target, "") != value
    if action is _KEEPEQUAL:
        return labels.get(step.target, "") == value
    if action is _HASHMOD:
        builder.set(step.target, _memo_hashmod(step, value))
    elif action is _LOWERCASE:
        builder.set(step.target, _go_lower(value))
    elif action is _UPPERCASE:
        builder.set(step.target, _go_upper(value))
    elif action is _LABELMAP:
        for name, label_value in list(labels.items()):
            for mapped in _memo_mapped_name(step, name):
                builder.set(mapped, label_value)
    elif action is _LABELDROP or action is _LABELKEEP:
        drop_matching = action is _LABELDROP
        seen = step.match_memo
        for name in list(labels):
            matched = seen.get(name)
            if matched is None:
                matched = _memo_match(step, name)
            if matched is drop_matching:
                builder.delete(name)
    else:  # compile_rules admits only RelabelAction members, all handled above
        raise AssertionError(f"unhandled relabel action {action!r}")
    return True


def _remember(memo: dict[str, Any], key: str, outcome: Any) -> None:
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = outcome


def _memo_match(step: _Step, text: str) -> bool:
    memo = step.match_memo
    outcome = memo.get(text)
    if outcome is None:
        assert step.regex is not None
        outcome = step.regex.matches(text)
        _remember(memo, text, outcome)
    return outcome


def _memo_hashmod(step: _Step, text: str) -> str:
    """``hashmod``: the last 8 bytes of MD5(text), big-endian, modulo the modulus."""
    memo = step.hash_memo
    outcome = memo.get(text)
    if outcome is None:
        digest = hashlib.md5(text.encode(), usedforsecurity=False).digest()
        outcome = str(int.from_bytes(digest[8:], "big") % step.modulus)
        _remember(memo, text, outcome)
    return outcome


def _memo_mapped_name(step: _Step, name: str) -> tuple[str, ...]:
    """``labelmap``: ``(new name,)`` for label ``name``, or ``()`` when the regex does not match it."""
    outcome = step.name_memo.get(name)
    if outcome is None:
        assert step.regex is not None and step.replacement_template is not None
        groups = step.regex.submatches(name)
        outcome = () if groups is None else (step.replacement_template.expand(groups),)
        _remember(step.name_memo, name, outcome)
    return outcome


def _replace_outcome(step: _Step, value: str) -> tuple[str, str]:
    """``replace`` on a source value: the (target, value) to set, or :data:`_NO_CHANGE`."""
    assert step.regex is not None and step.target_template is not None and step.replacement_template is not None
    groups = step.regex.submatches(value)
    if groups is None:
        return _NO_CHANGE
    target = step.target_template.expand(groups)
    if not _LABEL_NAME.fullmatch(target):
        return _NO_CHANGE
    return target, step.replacement_template.expand(groups)


def _go_lower(text: str) -> str:
    """Go's ``strings.ToLower``: each character through ``unicode.ToLower``, one to one."""
    if text.isascii():
        return text.lower()
    # Python lowers U+0130 to two characters and a final sigma to ς; Go does neither.
    simple = text.replace("\u0130", "i").replace("\u03a3", "\u03c3")
    lowered = simple.lower()
    if len(lowered) == len(simple):
        return lowered
    return "".join(char.lower() if len(char.lower()) == 1 else char for char in simple)


def _go_upper(text: str) -> str:
    """Go's ``strings.ToUpper``: each character through ``unicode.ToUpper``, one to one."""
    upper = text.upper()
    if len(upper) == len(text):  # no character expanded, so each mapped one to one, as in Go
        return upper
    return "".join(_go_upper_char(char) for char in text)


def _go_upper_char(char: str) -> str:
    upper = char.upper()
    return upper if len(upper) == 1 else _SIMPLE_UPPER.get(char, char)
