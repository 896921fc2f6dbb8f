"""Relabel rules as a MetricAccess writes them, validated exactly as Prometheus validates them.

Prometheus rejects an invalid ``metric_relabel_configs`` entry when it loads its config;
the original silently skipped such rules at run time (original-behaviour §4.6). Here a
bad rule makes the whole MetricAccess invalid, with the rule's field path, and the
remote-write pipeline never sees it. Defaults are Prometheus': separator ``;``, regex
``(.*)``, replacement ``$1``, action ``replace``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from mtproxy.api.matchers import LABEL_NAME_RE
from mtproxy.api.regex import validate_re2

__all__ = [
    "DEFAULT_REGEX",
    "DEFAULT_REPLACEMENT",
    "DEFAULT_SEPARATOR",
    "RelabelAction",
    "RelabelConfig",
    "relabel_problems",
]

DEFAULT_SEPARATOR = ";"
DEFAULT_REGEX = "(.*)"
DEFAULT_REPLACEMENT = "$1"

# Prometheus' relabelTarget: a label name in which ``$1``/``${name}`` references may stand.
_RELABEL_TARGET = re.compile(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+\Z", re.ASCII)


class RelabelAction(enum.Enum):
    """Every relabel action Prometheus knows."""

    REPLACE = "replace"
    KEEP = "keep"
    DROP = "drop"
    KEEPEQUAL = "keepequal"
    DROPEQUAL = "dropequal"
    HASHMOD = "hashmod"
    LABELMAP = "labelmap"
    LABELDROP = "labeldrop"
    LABELKEEP = "labelkeep"
    LOWERCASE = "lowercase"
    UPPERCASE = "uppercase"


@dataclass(frozen=True, slots=True, kw_only=True)
class RelabelConfig:
    """One ``metricRelabelings`` entry; ``source_labels`` is ``None`` when the field is absent."""

    source_labels: tuple[str, ...] | None = None
    separator: str = DEFAULT_SEPARATOR
    regex: str = DEFAULT_REGEX
    modulus: int = 0
    target_label: str = ""
    replacement: str = DEFAULT_REPLACEMENT
    action: RelabelAction = RelabelAction.REPLACE


def relabel_problems(rule: RelabelConfig) -> list[tuple[str, str]]:
    """Every reason Prometheus would reject ``rule``, as (camelCase field, message) pairs.

    Mirrors ``relabel.Config.Validate`` of Prometheus, plus RE2 syntax of ``regex`` and
    the validity of each source label name.
    """
    problems: list[tuple[str, str]] = []
    action = rule.action
    name = action.value
    try:
        validate_re2(rule.regex)
    except ValueError as exc:
        problems.append(("regex", str(exc)))
    for index, label in enumerate(rule.source_labels or ()):
        if not LABEL_NAME_RE.match(label):
            problems.append((f"sourceLabels[{index}]", f"invalid label name {label!r}"))
    if rule.modulus < 0:
        problems.append(("modulus", "must not be negative"))
    if action is RelabelAction.HASHMOD and rule.modulus == 0:
        problems.append(("modulus", "hashmod action requires a non-zero modulus"))
    needs_target = {
        RelabelAction.REPLACE,
        RelabelAction.HASHMOD,
        RelabelAction.LOWERCASE,
        RelabelAction.UPPERCASE,
        RelabelAction.KEEPEQUAL,
        RelabelAction.DROPEQUAL,
    }
    if action in needs_target and not rule.target_label:
        problems.append(("targetLabel", f"{name} action requires targetLabel"))
    elif action is RelabelAction.REPLACE:
        valid = (
            _RELABEL_TARGET.match(rule.target_label)
            if "$" in rule.target_label
            else LABEL_NAME_RE.match(rule.target_label)
        )
        if not valid:
            problems.append(("targetLabel", f"{rule.target_label!r} is invalid for {name} action"))
    elif action in needs_target and not LABEL_NAME_RE.match(rule.target_label):
        problems.append(("targetLabel", f"{rule.target_label!r} is invalid for {name} action"))
    simple_value = {RelabelAction.LOWERCASE, RelabelAction.UPPERCASE, RelabelAction.KEEPEQUAL, RelabelAction.DROPEQUAL}
    if action in simple_value and rule.replacement != DEFAULT_REPLACEMENT:
        problems.append(("replacement", f"replacement can not be set for {name} action"))
    if action is RelabelAction.LABELMAP and not _RELABEL_TARGET.match(rule.replacement):
        problems.append(("replacement", f"{rule.replacement!r} is invalid for {name} action"))
    if action in (RelabelAction.KEEPEQUAL, RelabelAction.DROPEQUAL) and (
        rule.regex != DEFAULT_REGEX or rule.modulus != 0 or rule.separator != DEFAULT_SEPARATOR
    ):
        problems.append(("action", f"{name} action requires only sourceLabels and targetLabel, and no other fields"))
    if action in (RelabelAction.LABELDROP, RelabelAction.LABELKEEP) and (
        rule.source_labels is not None
        or rule.target_label
        or rule.modulus != 0
        or rule.separator != DEFAULT_SEPARATOR
        or rule.replacement != DEFAULT_REPLACEMENT
    ):
        problems.append(("action", f"{name} action requires only regex, and no other fields"))
    return problems
