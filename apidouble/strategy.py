"""Write strategies: how a create, update or deletion turns a request body into the stored object.

Pure functions on dicts, reproducing the real server's ``PrepareForCreate`` /
``PrepareForUpdate`` rules that clients can observe:

- **Create** sets ``uid``, ``creationTimestamp`` and (where tracked) ``generation: 1``;
  fills ``metadata.name`` from ``generateName`` plus five random characters; drops
  ``status`` for resources with a status subresource;
  refuses a body with ``resourceVersion`` set, as the real server does (500).
- **Update of the main resource** keeps ``uid``, ``creationTimestamp``, ``generation`` and
  deletion fields from the stored object and, for resources with a status subresource,
  the stored ``status``; :func:`with_generation` then bumps ``generation`` when anything
  outside ``metadata`` (and ``status``, where it is a subresource) changed (it runs after
  schema pruning and defaulting, so dropped unknown fields never count as a change).
- **Update of the status subresource** keeps the stored object and replaces only
  ``status``; metadata changes in the body are ignored.
- **Deletion with finalizers** sets ``deletionTimestamp`` (once) and bumps ``generation``;
  the object goes when an update empties ``finalizers``. No finalizer may be added to an
  object being deleted.
- **Metadata validation**: name or generateName required; names are RFC 1123 subdomains
  (labels for namespaces). Label and annotation syntax is not checked.
"""

from __future__ import annotations

import copy
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError, FieldCause
from .resources import ResourceInfo

__all__ = [
    "generation_changed",
    "now_timestamp",
    "prepare_create",
    "prepare_deletion",
    "prepare_update",
    "same_content",
    "validate_metadata",
    "with_generation",
]

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SERVER_OWNED_ON_UPDATE = ("uid", "creationTimestamp", "generation", "deletionTimestamp",
                           "deletionGracePeriodSeconds", "name", "namespace")


def now_timestamp() -> str:
    """Return the current time as the RFC 3339 seconds form Kubernetes uses."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _generated_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


def prepare_create(info: ResourceInfo, body: dict[str, Any], *, namespace: str) -> dict[str, Any]:
    """Return the object to store for a create request (the body is not modified).

    Raises:
        ApiError: the body carries a resourceVersion (500, as the real storage layer answers).
    """
    obj = copy.deepcopy(body)
    metadata = obj.setdefault("metadata", {})
    if metadata.get("resourceVersion"):
        raise ApiError("resourceVersion should not be set on objects to be created")
    if info.namespaced:
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    if not metadata.get("name") and metadata.get("generateName"):
        metadata["name"] = _generated_name(str(metadata["generateName"]))
    for server_owned in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"):
        metadata.pop(server_owned, None)
    metadata["uid"] = str(uuid.uuid4())
    metadata["creationTimestamp"] = now_timestamp()
    if info.tracks_generation:
        metadata["generation"] = 1
    else:
        metadata.pop("generation", None)
    if info.has_status:
        obj.pop("status", None)
    return obj


def _without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def generation_changed(info: ResourceInfo, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Return whether a write changes what ``metadata.generation`` tracks."""
    ignored = ("metadata", "status") if info.has_status else ("metadata",)
    return _without(old, *ignored) != _without(new, *ignored)


def prepare_update(
    info: ResourceInfo, old: dict[str, Any], body: dict[str, Any], *, status_only: bool
) -> dict[str, Any]:
    """Return the object to store for an update of the main resource or of ``status``."""
    if status_only:
        obj = copy.deepcopy(old)
        if "status" in body:
            obj["status"] = copy.deepcopy(body["status"])
        else:
            obj.pop("status", None)
        return obj
    obj = copy.deepcopy(body)
    metadata = obj.setdefault("metadata", {})
    old_metadata = old.get("metadata", {})
    for key in _SERVER_OWNED_ON_UPDATE:
        if key in old_metadata:
            metadata[key] = copy.deepcopy(old_metadata[key])
        else:
            metadata.pop(key, None)
    metadata.pop("managedFields", None)
    if info.has_status:
        if "status" in old:
            obj["status"] = copy.deepcopy(old["status"])
        else:
            obj.pop("status", None)
    return obj


def with_generation(info: ResourceInfo, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Bump ``new``'s generation in place when it tracks generations and its spec changed; return it."""
    if info.tracks_generation and generation_changed(info, old, new):
        new["metadata"]["generation"] = int(old.get("metadata", {}).get("generation", 0)) + 1
    return new


def prepare_deletion(info: ResourceInfo, old: dict[str, Any]) -> dict[str, Any]:
    """Return the object marked for deletion, for an object that still has finalizers."""
    obj = copy.deepcopy(old)
    metadata = obj["metadata"]
    if not metadata.get("deletionTimestamp"):
        metadata["deletionTimestamp"] = now_timestamp()
        metadata["deletionGracePeriodSeconds"] = 0
        if info.tracks_generation:
            metadata["generation"] = int(metadata.get("generation", 0)) + 1
    return obj


def same_content(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Return whether a write would change nothing but the resourceVersion (a no-op)."""
    old_meta = _without(old.get("metadata", {}), "resourceVersion")
    new_meta = _without(new.get("metadata", {}), "resourceVersion")
    return old_meta == new_meta and _without(old, "metadata") == _without(new, "metadata")


def validate_metadata(info: ResourceInfo, obj: dict[str, Any], *, old: dict[str, Any] | None) -> list[FieldCause]:
    """Return the metadata errors the real server reports with 422."""
    metadata = obj.get("metadata", {})
    name = metadata.get("name")
    causes: list[FieldCause] = []
    if not name:
        causes.append(FieldCause(field="metadata.name", reason="FieldValueRequired",
                                 message="Required value: name or generateName is required"))
        return causes
    is_namespace = info.group == "" and info.resource == "namespaces"
    pattern, limit, what = (_LABEL, 63, "label") if is_namespace else (_SUBDOMAIN, 253, "subdomain")
    if len(name) > limit or not pattern.fullmatch(name):
        causes.append(FieldCause(
            field="metadata.name", reason="FieldValueInvalid",
            message=(f'Invalid value: "{name}": a lowercase RFC 1123 {what} must consist of lower case '
                     "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                     f"character (regex used for validation is '{pattern.pattern}')"),
        ))
    if old is not None and old.get("metadata", {}).get("deletionTimestamp"):
        added = set(metadata.get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
        if added:
            causes.append(FieldCause(
                field="metadata.finalizers", reason="FieldValueForbidden",
                message=f"Forbidden: no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers {sorted(added)!r}",
            ))
    return causes
