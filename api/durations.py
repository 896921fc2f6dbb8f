"""Duration strings as Prometheus and Go write them, parsed to exact milliseconds.

A MetricAccess ``interval`` is a ``metav1.Duration`` in the original (Go syntax, e.g.
``1m30s`` or ``1.5m``) while users of Prometheus write ``1h30m`` or ``1d``. Both forms
are accepted; a bare number (``"30"``) is refused, since the original would fail to
decode it (original-behaviour §7, "poison pill").
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = ["DURATION_PATTERN", "format_duration", "parse_duration_ms"]

_UNIT_MS: dict[str, Decimal] = {
    "ns": Decimal("0.000001"),
    "us": Decimal("0.001"),
    "µs": Decimal("0.001"),
    "ms": Decimal(1),
    "s": Decimal(1000),
    "m": Decimal(60_000),
    "h": Decimal(3_600_000),
    "d": Decimal(86_400_000),
    "w": Decimal(604_800_000),
    "y": Decimal(31_536_000_000),
}

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d|w|y))+$"
"""The shape of a duration, as the generated CRD states it."""

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_WHOLE = re.compile(DURATION_PATTERN)


def parse_duration_ms(text: str) -> int:
    """Parse ``text`` to whole milliseconds.

    Raises:
        ValueError: ``text`` is not a duration, or is not a whole number of milliseconds.
    """
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise ValueError(f"not a duration: {text!r} (use a unit, e.g. 30s, 1m30s, 1h)")
    total = Decimal(0)
    for number, unit in _PART.findall(text):
        try:
            total += Decimal(number) * _UNIT_MS[unit]
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only digits
            raise ValueError(f"not a duration: {text!r}") from exc
    if total != total.to_integral_value():
        raise ValueError(f"duration {text!r} is not a whole number of milliseconds")
    return int(total)


def format_duration(ms: int) -> str:
    """Format milliseconds in Prometheus' canonical form (``1h30m``, ``500ms``, ``0s``)."""
    if ms < 0:
        raise ValueError(f"ms: must not be negative, got {ms}")
    if ms == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
