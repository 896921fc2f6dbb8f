"""Label and field selectors: parsing the query-string forms and matching objects.

Label selectors follow ``k8s.io/apimachinery/pkg/labels``: comma-separated requirements,
each ``key``, ``!key``, ``key=value``, ``key==value``, ``key!=value``, ``key in (a,b)``,
``key notin (a,b)``, ``key>N`` or ``key<N``; all must hold. ``!=`` and ``notin`` also match
objects without the label, as in Kubernetes. Field selectors are ``path=value``,
``path==value`` or ``path!=value`` terms (backslash escapes ``,`` and ``=``); which paths a
resource accepts is the caller's decision (:meth:`FieldSelector.check_supported`).

A selector that does not parse raises :class:`~.errors.BadRequestError`, as the real server
answers 400. Label key and value syntax is not validated beyond the grammar.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BadRequestError

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelRequirement",
    "LabelSelector",
    "Operator",
    "parse_field_selector",
    "parse_label_selector",
]


class Operator(enum.Enum):
    """A selector requirement's operator."""

    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = ">"
    LESS_THAN = "<"


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelRequirement:
    """One requirement of a label selector."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Return whether the labels satisfy this requirement."""
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case Operator.EQUALS | Operator.IN:
                return present and value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return not present or value not in self.values
            case Operator.EXISTS:
                return present
            case Operator.DOES_NOT_EXIST:
                return not present
            case Operator.GREATER_THAN | Operator.LESS_THAN:
                return present and _compare(value, self.operator, self.values)


def _compare(value: str | None, operator: Operator, bounds: frozenset[str]) -> bool:
    try:
        number = int(value or "")
        bound = int(next(iter(bounds)))
    except (ValueError, StopIteration):
        return False
    return number > bound if operator is Operator.GREATER_THAN else number < bound


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelSelector:
    """A conjunction of label requirements; empty matches everything."""

    requirements: tuple[LabelRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Return whether the object's ``metadata.labels`` satisfy every requirement."""
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement.matches(labels) for requirement in self.requirements)

    @property
    def empty(self) -> bool:
        """True when the selector selects everything."""
        return not self.requirements


_TOKEN = re.compile(r"\s*(?:(?P<op>!=|==|=|!|\(|\)|,|>|<)|(?P<word>[^\s,=!()<>]+))")


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise BadRequestError(f"unable to parse requirement: invalid label selector {text!r}")
        tokens.append(match.group("op") or match.group("word"))
        position = match.end()
    return tokens


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse the ``labelSelector`` query parameter.

    Raises:
        BadRequestError: the text is not a valid selector.
    """
    if not text or not text.strip():
        return LabelSelector()
    tokens = _tokens(text)
    requirements: list[LabelRequirement] = []
    index = 0

    def fail() -> BadRequestError:
        return BadRequestError(f"unable to parse requirement: found unexpected token in label selector {text!r}")

    def take() -> str:
        nonlocal index
        if index >= len(tokens):
            raise fail()
        index += 1
        return tokens[index - 1]

    def word() -> str:
        token = take()
        if token in ("!=", "==", "=", "!", "(", ")", ",", ">", "<"):
            raise fail()
        return token

    while index < len(tokens):
        if tokens[index] == "!":
            index += 1
            requirements.append(LabelRequirement(key=word(), operator=Operator.DOES_NOT_EXIST))
        else:
            key = word()
            following = tokens[index] if index < len(tokens) else ","
            if following == ",":
                requirements.append(LabelRequirement(key=key, operator=Operator.EXISTS))
            elif following in ("=", "==", "!="):
                index += 1
                value = ""
                if index < len(tokens) and tokens[index] != ",":
                    value = word()
                operator = Operator.NOT_EQUALS if following == "!=" else Operator.EQUALS
                requirements.append(LabelRequirement(key=key, operator=operator, values=frozenset({value})))
            elif following in (">", "<"):
                index += 1
                operator = Operator.GREATER_THAN if following == ">" else Operator.LESS_THAN
                requirements.append(LabelRequirement(key=key, operator=operator, values=frozenset({word()})))
            elif following in ("in", "notin"):
                index += 1
                if take() != "(":
                    raise fail()
                values: set[str] = set()
                while True:
                    token = take()
                    if token == ")":
                        break
                    if token == ",":
                        continue
                    values.add(token)
                operator = Operator.IN if following == "in" else Operator.NOT_IN
                requirements.append(LabelRequirement(key=key, operator=operator, values=frozenset(values)))
            else:
                raise fail()
        if index < len(tokens):
            if tokens[index] != ",":
                raise fail()
            index += 1
            if index == len(tokens):
                raise fail()
    return LabelSelector(requirements=tuple(requirements))


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldRequirement:
    """One ``path=value`` or ``path!=value`` term of a field selector."""

    path: str
    value: str
    negated: bool = False

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Return whether the object's field (rendered as a string) satisfies the term."""
        equal = _field_value(obj, self.path) == self.value
        return not equal if self.negated else equal


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSelector:
    """A conjunction of field requirements; empty matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Return whether every term holds for the object."""
        return all(requirement.matches(obj) for requirement in self.requirements)

    @property
    def empty(self) -> bool:
        """True when the selector selects everything."""
        return not self.requirements

    def renamed(self, aliases: Mapping[str, str]) -> FieldSelector:
        """The same terms on the stored object's paths (for a resource stored as another one)."""
        if not aliases:
            return self
        return FieldSelector(requirements=tuple(
            FieldRequirement(path=aliases.get(r.path, r.path), value=r.value, negated=r.negated)
            for r in self.requirements
        ))

    def check_supported(self, supported: Iterable[str]) -> None:
        """Refuse paths the resource does not index, with the real server's words.

        A resource with fields of its own (Pods, Secrets, Events, Namespaces, …) has its own
        conversion function there, which says ``field label not supported: <path>``; one with
        only the metadata fields (ConfigMaps, Leases, custom resources) uses the default one.

        Raises:
            BadRequestError: a term names an unsupported field.
        """
        own = set(supported)
        allowed = {"metadata.name", "metadata.namespace", *own}
        for requirement in self.requirements:
            if requirement.path in allowed:
                continue
            if own:
                raise BadRequestError(f"field label not supported: {requirement.path}")
            raise BadRequestError(f'"{requirement.path}" is not a known field selector: '
                                  'only "metadata.name", "metadata.namespace"')


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current = ""
    escaped = False
    for char in text:
        if escaped:
            current += char if char == separator else "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def parse_field_selector(text: str | None) -> FieldSelector:
    """Parse the ``fieldSelector`` query parameter.

    Raises:
        BadRequestError: a term has no operator.
    """
    if not text or not text.strip():
        return FieldSelector()
    requirements: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        match = re.fullmatch(r"\s*([^=!\s]+)\s*(!=|==|=)(.*)", term.replace("\\=", "\x00"))
        if match is None:
            raise BadRequestError(f"invalid selector: '{text}'; can't understand '{term}'")
        path, operator, value = match.groups()
        requirements.append(
            FieldRequirement(
                path=path,
                value=value.replace("\x00", "=").replace("\\\\", "\\").strip(),
                negated=operator == "!=",
            )
        )
    return FieldSelector(requirements=tuple(requirements))
