"""RE2 regexes compiled once, anchored the way Prometheus anchors them.

Prometheus is written in Go, whose ``regexp`` package implements RE2 syntax; Python's
``re`` accepts things RE2 refuses (look-behind, back-references) and refuses some things
RE2 accepts. ``google-re2`` gives the same language, so a pattern that is valid here is
valid for the backend too.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import re2

__all__ = ["CompiledRegex", "compile_anchored", "compile_relabel_regex", "validate_re2"]


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
