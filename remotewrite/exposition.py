"""Pushgateway pushes: text exposition without timestamps, and grouping-key URLs.

The Pushgateway refuses any sample with a timestamp (400) and keeps only the latest
value per series, so a push is the newest value of each series, grouped by metric
name, one ``# TYPE`` line per family where the type is known (``untyped`` otherwise, so
a name's type stays consistent across groups). Label values are escaped (``\\``,
``\"``, newline). Grouping-key values that contain ``/`` or are empty use the
``@base64`` form (URL-safe alphabet), as client libraries do.
"""

from __future__ import annotations

import base64
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from urllib.parse import quote

__all__ = ["format_exposition", "format_value", "grouping_path"]

_METRIC_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})


def format_value(value: float) -> str:
    """A sample value as the exposition format writes it."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_exposition(
    series: Iterable[tuple[Mapping[str, str], float]], *, types: Mapping[str, str] | None = None
) -> bytes:
    """Text exposition (0.0.4) of (labels with ``__name__``, value) pairs, no timestamps."""
    families: dict[str, list[str]] = defaultdict(list)
    for labels, value in series:
        name = labels.get("__name__", "")
        if not name:
            continue
        pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()) if k != "__name__")
        families[name].append(f"{name}{{{pairs}}} {format_value(value)}" if pairs else f"{name} {format_value(value)}")
    lines: list[str] = []
    for name in sorted(families):
        kind = (types or {}).get(name, "untyped")
        lines.append(f"# TYPE {name} {kind if kind in _METRIC_TYPES else 'untyped'}")
        lines.extend(sorted(families[name]))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def _segment(name: str, value: str) -> str:
    if value == "" or "/" in value:
        encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii") or "="
        return f"{name}@base64/{encoded}"
    return f"{name}/{quote(value, safe='')}"


def grouping_path(job: str, grouping: Mapping[str, str]) -> str:
    """``/metrics/job/<job>/<label>/<value>…`` for a Pushgateway group.

    Raises:
        ValueError: ``job`` is empty (the Pushgateway refuses it).
    """
    if not job:
        raise ValueError("job: must not be empty")
    parts = [_segment("job", job)] + [_segment(k, v) for k, v in sorted(grouping.items())]
    return "/metrics/" + "/".join(parts)
