"""Go's ``regexp``, as Prometheus' relabelling uses it, on top of RE2.

Relabelling needs three things from Go's regexp: ``MatchString``, ``FindStringSubmatch``
and ``ExpandString`` (``labelmap``'s ``ReplaceAllString`` expands the same way, once,
since the regex is anchored). RE2 gives the first two; its template language (``\\1``,
``\\g<name>``) is not Go's, so Go's expansion rules are reimplemented here:

- ``$name`` takes the longest run of letters, digits and ``_``: ``$1x`` means the group
  named ``1x``, not group 1 followed by ``x``; ``${1}x`` is group 1 followed by ``x``.
- A name of ASCII digits without a leading zero, at most nine of them, is a group number;
  anything else is a group name.
- A number past the last group, a name no group has, and a group that did not take part
  in the match all expand to nothing.
- ``$$`` is a literal ``$``; a ``$`` not followed by a well-formed reference (``$-``,
  ``${1``, a trailing ``$``) stays a literal ``$``.

Guarantees: regexes and templates are compiled once, when a rule is compiled; matching
and expanding never raise, except ``UnicodeEncodeError`` for text holding a lone
surrogate, which cannot be UTF-8 for RE2. Speed: one RE2 call through google-re2's
public ``search`` costs several microseconds from Python, its low-level ``Match`` about
one, so the low-level call is used when this google-re2 offers it, and the public API
otherwise (both give the same answers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mtproxy.api.regex import CompiledRegex, compile_relabel_regex

__all__ = ["GoRegex", "Template", "compile_go_regex", "parse_template"]

# Go stops parsing a group number once it reaches 1e8, so at most nine digits are a number.
_MAX_NUMBER_PREFIX = 100_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    """A parsed template: literal text and the group indexes it refers to, in order."""

    source: str
    """The template as written."""
    parts: tuple[str | int, ...]
    """Literal text (``str``) and group indexes (``int``). References that can never
    expand to anything (unknown names, numbers past the last group) are left out."""
    constant: str | None
    """The expansion when it does not depend on the match (no group references), else ``None``."""

    def expand(self, groups: Sequence[str]) -> str:
        """The template with each group reference replaced by ``groups[index]``.

        Args:
            groups: the text of every group of the match, group 0 first; a group that
                did not take part in the match is ``""``.
        """
        if self.constant is not None:
            return self.constant
        return "".join(part if isinstance(part, str) else groups[part] for part in self.parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class GoRegex:
    """A relabel regex, anchored as ``^(?s:pattern)$``; build with :func:`compile_go_regex`."""

    pattern: str
    """The regex as written."""
    compiled: CompiledRegex
    group_count: int
    """Capturing groups, not counting group 0 (the whole match)."""
    group_names: Mapping[str, int]
    """Group name -> index; for a name two groups share, the first."""
    raw: Any
    """google-re2's low-level ``RE2`` object, or ``None`` to use its public API."""
    anchor: Any

    def matches(self, text: str) -> bool:
        """Go's ``MatchString``."""
        raw = self.raw
        if raw is None:
            return self.compiled.search(text) is not None
        data = text.encode()
        return bool(raw.Match(self.anchor, data, 0, len(data))[0][0] >= 0)

    def submatches(self, text: str) -> list[str] | None:
        """Go's ``FindStringSubmatch``: every group's text (``""`` if it took no part), or ``None``."""
        raw = self.raw
        if raw is None:
            match = self.compiled.search(text)
            if match is None:
                return None
            return [match.group(i) or "" for i in range(self.group_count + 1)]
        data = text.encode()
        spans: list[tuple[int, int]] = raw.Match(self.anchor, data, 0, len(data))
        if spans[0][0] < 0:
            return None
        if len(data) == len(text):  # ASCII: byte offsets are character offsets
            return [text[start:end] if start >= 0 else "" for start, end in spans]
        return [data[start:end].decode("utf-8", "replace") if start >= 0 else "" for start, end in spans]

    def template(self, template: str) -> Template:
        """Parse ``template`` against this regex's groups."""
        return parse_template(template, group_count=self.group_count, group_names=self.group_names)


def compile_go_regex(pattern: str, *, low_level: bool = True) -> GoRegex:
    """Compile a relabel regex (through ``api.regex``'s cache).

    Args:
        pattern: the rule's ``regex``, unanchored, as written.
        low_level: use google-re2's low-level ``Match`` when it works as expected; ``False``
            forces the public API (tests compare the two).

    Raises:
        ValueError: ``pattern`` is not valid RE2.
    """
    compiled = compile_relabel_regex(pattern)
    loose: Any = compiled
    raw: Any = getattr(loose, "_regexp", None) if low_level else None
    anchor: Any = None
    if raw is not None:
        try:
            anchor = raw.Anchor.UNANCHORED  # the pattern carries its own ^…$
            if len(raw.Match(anchor, b"", 0, 0)) != compiled.groups + 1:
                raise TypeError("unexpected result from RE2.Match")
        except Exception:  # google-re2's internals changed: its public API still works
            raw = anchor = None
    return GoRegex(
        pattern=pattern,
        compiled=compiled,
        group_count=compiled.groups,
        group_names=dict(getattr(loose, "groupindex", {})),
        raw=raw,
        anchor=anchor,
    )


def parse_template(template: str, *, group_count: int, group_names: Mapping[str, int]) -> Template:
    """Parse ``template`` for a regex with ``group_count`` groups and these named groups.

    Args:
        template: Go template text.
        group_count: the number of capturing groups (group 0, the whole match, is extra).
        group_names: group name -> group index.
    """
    parts: list[str | int] = []
    literal: list[str] = []
    rest = template
    while rest:
        before, dollar, after = rest.partition("$")
        if not dollar:
            break
        literal.append(before)
        rest = after
        if rest.startswith("$"):
            literal.append("$")
            rest = rest[1:]
            continue
        reference = _extract(rest)
        if reference is None:
            literal.append("$")
            continue
        name, number, rest = reference
        index = number if number >= 0 else group_names.get(name, -1)
        if 0 <= index <= group_count:
            if literal:
                parts.append("".join(literal))
                literal.clear()
            parts.append(index)
    literal.append(rest)
    text = "".join(literal)
    if text:
        parts.append(text)
    refers = any(isinstance(part, int) for part in parts)
    constant = None if refers else "".join(part for part in parts if isinstance(part, str))
    return Template(source=template, parts=tuple(parts), constant=constant)


def _extract(text: str) -> tuple[str, int, str] | None:
    """Go's ``extract``: the name or number after a ``$``, and the text after it.

    Returns ``None`` when the reference is malformed (empty name, missing ``}``).
    """
    brace = text.startswith("{")
    if brace:
        text = text[1:]
    end = 0
    for char in text:
        # unicode.IsLetter is category L (str.isalpha); unicode.IsDigit is Nd (str.isdecimal).
        if not (char.isalpha() or char.isdecimal() or char == "_"):
            break
        end += 1
    if end == 0:
        return None
    name = text[:end]
    if brace:
        if end >= len(text) or text[end] != "}":
            return None
        end += 1
    number = 0
    for char in name:
        if not ("0" <= char <= "9") or number >= _MAX_NUMBER_PREFIX:
            number = -1
            break
        number = number * 10 + ord(char) - ord("0")
    if name[0] == "0" and len(name) > 1:
        number = -1
    return name, number, text[end:]
