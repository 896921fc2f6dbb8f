"""Label matchers and access rules: the value types that the policy is made of.

A *rule* is a conjunction of label matchers; a series is admitted by a rule when every
matcher holds for it (a missing label counts as the empty string, as in PromQL). A
tenant's access policy is the union (OR) of its rules.

Two answers are offered. ``matches`` is RE2's verdict, fine for describing a series.
``verdict`` is what may be used to *decide* on the backend's behalf: it is None where the
regex is one on which RE2 and the backend's Go regexp may disagree
(:func:`mtproxy.api.regex.engines_agree`), so that nothing is concluded from a verdict the
backend might not share.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mtproxy.api.regex import compile_anchored, engines_agree

__all__ = ["LABEL_NAME_RE", "METRIC_NAME_RE", "LabelMatcher", "MatchOp", "Rule", "quote_value"]

LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*\Z")


class MatchOp(enum.Enum):
    """The four PromQL label-matching operators."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelMatcher:
    """One ``name op "value"`` matcher; regex values are RE2, anchored at both ends."""

    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if not LABEL_NAME_RE.match(self.name):
            raise ValueError(f"name: invalid label name {self.name!r}")
        if self.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            compile_anchored(self.value)  # raises ValueError naming the regex

    def matches(self, value: str) -> bool:
        """Whether a label value (``""`` for a missing label) satisfies this matcher, as RE2 decides."""
        if self.op is MatchOp.EQUAL:
            return value == self.value
        if self.op is MatchOp.NOT_EQUAL:
            return value != self.value
        found = compile_anchored(self.value).fullmatch(value) is not None
        return found if self.op is MatchOp.REGEX else not found

    def verdict(self, value: str) -> bool | None:
        """Whether the backend's matcher holds for ``value``, or None where its regex engine may see it otherwise."""
        if self.op in (MatchOp.REGEX, MatchOp.NOT_REGEX) and ("\n" in value or not engines_agree(self.value)):
            # Prometheus 3 compiles label regexes with (?s), 2.42 and RE2 here without it: on a
            # value holding a newline, '.' (and so the verdict) may differ by backend version
            return None
        return self.matches(value)

    def matches_empty(self) -> bool:
        """Whether a series without this label satisfies the matcher."""
        return self.matches("")

    def __str__(self) -> str:
        return f"{self.name}{self.op.value}{quote_value(self.value)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A conjunction of matchers, sorted and without duplicates so equal rules compare equal."""

    matchers: tuple[LabelMatcher, ...]

    @classmethod
    def of(cls, matchers: Iterable[LabelMatcher]) -> Rule:
        """Build a rule in canonical order (by name, operator, value)."""
        unique = sorted(set(matchers), key=lambda m: (m.name, m.op.value, m.value))
        return cls(matchers=tuple(unique))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with these labels is admitted by the rule."""
        return all(m.matches(labels.get(m.name, "")) for m in self.matchers)

    def verdict(self, labels: Mapping[str, str]) -> bool | None:
        """Whether the backend admits the series: True or False where certain, else None (``LabelMatcher.verdict``)."""
        unknown = False
        for matcher in self.matchers:
            held = matcher.verdict(labels.get(matcher.name, ""))
            if held is False:
                return False
            unknown = unknown or held is None
        return None if unknown else True

    def selector(self) -> str:
        """The rule as a PromQL vector selector, e.g. ``{__name__="up",namespace="a"}``."""
        return "{" + ",".join(str(m) for m in self.matchers) + "}"

    def __str__(self) -> str:
        return self.selector()


def quote_value(value: str) -> str:
    """Quote a label value with Go string escaping, as PromQL reads it (double quotes)."""
    out = ['"']
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
