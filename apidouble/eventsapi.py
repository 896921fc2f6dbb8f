"""``events.k8s.io/v1`` Events: the same stored objects as core ``v1`` Events, in another shape.

The real server keeps one copy of each Event and serves it through both APIs, converting
field names: an Event written through ``events.k8s.io/v1`` is listed by ``kubectl get
events`` (core v1) and the other way round. The double does the same: events.k8s.io
objects are stored as core Events (:func:`to_core`) and served back converted
(:func:`from_core`); field selectors of the new API are read as the core fields they map
to (:data:`FIELD_ALIASES`).

Not reproduced: the real server's validation of ``events.k8s.io/v1`` writes (``eventTime``,
``reportingController``, ``reportingInstance`` and ``action`` required; ``note`` at most
1 kB); only the MicroTime format of ``eventTime`` is checked.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FIELD_ALIASES", "SELECTABLE_FIELDS", "from_core", "to_core"]

_RENAMED = (
    # (events.k8s.io/v1, core v1)
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
)
_SAME = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type")

FIELD_ALIASES: dict[str, str] = {
    **{f"regarding.{name}": f"involvedObject.{name}"
       for name in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
    "reportingController": "reportingComponent",
}
"""events.k8s.io field selector paths, as the core Event fields they select on."""

SELECTABLE_FIELDS = (*FIELD_ALIASES, "reason", "type")


def to_core(event: dict[str, Any]) -> dict[str, Any]:
    """An ``events.k8s.io/v1`` Event as the core ``v1`` Event the server stores."""
    core: dict[str, Any] = {"apiVersion": "v1", "kind": "Event"}
    for name in _SAME:
        if name in event:
            core[name] = event[name]
    for new, old in _RENAMED:
        if new in event:
            core[old] = event[new]
    return core


def from_core(core: dict[str, Any]) -> dict[str, Any]:
    """A stored core ``v1`` Event as served by ``events.k8s.io/v1``."""
    event: dict[str, Any] = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for name in _SAME:
        if name in core:
            event[name] = core[name]
    for new, old in _RENAMED:
        if old in core:
            event[new] = core[old]
    return event
