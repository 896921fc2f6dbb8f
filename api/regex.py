"""Label-matcher regexes as the backend's Go ``regexp`` reads them: compiled, anchored, trusted or not.

Prometheus is written in Go, whose ``regexp`` package implements RE2 syntax; Python's
``re`` accepts things RE2 refuses (look-behind, back-references) and refuses some things
RE2 accepts. ``google-re2`` gives the same language, so a pattern that is valid here is
valid for the backend too.

The same language is not always the same verdict. The two engines carry their own Unicode
tables (Prometheus 2.42 is built with Go 1.19, Unicode 13; google-re2 follows a later
Unicode), so ``\\pL`` or ``(?i)`` on a character added since differs: U+1DF00 is a letter
here and not to the backend. :func:`engines_agree` names the patterns whose verdict is the
same on every value, and only those may be used to *decide* anything on the backend's
behalf (that a selector excludes a value, or is contained in a rule). The argument for the
subset, construct by construct:

- literals, ``.``, code-point ranges and their negations compare code points, which the
  engines do alike whatever their tables;
- ``\\d``, ``\\w``, ``\\s``, ``\\b`` and the POSIX classes ``[[:alpha:]]`` are ASCII-only
  in both; escaped punctuation is the character itself;
- case folding (``(?i)``) uses each engine's fold orbits; the orbits of ASCII characters
  (``k K`` and KELVIN SIGN, ``s S`` and LONG S) have been fixed since Unicode 2, so folding is trusted only
  when the pattern holds nothing but ASCII;
- everything else (``\\p``/``\\P`` classes, ``\\x``/octal escapes under ``(?i)``, escapes
  either engine may read otherwise, such as ``\\C``) is untrusted.

``\\Q…\\E`` (literal text) is Go syntax that the PromQL parser library's own regex engine
lacks; :func:`expand_literal_spans` spells such spans out with escapes, exactly as Go reads
them.
"""

from __future__ import annotations

import functools
import string
from typing import Any, Protocol

import re2

__all__ = [
    "CompiledRegex",
    "compile_anchored",
    "compile_relabel_regex",
    "engines_agree",
    "expand_literal_spans",
    "validate_re2",
]


class CompiledRegex(Protocol):
    """The parts of a compiled google-re2 pattern the project uses."""

    groups: int

    def fullmatch(self, text: str) -> Any: ...

    def search(self, text: str) -> Any: ...


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 otherwise prints every syntax error to stderr
    return options


_OPTIONS = _options()


def validate_re2(pattern: str) -> None:
    """Raise ``ValueError`` with RE2's own message if ``pattern`` is not valid RE2 syntax."""
    _compile(pattern)


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str) -> CompiledRegex:
    try:
        compiled: CompiledRegex = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise ValueError(f"invalid RE2 regex {pattern!r}: {detail}") from None
    return compiled


def compile_anchored(pattern: str) -> CompiledRegex:
    """Compile a label-matcher regex as Prometheus 2.42 does: ``^(?:pattern)$``."""
    validate_re2(pattern)
    return _compile(f"^(?:{pattern})$")


def compile_relabel_regex(pattern: str) -> CompiledRegex:
    """Compile a relabel regex anchored as ``^(?s:pattern)$`` (``.`` also matches a newline)."""
    validate_re2(pattern)
    return _compile(f"^(?s:{pattern})$")


_QUOTE_META = frozenset("\\.+*?()|[]{}^$")
_PUNCTUATION = frozenset(string.punctuation)
_SAFE_LETTER_ESCAPES = frozenset("dDwWsSbBAzaftnrv")
"""Escapes both engines read alike: ASCII classes, assertions and control characters."""
_CODE_POINT_ESCAPES = frozenset("x01234567")
"""Escapes that spell a code point, possibly beyond ASCII."""


def expand_literal_spans(pattern: str) -> str:
    """``pattern`` with every ``\\Q…\\E`` span written as escaped literals, as Go's regexp reads it.

    Go takes everything after ``\\Q`` up to the first ``\\E`` as literal characters. Without
    an ``\\E`` the span runs to the end of the text compiled, and Prometheus compiles the
    pattern inside ``^(?:…)$``, so the span swallows the closing parenthesis: Prometheus
    refuses such a matcher. Inside a bracket expression ``\\Q`` is an error for Go and RE2
    alike. In both cases the pattern is returned unchanged, to be refused where it is
    compiled, as Prometheus refuses it.
    """
    if "\\Q" not in pattern:
        return pattern
    out: list[str] = []
    position = 0
    in_class = False
    while position < len(pattern):
        char = pattern[position]
        if char == "\\" and position + 1 < len(pattern):
            escaped = pattern[position + 1]
            if escaped == "Q":
                if in_class:
                    return pattern
                end = pattern.find("\\E", position + 2)
                if end < 0:
                    return pattern
                out.extend("\\" + ch if ch in _QUOTE_META else ch for ch in pattern[position + 2 : end])
                position = end + 2
                continue
            out.append(pattern[position : position + 2])
            position += 2
            continue
        if in_class:
            if pattern.startswith("[:", position):
                close = pattern.find(":]", position + 2)
                if close >= 0:
                    out.append(pattern[position : close + 2])
                    position = close + 2
                    continue
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            out.append(char)
            position += 1
            # a "]" right after "[" or "[^" is a literal member, not the end
            if pattern.startswith("^", position):
                out.append("^")
                position += 1
            if pattern.startswith("]", position):
                out.append("]")
                position += 1
            continue
        out.append(char)
        position += 1
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def engines_agree(pattern: str) -> bool:
    """Whether Go's regexp and RE2 give ``pattern`` the same verdict on every value (see the module docstring).

    False means only that they may differ: decide nothing on RE2's verdict, let the backend
    evaluate the matcher itself.
    """
    text = expand_literal_spans(pattern)
    folds = False
    beyond_ascii = False
    position = 0
    while position < len(text):
        char = text[position]
        if char == "\\":
            escaped = text[position + 1 : position + 2]
            if escaped in _CODE_POINT_ESCAPES:
                beyond_ascii = True
            elif not (escaped in _PUNCTUATION or escaped in _SAFE_LETTER_ESCAPES):
                return False  # \p, \P, \C, \Q inside a class, or anything either engine may read otherwise
            position += 2
            continue
        if char == "(" and text.startswith("(?", position):
            end = position + 2
            while end < len(text) and text[end] not in ":)":
                end += 1
            folds = folds or "i" in text[position + 2 : end]
        elif not char.isascii():
            beyond_ascii = True
        position += 1
    return not (folds and beyond_ascii)
