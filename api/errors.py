"""Validation errors of the API package, each naming the field path it is about.

Tree::

    APIValidationError (ValueError)     one or more FieldProblem, each with a path
    └── PatternError                    one metrics entry that is not a name, regex or selector

Paths use the manifest's own spelling (``spec.remoteWrite.interval``,
``spec.metrics[2]``) so that a user can find the line to fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["APIValidationError", "FieldProblem", "PatternError", "flatten_messages", "join_path"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldProblem:
    """One problem with one field."""

    path: str
    """Dotted field path with list indexes, e.g. ``spec.metrics[0]``; empty for the whole document."""
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class APIValidationError(ValueError):
    """A document failed validation; ``problems`` lists every field at fault, sorted by path."""

    def __init__(self, problems: Iterable[FieldProblem]) -> None:
        self.problems: tuple[FieldProblem, ...] = tuple(sorted(set(problems), key=lambda p: (p.path, p.message)))
        super().__init__("; ".join(str(p) for p in self.problems))

    def prefixed(self, prefix: str) -> APIValidationError:
        """The same problems with ``prefix`` put in front of every path."""
        return APIValidationError(
            FieldProblem(path=join_path(prefix, p.path), message=p.message) for p in self.problems
        )


class PatternError(APIValidationError):
    """A ``metrics`` entry is neither an exact metric name, an RE2 regex nor a vector selector."""

    def __init__(self, pattern: str, message: str) -> None:
        self.pattern = pattern
        super().__init__([FieldProblem(path="", message=message)])


def join_path(prefix: str, key: str | int) -> str:
    """Append a key (``.name``) or an index (``[3]``) to a field path."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if not key:
        return prefix
    if key.startswith("["):
        return prefix + key
    return f"{prefix}.{key}" if prefix else key


def flatten_messages(messages: Any, prefix: str = "") -> list[FieldProblem]:
    """Turn marshmallow's nested error dict into one problem per field path.

    List items come as ``{index: {...}}`` and become ``[index]``; map fields of this
    package report errors keyed by the map key, which becomes ``.key``.
    """
    problems: list[FieldProblem] = []
    if isinstance(messages, str):
        problems.append(FieldProblem(path=prefix, message=_lowercase_first(messages)))
    elif isinstance(messages, list | tuple):
        for item in messages:
            problems.extend(flatten_messages(item, prefix))
    elif isinstance(messages, Mapping):
        for key, value in messages.items():
            if key == "_schema":
                problems.extend(flatten_messages(value, prefix))
            else:
                problems.extend(flatten_messages(value, join_path(prefix, key if isinstance(key, int) else str(key))))
    return problems


def _lowercase_first(message: str) -> str:
    # marshmallow says "Missing data for required field."; our style is "missing data for required field"
    text = message.rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
