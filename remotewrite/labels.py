"""Extra labels merged into a series, with Prometheus' ``honor_labels`` semantics.

Applied after relabelling, as in the original. ``honor_labels=True``: an extra label is
added only when the series lacks it (the series' value wins). ``False``: the extra label
wins and the series' own value moves to ``exported_<name>``, prefixing ``exported_``
again while that name is taken, conflicts resolved shortest name first, exactly as
Prometheus' ``mutateSampleLabels``/``resolveConflictingExposedLabels`` do for target
labels. Setting a label to the empty string removes it. Label sets are dicts here;
the caller keeps them sorted when it encodes.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["EXPORTED_PREFIX", "merge_extra_labels"]

EXPORTED_PREFIX = "exported_"


def merge_extra_labels(series: Mapping[str, str], extra: Mapping[str, str], *, honor_labels: bool) -> dict[str, str]:
    """The label set of ``series`` with ``extra`` merged in (a new dict)."""
    out = dict(series)
    if not extra:
        return out
    if honor_labels:
        for name in sorted(extra):
            if not out.get(name):
                _set(out, name, extra[name])
        return out
    conflicts: list[tuple[str, str]] = []
    for name in sorted(extra):
        existing = series.get(name, "")
        if existing:
            conflicts.append((name, existing))
        _set(out, name, extra[name])
    for name, existing in sorted(conflicts, key=lambda c: len(c[0])):
        new_name = name
        while True:
            new_name = EXPORTED_PREFIX + new_name
            if not out.get(new_name):
                _set(out, new_name, existing)
                break
    return out


def _set(labels: dict[str, str], name: str, value: str) -> None:
    if value:
        labels[name] = value
    else:
        labels.pop(name, None)
