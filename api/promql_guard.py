"""The one gate in front of the native PromQL parser: no text reaches it that could end the process.

promql-parser is Rust behind pyo3. Its parser, the drop of its tree and the conversion of
the tree to Python objects recurse once per level of nesting on the native stack, so a
deep text (``"-" * 9000 + "up"``, ``"^".join(["up"] * 5000)``) overflows the stack: a
SIGSEGV, which no ``except`` clause catches. Without this gate one tenant's request ends
the proxy, and one MetricAccess object crash-loops every replica that reads it.

:func:`parse_guarded` is therefore the only caller of ``promql_parser.parse`` in the project
(a test checks the source tree), and every text the parser gets (a ``query``, a ``match[]``
selector, a MetricAccess pattern, the CLI's arguments) passes :func:`check_parser_input`:

- **size**: at most ``max_chars`` characters (callers pass their own, lower limits);
- **depth**: at most :data:`MAX_NESTING` operator characters, operator words and opening
  brackets outside quoted strings and comments. The count is a bound on the depth of the
  tree. Inside a string an operator is only a character (a Grafana variable expanded to
  ``pod=~"app-1|app-2|…"`` holds hundreds of them), so the contents of ``"…"`` and
  ``'…'`` strings and of ``#`` comments are skipped by a scanner with PromQL's rules
  (a backslash escapes the next character). Where that scanner and the library's lexer
  could disagree about where a string ends (a backtick raw string, an unterminated
  quote), the whole text is counted, strings included, so no spelling can hide a level.
  The most a counted token costs the parser is a few KiB of native stack, so the limit
  stays well inside the smallest default thread stack of glibc, and a test proves it in
  a thread with that stack;
- **escapes the parser reads differently from Prometheus 2.42**: ``\\x80``-``\\xff`` and
  ``\\200``-``\\377`` are raw bytes to Prometheus and code points U+0080-U+00FF to the
  library, which would silently change a label value; a backslash before a backtick ends a
  raw string for Prometheus but not for the library. Both are refused on every path, so a
  ``match[]`` selector and a query read the same text the same way.

Refusals raise :class:`ParserInputRefused` (the construct and the reason, for a 400 or a
validation error at the field's path); what the library cannot parse, and a panic inside it,
raises :class:`ParserSyntaxError`.
"""

from __future__ import annotations

import re
from typing import Final

import promql_parser

__all__ = [
    "MAX_NESTING",
    "MAX_TEXT_CHARS",
    "ParserInputError",
    "ParserInputRefused",
    "ParserSyntaxError",
    "check_parser_depth",
    "check_parser_escapes",
    "check_parser_input",
    "is_library_panic",
    "parse_guarded",
]

MAX_NESTING: Final = 500
"""Most operators plus opening brackets accepted in one text (see the module docstring)."""

MAX_TEXT_CHARS: Final = 4 * 1024 * 1024
"""The ceiling on any text handed to the parser, whatever a caller's own limit says."""

_NESTING_TOKEN: Final = re.compile(
    r"[(\[+\-*/%^=!<>]|(?<![A-Za-z_:])(?:and|or|unless|atan2)(?![A-Za-z0-9_:])", re.IGNORECASE
)
_ESCAPE: Final = re.compile(r"\\(x[89a-fA-F][0-9a-fA-F]|[23][0-7][0-7]|.)", re.DOTALL)


class ParserInputError(ValueError):
    """A text the parser was not given, or could not read."""


class ParserInputRefused(ParserInputError):
    """The text was not handed to the parser: too large, too deep, or read differently by 2.42.

    Args:
        construct: what is refused, quoted back to the author (``"query"``, ``"\\\\xff"``).
        reason: why.
    """

    def __init__(self, construct: str, reason: str) -> None:
        super().__init__(f"{construct}: {reason}")
        self.construct = construct
        self.reason = reason


class ParserSyntaxError(ParserInputError):
    """The parser could not read the text (or failed inside; never a crash)."""


def check_parser_input(text: str, *, what: str, max_chars: int = MAX_TEXT_CHARS) -> None:
    """Refuse ``text`` unless the native parser can take it safely and read it as 2.42 does.

    Args:
        text: the text about to be parsed.
        what: names the text in a refusal (``"query"``, ``"match[]"``, ``"selector"``).
        max_chars: the caller's size limit; the lower of it and :data:`MAX_TEXT_CHARS` applies.

    Raises:
        ParserInputRefused: the text is too long, too deeply nested, or has an escape the
            parser reads differently from Prometheus 2.42.
    """
    check_parser_depth(text, what=what, max_chars=max_chars)
    check_parser_escapes(text)


def check_parser_depth(text: str, *, what: str, max_chars: int = MAX_TEXT_CHARS) -> None:
    """The size and depth half of :func:`check_parser_input`.

    Alone, it bounds text that is not PromQL itself but is printed into PromQL later (a
    MetricAccess regex pattern), where the escape rules of PromQL strings do not apply.
    """
    limit = min(max_chars, MAX_TEXT_CHARS)
    if len(text) > limit:
        raise ParserInputRefused(what, f"is {len(text)} characters long, more than the {limit} allowed")
    code = _code_outside_strings(text)
    for nesting, _ in enumerate(_NESTING_TOKEN.finditer(code), start=1):
        if nesting > MAX_NESTING:
            total = len(_NESTING_TOKEN.findall(code))
            raise ParserInputRefused(what, f"has {total} operators and brackets, more than the {MAX_NESTING} allowed")


def _code_outside_strings(text: str) -> str:
    """``text`` with the contents of quoted strings and comments blanked, or all of it when unsure.

    Each string's contents become one space, so a word operator cannot be glued together
    across a string. A backtick anywhere, a quote that is never closed, or a newline inside
    a string returns the text unchanged (everything counts).
    """
    if "`" not in text and '"' not in text and "'" not in text and "#" not in text:
        return text
    if "`" in text:
        return text
    out: list[str] = []
    position, length = 0, len(text)
    while position < length:
        char = text[position]
        if char in "\"'":
            end = position + 1
            while end < length and text[end] != char:
                if text[end] == "\n":
                    return text  # PromQL strings hold no newline: a lexer may end it here
                end += 2 if text[end] == "\\" else 1
            if end >= length:
                return text  # unterminated: let the parser refuse it, counting everything
            out.append(" ")
            position = end + 1
        elif char == "#":
            newline = text.find("\n", position)
            position = length if newline < 0 else newline
        else:
            start = position
            while position < length and text[position] not in "\"'#":
                position += 1
            out.append(text[start:position])
    return "".join(out)


def check_parser_escapes(text: str) -> None:
    """The escape half of :func:`check_parser_input`: string escapes the parser and 2.42 read apart."""
    # Backslash pairs are taken left to right, as both lexers do inside strings; looking at
    # every pair, in strings or not, can only refuse more, never miss one.
    for match in _ESCAPE.finditer(text):
        escaped = match.group(1)
        if len(escaped) > 1:
            raise ParserInputRefused(
                "\\" + escaped,
                "a string escape above \\x7f is a raw byte to Prometheus; write the character itself or a \\u escape",
            )
        if escaped == "`":
            raise ParserInputRefused(
                "\\`",
                "the parser reads a backslash before a backtick as an escape, Prometheus ends the raw string "
                'there; write a string ending in a backslash double-quoted ("a\\\\")',
            )


def parse_guarded(text: str, *, what: str, max_chars: int = MAX_TEXT_CHARS) -> promql_parser.Expr:
    """Parse ``text`` with the native parser once :func:`check_parser_input` has passed it.

    Raises:
        ParserInputRefused: see :func:`check_parser_input`.
        ParserSyntaxError: the parser cannot read the text, or panicked.
    """
    check_parser_input(text, what=what, max_chars=max_chars)
    try:
        return promql_parser.parse(text)
    except (ValueError, RuntimeError, OverflowError) as exc:
        raise ParserSyntaxError(str(exc)) from exc
    except BaseException as exc:
        if not is_library_panic(exc):
            raise
        raise ParserSyntaxError(f"the parser failed: {exc}") from exc


def is_library_panic(exc: BaseException) -> bool:
    """Tell a Rust panic inside the parser library (a BaseException) from everything else."""
    kind = type(exc)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"
