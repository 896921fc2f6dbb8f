"""Patch application: JSON merge patch, JSON patch and an approximate strategic merge patch.

- ``application/merge-patch+json`` follows RFC 7386 exactly: objects merge recursively,
  ``null`` deletes, everything else (lists included) replaces.
- ``application/json-patch+json`` follows RFC 6902 (add, remove, replace, move, copy, test).
- ``application/strategic-merge-patch+json`` is merge patch plus the parts ``kubectl apply``
  sends for built-in kinds: lists of well-known fields (``containers``, ``env``, ``ports``,
  ``conditions``, ...) merge by their merge key, ``$patch: delete|replace`` directives,
  ``$retainKeys`` and ``$deleteFromPrimitiveList/<field>``; ``$setElementOrder/<field>`` is
  accepted and ignored. Merge keys come from a small table, not from the OpenAPI document,
  so lists the table does not name are replaced as in a merge patch.

``application/apply-patch+yaml`` (server-side apply) is refused with 415, which is what
clients see from servers without the feature; field managers are not tracked.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from .errors import BadRequestError, UnsupportedMediaTypeError

__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "STRATEGIC_MERGE_PATCH",
    "apply_patch",
    "check_patch_type",
    "json_patch",
    "merge_patch",
    "strategic_merge_patch",
]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

_MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "imagePullSecrets": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
    "hostAliases": ("ip",),
    "ports": ("containerPort", "port"),
}


def merge_patch(target: Any, patch: Any) -> Any:
    """Return ``target`` with the RFC 7386 merge patch applied (inputs are not modified)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Return ``target`` with an (approximate) strategic merge patch applied."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [item for item in result[field] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, _MERGE_KEYS[key])
        else:
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current: list[Any], patch: list[Any], candidates: tuple[str, ...]) -> list[Any]:
    dicts = [item for item in [*current, *patch] if isinstance(item, dict)]
    if len(dicts) != len(current) + len(patch):
        return copy.deepcopy(patch)
    key = next((c for c in candidates if all(c in item for item in dicts if item.get("$patch") != "delete")), None)
    if key is None:
        return copy.deepcopy(patch)
    merged = [copy.deepcopy(item) for item in current]
    for item in patch:
        index = next((i for i, existing in enumerate(merged) if existing.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append(strategic_merge_patch({}, item))
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise BadRequestError(f"invalid JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    current = doc
    for part in parts[:-1]:
        if isinstance(current, list):
            current = current[_index(current, part, allow_end=False)]
        elif isinstance(current, dict) and part in current:
            current = current[part]
        else:
            raise BadRequestError(f"doc is missing path: /{'/'.join(parts)}")
    return current


def _index(items: list[Any], part: str, *, allow_end: bool) -> int:
    if allow_end and part == "-":
        return len(items)
    if not part.isdigit():
        raise BadRequestError(f"invalid array index: {part!r}")
    index = int(part)
    if index > len(items) or (index == len(items) and not allow_end):
        raise BadRequestError(f"array index out of bounds: {index}")
    return index


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, list):
        return parent[_index(parent, last, allow_end=False)]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    raise BadRequestError(f"doc is missing path: /{'/'.join(parts)}")


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, allow_end=False))
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    raise BadRequestError(f"unable to remove nonexistent key: {last}")


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise BadRequestError(f"doc is missing path: /{'/'.join(parts)}")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """Return ``target`` with the RFC 6902 operations applied (the input is not modified).

    Raises:
        BadRequestError: the patch is malformed, a path is missing or a ``test`` fails.
    """
    if not isinstance(operations, list):
        raise BadRequestError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, Mapping) or "op" not in operation or "path" not in operation:
            raise BadRequestError("json patch operations need 'op' and 'path'")
        op, parts = operation["op"], _pointer(str(operation["path"]))
        if op == "add":
            doc = _add(doc, parts, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            _remove(doc, parts)
        elif op == "replace":
            if parts:
                _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(operation.get("value")))
        elif op in ("move", "copy"):
            source = _pointer(str(operation.get("from", "")))
            value = _remove(doc, source) if op == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, parts, value)
        elif op == "test":
            if _get(doc, parts) != operation.get("value"):
                raise BadRequestError(f"testing value /{'/'.join(parts)} failed")
        else:
            raise BadRequestError(f"unexpected json patch operation: {op!r}")
    return doc


def check_patch_type(content_type: str) -> str:
    """Return the patch media type, or refuse it before anything is looked up, as the real server does.

    Raises:
        UnsupportedMediaTypeError: the media type is not one of the three patch types
            (server-side apply, ``application/apply-patch+yaml``, is not supported).
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_MERGE_PATCH):
        raise UnsupportedMediaTypeError(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH}"
        )
    return media_type


def apply_patch(content_type: str, target: dict[str, Any], body: bytes) -> dict[str, Any]:
    """Apply a PATCH request body of the given media type to ``target``.

    Raises:
        UnsupportedMediaTypeError: the media type is not one of the three patch types.
        BadRequestError: the body is not valid JSON or not a valid patch.
    """
    media_type = check_patch_type(content_type)
    try:
        patch = json.loads(body or b"null")
    except ValueError as exc:
        raise BadRequestError(f"error decoding patch: {exc}") from exc
    if media_type == JSON_PATCH:
        result = json_patch(target, patch)
    elif not isinstance(patch, dict):
        raise BadRequestError("json: cannot unmarshal non-object into Go value of type map[string]interface {}")
    elif media_type == MERGE_PATCH:
        result = merge_patch(target, patch)
    else:
        result = strategic_merge_patch(target, patch)
    if not isinstance(result, dict):
        raise BadRequestError("the patch result is not an object")
    return result
