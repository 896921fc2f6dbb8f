"""Server-side printing: ``meta.k8s.io`` Table and PartialObjectMetadata renderings.

When a GET or list asks ``Accept: application/json;as=Table;g=meta.k8s.io;v=v1`` (what
``kubectl get`` sends) the double answers a Table, as the real server does: a ``Name``
column (format ``name``) followed by the resource's printer columns: a CRD version's
``additionalPrinterColumns`` (``Age`` when it declares none), or a built-in kind's own.
Cells follow the apiextensions table convertor: the first JSONPath result, ``date``
columns as a human duration (``5s``, ``3m2s``, ``4d``), ``integer``/``number``/``boolean``
cells only when the value has that type, missing values as null (kubectl shows
``<none>``). ``includeObject`` is honoured (``None``, ``Metadata`` (default), ``Object``).
``as=PartialObjectMetadata``/``PartialObjectMetadataList`` answer metadata only.

JSONPath support is the subset printer columns use: ``.a.b``, ``['a']``, ``[0]``, ``[*]``
and filters ``[?(@.x.y=="v")]`` / ``!=`` / ``[?(@.x)]``. Built-in kinds get the real
server's columns (all typed ``string``, as there) for ConfigMaps (Data), Secrets (Type,
Data), Namespaces (Status) and Leases (Holder); every other built-in kind shows Name and
Age only (a Pod has no READY/STATUS, a Service no CLUSTER-IP).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .resources import PrinterColumn, ResourceInfo

__all__ = [
    "Rendering",
    "RenderingRequest",
    "evaluate_json_path",
    "human_duration",
    "parse_accept",
    "partial_metadata",
    "table",
]

_NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources "
    "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
    "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_BUILTIN_AGE = PrinterColumn(
    name="Age", type="date", json_path=".metadata.creationTimestamp",
    description="CreationTimestamp is a timestamp representing the server time when this object was created.",
)


class Rendering(enum.Enum):
    """What shape the client asked for in its Accept header."""

    OBJECT = "object"
    TABLE = "Table"
    PARTIAL_METADATA = "PartialObjectMetadata"


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderingRequest:
    """The negotiated rendering and the meta.k8s.io version it names."""

    rendering: Rendering
    meta_version: str = "v1"


def parse_accept(accept: str | None) -> RenderingRequest:
    """Pick the first acceptable rendering from an Accept header (JSON objects by default)."""
    for clause in (accept or "").split(","):
        parts = [part.strip() for part in clause.split(";")]
        params = dict(part.split("=", 1) for part in parts[1:] if "=" in part)
        media = parts[0].lower()
        if media not in ("application/json", "*/*", "application/*"):
            continue
        wanted = params.get("as")
        if wanted is None:
            return RenderingRequest(rendering=Rendering.OBJECT)
        if params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            if wanted == "Table":
                return RenderingRequest(rendering=Rendering.TABLE, meta_version=params["v"])
            if wanted in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return RenderingRequest(rendering=Rendering.PARTIAL_METADATA, meta_version=params["v"])
    return RenderingRequest(rendering=Rendering.OBJECT)


def partial_metadata(obj: dict[str, Any], *, meta_version: str = "v1") -> dict[str, Any]:
    """Return the PartialObjectMetadata form of an object."""
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{meta_version}",
            "metadata": obj.get("metadata", {})}


def human_duration(seconds: float) -> str:
    """Format an age the way ``k8s.io/apimachinery/pkg/util/duration.HumanDuration`` does."""
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        rest = total % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = total // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


_STEP = re.compile(
    r"\.(?P<field>[A-Za-z0-9_\-$]+)"
    r"|\[(?P<quoted>'[^']*'|\"[^\"]*\")\]"
    r"|\[(?P<index>-?\d+|\*)\]"
    r"|\[\?\(@(?P<fpath>(?:\.[A-Za-z0-9_\-]+)+)\s*(?:(?P<fop>==|!=)\s*(?P<fvalue>'[^']*'|\"[^\"]*\"|[^)\s]+))?\s*\)\]"
)


def _filter_value(literal: str) -> Any:
    if literal[:1] in ("'", '"'):
        return literal[1:-1]
    try:
        return json.loads(literal)
    except ValueError:
        return literal


def evaluate_json_path(obj: Any, path: str) -> list[Any]:
    """Return every value the (simple) JSONPath selects, in document order."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    current: list[Any] = [obj]
    position = 0
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            return []
        position = match.end()
        following: list[Any] = []
        for node in current:
            if match.group("field") or match.group("quoted"):
                key = match.group("field") or match.group("quoted")[1:-1]
                if isinstance(node, dict) and key in node:
                    following.append(node[key])
            elif match.group("index"):
                index = match.group("index")
                if isinstance(node, list) and index == "*":
                    following.extend(node)
                elif isinstance(node, list) and -len(node) <= int(index) < len(node):
                    following.append(node[int(index)])
                elif isinstance(node, dict) and index == "*":
                    following.extend(node.values())
            elif isinstance(node, list):
                following.extend(item for item in node if _filter_holds(item, match))
        current = following
    return current


def _filter_holds(item: Any, match: re.Match[str]) -> bool:
    found = evaluate_json_path(item, match.group("fpath"))
    if match.group("fop") is None:
        return bool(found)
    expected = _filter_value(match.group("fvalue"))
    equal = bool(found) and found[0] == expected
    return equal if match.group("fop") == "==" else not equal


def _cell(column: PrinterColumn, obj: dict[str, Any], now: datetime) -> Any:
    found = evaluate_json_path(obj, column.json_path)
    if not found or found[0] is None:
        return None
    value = found[0]
    if column.type == "date":
        if not isinstance(value, str):
            return None
        try:
            stamp = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return "<invalid>"
        return human_duration((now - stamp).total_seconds())
    if column.type == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if column.type == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if column.type == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _age(obj: dict[str, Any], now: datetime) -> Any:
    return _cell(_BUILTIN_AGE, obj, now) or "<unknown>"


def _count(*fields: str) -> Callable[[dict[str, Any], datetime], Any]:
    return lambda obj, now: sum(len(obj.get(name) or {}) for name in fields)


_BuiltinCell = Callable[[dict[str, Any], datetime], Any]
_BUILTIN_COLUMNS: dict[tuple[str, str], tuple[tuple[str, _BuiltinCell], ...]] = {
    ("", "configmaps"): (("Data", _count("data", "binaryData")), ("Age", _age)),
    ("", "secrets"): (("Type", lambda obj, now: obj.get("type", "")), ("Data", _count("data")), ("Age", _age)),
    ("", "namespaces"): (("Status", lambda obj, now: (obj.get("status") or {}).get("phase", "")), ("Age", _age)),
    ("coordination.k8s.io", "leases"): (
        ("Holder", lambda obj, now: (obj.get("spec") or {}).get("holderIdentity", "")), ("Age", _age)),
}
"""The real server's printers of the built-in kinds our code or kubectl users touch most."""


def _builtin_table(info: ResourceInfo, objects: Iterable[dict[str, Any]],
                   now: datetime) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    columns = _BUILTIN_COLUMNS.get((info.group, info.resource), (("Age", _age),))
    definitions = [{"name": name, "type": "string", "format": "", "description": "", "priority": 0}
                   for name, _ in columns]
    cells = [[cell(obj, now) for _, cell in columns] for obj in objects]
    return definitions, cells


def table(
    info: ResourceInfo,
    objects: Iterable[dict[str, Any]],
    *,
    meta_version: str = "v1",
    include_object: str = "Metadata",
    list_metadata: dict[str, Any] | None = None,
    include_column_definitions: bool = True,
) -> dict[str, Any]:
    """Render objects as a ``meta.k8s.io`` Table."""
    objects = list(objects)
    now = datetime.now(UTC)
    definitions = [{"name": "Name", "type": "string", "format": "name", "description": _NAME_DESCRIPTION,
                    "priority": 0}]
    if not info.custom:
        builtin = _builtin_table(info, objects, now)
        definitions.extend(builtin[0])
        other_cells = builtin[1]
    else:
        columns = info.printer_columns
        definitions.extend(
            {"name": c.name, "type": c.type, "format": c.format, "description": c.description,
             "priority": c.priority}
            for c in columns
        )
        other_cells = [[_cell(column, obj, now) for column in columns] for obj in objects]
    rows = []
    for obj, cells in zip(objects, other_cells, strict=True):
        row: dict[str, Any] = {"cells": [obj.get("metadata", {}).get("name", ""), *cells]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj, meta_version=meta_version)
        rows.append(row)
    rendered: dict[str, Any] = {"kind": "Table", "apiVersion": f"meta.k8s.io/{meta_version}",
                                "metadata": list_metadata or {}}
    if include_column_definitions:
        rendered["columnDefinitions"] = definitions
    rendered["rows"] = rows
    return rendered
