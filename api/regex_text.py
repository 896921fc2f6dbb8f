"""Regex strings inside PromQL text, with their ``\\Q…\\E`` literal spans spelled out for the parser.

Prometheus compiles a matcher's regex with Go's ``regexp``, which reads ``\\Q…\\E`` as
literal text; the parser library validates the same regex with Rust's ``regex`` crate,
which has no such syntax and refuses the whole query. :func:`expand_literal_spans_in_promql`
rewrites the string after each ``=~`` and ``!~`` whose value holds ``\\Q`` into the same
regex written with escapes (:func:`mtproxy.api.regex.expand_literal_spans`), so the text
parses and means to the backend what the tenant wrote.

It is a scanner, not a parser: it knows PromQL's three string quotes, backslash escapes and
``#`` comments, which is all it takes to find the strings that follow a regex operator
(only label matchers have those operators). It rewrites a string only when it can decode
it exactly as Prometheus 2.42 does; any other string (an escape it does not know, a
``\\x80``-``\\xff`` raw byte, an unterminated quote) is left as written, for the parser and
its guard to judge, so the rewrite can only turn a refused query into an accepted one of the
same meaning, never change the meaning of an accepted one.
"""

from __future__ import annotations

from mtproxy.api.matchers import quote_value
from mtproxy.api.regex import expand_literal_spans

__all__ = ["expand_literal_spans_in_promql"]

_QUOTES = "\"'`"
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCTAL = frozenset("01234567")


def expand_literal_spans_in_promql(text: str) -> str:
    """``text`` with the regex strings of its matchers free of ``\\Q…\\E`` (see the module docstring)."""
    if "\\Q" not in text:
        return text
    out: list[str] = []
    position = 0
    regex_next = False  # a regex operator was the last token
    while position < len(text):
        char = text[position]
        if char == "#":
            newline = text.find("\n", position)
            end = len(text) if newline < 0 else newline
            out.append(text[position:end])
            position = end
            continue
        if char in _QUOTES:
            closed = _string_end(text, position)
            if closed is None:
                out.append(text[position:])
                break
            literal = text[position:closed]
            out.append(_expanded(literal) if regex_next else literal)
            position = closed
            regex_next = False
            continue
        if text.startswith(("=~", "!~"), position):
            out.append(text[position : position + 2])
            position += 2
            regex_next = True
            continue
        if not char.isspace():
            regex_next = False
        out.append(char)
        position += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int | None:
    """The index after the string literal opening at ``start``, or None if it never closes on its line."""
    quote = text[start]
    if quote == "`":
        end = text.find("`", start + 1)
        return None if end < 0 else end + 1
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == "\\":
            position += 2
        elif char == quote:
            return position + 1
        elif char == "\n":
            return None
        else:
            position += 1
    return None


def _expanded(literal: str) -> str:
    """The literal rewritten without ``\\Q…\\E``, or as written when it needs no change or cannot be decoded."""
    value = literal[1:-1] if literal[0] == "`" else _unquote(literal)
    if value is None:
        return literal
    expanded = expand_literal_spans(value)
    return literal if expanded == value else quote_value(expanded)


def _unquote(literal: str) -> str | None:
    """A double- or single-quoted PromQL string decoded as Prometheus 2.42 does, or None where unsure."""
    quote, body = literal[0], literal[1:-1]
    out: list[str] = []
    position = 0
    while position < len(body):
        char = body[position]
        if char != "\\":
            out.append(char)
            position += 1
            continue
        escaped = body[position + 1 : position + 2]
        if escaped in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[escaped])
            position += 2
        elif escaped == quote:
            out.append(quote)
            position += 2
        elif escaped in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[escaped]
            digits = body[position + 2 : position + 2 + width]
            if len(digits) != width or not set(digits) <= _HEX:
                return None
            code = int(digits, 16)
            if (escaped == "x" and code >= 0x80) or code > 0x10FFFF or 0xD800 <= code < 0xE000:
                return None  # a raw byte to Prometheus, or not a character
            out.append(chr(code))
            position += 2 + width
        elif escaped in _OCTAL:
            digits = body[position + 1 : position + 4]
            if len(digits) != 3 or not set(digits) <= _OCTAL or int(digits, 8) >= 0x80:
                return None
            out.append(chr(int(digits, 8)))
            position += 4
        else:
            return None
    return "".join(out)
