"""The write verbs: create, update, patch, delete and deletecollection, plus review creation.

Each verb decodes the body (JSON; YAML or, for a few kinds, protobuf when the Content-Type
says so, see :mod:`.protobuf`), checks it against
the URL, runs the strategy (:mod:`.strategy`), admits the result (metadata validation; for
custom objects the CRD schema, see :mod:`.schema`; for CRDs :mod:`.crds`) and writes the
store. Contract, as the real server:

- **create** answers 201 with the stored object; 409 AlreadyExists for a taken name.
- **update** (PUT) with a ``metadata.resourceVersion`` other than the stored one answers
  409 Conflict; without one it is unconditional. A missing object answers 404 (or is
  created, for the few kinds that allow create-on-update).
- **patch** applies the patch (:mod:`.patches`) to the stored object as served at the
  requested version; a ``resourceVersion`` in the patch is a precondition (409).
- A write that changes nothing is not stored: no new resourceVersion, no watch event.
- ``/status`` writes change only status; other writes keep the stored status.
- Unknown fields of custom objects are pruned; with ``fieldValidation=Strict`` they answer
  400, otherwise (``Warn``, the default) a ``Warning`` header names each.
- ``MicroTime`` fields (a Lease's ``acquireTime``/``renewTime``, an Event's ``eventTime``)
  must carry exactly six fractional digits (``2024-01-01T00:00:00.000000Z``), or the write
  answers 400 as the real decoder does; ``Time`` fields take any RFC 3339 time.
- ``dryRun=All`` runs everything but the store write.
- **delete** answers 200 with the object marked for deletion while finalizers remain;
  once it is gone, with a ``Status`` of ``Success`` naming it, except for the kinds whose
  real registry returns the deleted object (Pods, Services, Namespaces, CRDs);
  ``preconditions`` in DeleteOptions are checked (409).
  Deleting a CRD deletes its objects and closes their watches at once; deleting a
  namespace marks it Terminating and removes it with its contents shortly after (see
  :mod:`.namespaces`). Owner references are not followed (there is no garbage collector).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from .asgi import Request
from .cluster import Cluster
from .crds import default_crd, established_status, served_resources, validate_crd
from .errors import AlreadyExistsError, BadRequestError, ConflictError, InvalidError, NotFoundError
from .namespaces import check_namespace_open, mark_terminating, prepare_namespace
from .patches import apply_patch, check_patch_type
from .protobuf import PROTOBUF, decode_protobuf_object
from .resources import ResourceInfo
from .reviews import answer_subject_access_review, answer_token_review
from .store import ObjectKey
from .strategy import (
    prepare_create,
    prepare_deletion,
    prepare_update,
    same_content,
    validate_metadata,
    with_generation,
)

__all__ = ["WriteResult", "create", "delete", "delete_collection", "patch", "seed", "update"]

_CRD = ("apiextensions.k8s.io", "customresourcedefinitions")
_NAMESPACE = ("", "namespaces")
_RETURNS_DELETED_OBJECT = frozenset({("", "pods"), ("", "services"), _NAMESPACE, _CRD})
"""Kinds whose real registry answers a delete with the object (``ReturnDeletedObject`` or its own REST)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteResult:
    """What a write answers: HTTP status, body and ``Warning`` header values."""

    status: int
    object: dict[str, Any]
    warnings: tuple[str, ...] = ()


def _decode(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type == PROTOBUF:
        return decode_protobuf_object(request.body)
    try:
        if content_type in ("application/yaml", "application/x-yaml", "text/yaml"):
            body = yaml.safe_load(request.body or b"")
        else:
            body = json.loads(request.body or b"null")
    except (ValueError, yaml.YAMLError) as exc:
        raise BadRequestError(f"the body of the request was in an unknown format: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequestError("the body of the request must be a JSON object")
    return body


def _check_identity(info: ResourceInfo, body: dict[str, Any], *, namespace: str, name: str | None) -> None:
    api_version, kind = body.setdefault("apiVersion", info.group_version), body.setdefault("kind", info.kind)
    if api_version != info.group_version:
        raise BadRequestError(f"the API version in the data ({api_version}) does not match the expected "
                              f"API version ({info.group_version})")
    if kind != info.kind:
        raise BadRequestError(f"the kind in the data ({kind}) does not match the expected kind ({info.kind})")
    metadata = body.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise BadRequestError("metadata must be an object")
    if info.namespaced and metadata.get("namespace") and metadata["namespace"] != namespace:
        raise BadRequestError(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if name is not None and metadata.get("name") and metadata["name"] != name:
        raise BadRequestError(
            f"the name of the object ({metadata['name']}) does not match the name on the URL ({name})"
        )


_MICRO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})")
_MICRO_TIME_FIELDS: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {
    ("coordination.k8s.io", "leases"): (("spec", "acquireTime"), ("spec", "renewTime")),
    ("", "events"): (("eventTime",), ("series", "lastObservedTime")),
    ("events.k8s.io", "events"): (("eventTime",), ("series", "lastObservedTime")),
}


def _check_micro_times(info: ResourceInfo, obj: dict[str, Any]) -> None:
    for path in _MICRO_TIME_FIELDS.get((info.group, info.resource), ()):
        value: Any = obj
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            continue
        if not isinstance(value, str) or not _MICRO_TIME.fullmatch(value):
            raise BadRequestError(
                f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: parsing time '
                f'{json.dumps(value)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse it'
            )


def _admit(cluster: Cluster, info: ResourceInfo, obj: dict[str, Any], *, old: dict[str, Any] | None,
           request: Request) -> tuple[dict[str, Any], tuple[str, ...]]:
    _check_micro_times(info, obj)
    causes = validate_metadata(info, obj, old=old)
    warnings: tuple[str, ...] = ()
    if info.schema is not None:
        outcome = info.schema.apply(obj)
        obj = outcome.object
        if outcome.unknown_fields:
            mode = request.param("fieldValidation") or "Warn"
            rendered = tuple(f'unknown field "{path}"' for path in outcome.unknown_fields)
            if mode == "Strict":
                raise BadRequestError(f'{info.kind} in version "{info.version}" cannot be handled as a '
                                      f"{info.kind}: strict decoding error: " + ", ".join(rendered))
            if mode != "Ignore":
                warnings = rendered
        causes.extend(outcome.causes)
    if (info.group, info.resource) == _CRD:
        obj = default_crd(obj)
        causes.extend(validate_crd(obj))
        if not causes:
            obj["status"] = established_status(obj, previous=old)
    if causes:
        raise InvalidError(kind=info.kind, group=info.group, name=str(obj["metadata"].get("name", "")),
                           causes=causes)
    return obj, warnings


def _after_write(cluster: Cluster, info: ResourceInfo, stored: dict[str, Any]) -> None:
    if (info.group, info.resource) == _CRD:
        cluster.registry.register_crd(stored["metadata"]["name"], served_resources(stored))


def _after_delete(cluster: Cluster, info: ResourceInfo, final: dict[str, Any]) -> None:
    name = final["metadata"]["name"]
    if (info.group, info.resource) == _CRD:
        removed = cluster.registry.unregister_crd(name)
        if removed:
            group_resource = removed[0].group_resource
            for obj in cluster.store.items(group_resource):
                metadata = obj["metadata"]
                cluster.store.delete(ObjectKey(group=group_resource.group, resource=group_resource.resource,
                                               namespace=metadata.get("namespace", ""), name=metadata["name"]))
            cluster.watches.drop(group_resource)


def create(cluster: Cluster, info: ResourceInfo, *, namespace: str, request: Request) -> WriteResult:
    """Create an object (or answer a review); see the module docstring."""
    body = _decode(request)
    _check_identity(info, body, namespace=namespace, name=None)
    if info.group == "authentication.k8s.io" and info.resource == "tokenreviews":
        return WriteResult(status=201, object=answer_token_review(cluster.rules, body))
    if info.group == "authorization.k8s.io" and info.resource == "subjectaccessreviews":
        return WriteResult(status=201, object=answer_subject_access_review(cluster.rules, body))
    if info.namespaced:
        check_namespace_open(cluster.store, namespace)
    obj = prepare_create(info, info.stored_form(body), namespace=namespace)
    if (info.group, info.resource) == _NAMESPACE:
        prepare_namespace(obj)
    obj, warnings = _admit(cluster, info, obj, old=None, request=request)
    key = _key(info, namespace, obj["metadata"]["name"])
    if cluster.store.get(key) is not None:
        raise AlreadyExistsError.for_object(group=info.group, resource=info.resource, name=key.name)
    if _dry_run(request):
        return WriteResult(status=201, object=info.present(obj), warnings=warnings)
    stored = cluster.store.put(key, obj)
    _after_write(cluster, info, stored)
    return WriteResult(status=201, object=info.present(stored), warnings=warnings)


def _dry_run(request: Request) -> bool:
    return "All" in request.query.get("dryRun", ())


def _key(info: ResourceInfo, namespace: str, name: str) -> ObjectKey:
    stored_as = info.group_resource
    return ObjectKey(group=stored_as.group, resource=stored_as.resource,
                     namespace=namespace if info.namespaced else "", name=name)


def _replace(cluster: Cluster, info: ResourceInfo, key: ObjectKey, old: dict[str, Any], body: dict[str, Any], *,
             status_only: bool, request: Request) -> WriteResult:
    obj = prepare_update(info, old, body, status_only=status_only)
    obj, warnings = _admit(cluster, info, obj, old=old, request=request)
    if not status_only:
        obj = with_generation(info, old, obj)
    if _dry_run(request):
        return WriteResult(status=200, object=info.present(obj), warnings=warnings)
    terminating = obj["metadata"].get("deletionTimestamp") and (info.group, info.resource) != _NAMESPACE
    if terminating and not obj["metadata"].get("finalizers"):
        final = cluster.store.delete(key)
        assert final is not None
        _after_delete(cluster, info, final)
        return WriteResult(status=200, object=info.present(final), warnings=warnings)
    if same_content(old, obj):
        return WriteResult(status=200, object=info.present(old), warnings=warnings)
    stored = cluster.store.put(key, obj)
    _after_write(cluster, info, stored)
    return WriteResult(status=200, object=info.present(stored), warnings=warnings)


def update(cluster: Cluster, info: ResourceInfo, *, namespace: str, name: str, request: Request,
           status_only: bool) -> WriteResult:
    """Replace an object or its status (PUT); see the module docstring."""
    body = _decode(request)
    _check_identity(info, body, namespace=namespace, name=name)
    key = _key(info, namespace, name)
    old = cluster.store.get(key)
    if old is None:
        if info.allow_create_on_update and not status_only:
            return create(cluster, info, namespace=namespace, request=request)
        raise NotFoundError.for_object(group=info.group, resource=info.resource, name=name)
    wanted = body["metadata"].get("resourceVersion")
    if wanted and wanted != old["metadata"]["resourceVersion"]:
        raise ConflictError.stale(group=info.group, resource=info.resource, name=name)
    return _replace(cluster, info, key, old, info.stored_form(body), status_only=status_only, request=request)


def patch(cluster: Cluster, info: ResourceInfo, *, namespace: str, name: str, request: Request,
          status_only: bool) -> WriteResult:
    """Patch an object or its status; see the module docstring."""
    check_patch_type(request.headers.get("content-type", ""))
    key = _key(info, namespace, name)
    old = cluster.store.get(key)
    if old is None:
        raise NotFoundError.for_object(group=info.group, resource=info.resource, name=name)
    content_type = request.headers.get("content-type", "")
    patched = apply_patch(content_type, copy.deepcopy(info.present(old)), request.body)
    metadata = patched.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise BadRequestError("metadata must be an object")
    wanted = metadata.get("resourceVersion")
    if wanted and wanted != old["metadata"]["resourceVersion"]:
        raise ConflictError.stale(group=info.group, resource=info.resource, name=name)
    metadata["name"] = name
    if info.namespaced:
        metadata["namespace"] = namespace
    _check_identity(info, patched, namespace=namespace, name=name)
    return _replace(cluster, info, key, old, info.stored_form(patched), status_only=status_only, request=request)


def _delete_one(cluster: Cluster, info: ResourceInfo, key: ObjectKey, old: dict[str, Any]) -> dict[str, Any]:
    if (info.group, info.resource) == _NAMESPACE:
        if old["metadata"].get("deletionTimestamp"):
            return old
        cluster.namespaces.schedule(key.name)
        return cluster.store.put(key, mark_terminating(old))
    if old["metadata"].get("finalizers"):
        marked = prepare_deletion(info, old)
        if same_content(old, marked):
            return old
        return cluster.store.put(key, marked)
    final = cluster.store.delete(key)
    assert final is not None
    _after_delete(cluster, info, final)
    return final


def delete(cluster: Cluster, info: ResourceInfo, *, namespace: str, name: str, request: Request) -> WriteResult:
    """Delete an object (or mark it, while finalizers remain); see the module docstring."""
    key = _key(info, namespace, name)
    old = cluster.store.get(key)
    if old is None:
        raise NotFoundError.for_object(group=info.group, resource=info.resource, name=name)
    options = _decode(request) if request.body.strip() else {}
    preconditions = options.get("preconditions") or {}
    for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        wanted = preconditions.get(field)
        actual = old["metadata"].get(field)
        if wanted and wanted != actual:
            raise ConflictError.stale(
                group=info.group, resource=info.resource, name=name,
                why=f"Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}",
            )
    if _dry_run(request) or "All" in (options.get("dryRun") or ()):
        return WriteResult(status=200, object=info.present(old))
    outcome = _delete_one(cluster, info, key, old)
    if cluster.store.get(key) is not None or (info.group, info.resource) in _RETURNS_DELETED_OBJECT:
        return WriteResult(status=200, object=info.present(outcome))
    details: dict[str, Any] = {"name": name}
    if info.group:
        details["group"] = info.group
    details.update(kind=info.resource, uid=old["metadata"].get("uid", ""))
    return WriteResult(status=200, object={"kind": "Status", "apiVersion": "v1", "metadata": {},
                                           "status": "Success", "details": details})


def delete_collection(cluster: Cluster, info: ResourceInfo, *, namespace: str | None, request: Request,
                      list_matching: Callable[[], list[dict[str, Any]]]) -> WriteResult:
    """Delete every object ``list_matching`` returns; answer the list of what was deleted."""
    deleted = []
    for obj in list_matching():
        metadata = obj["metadata"]
        key = _key(info, metadata.get("namespace", ""), metadata["name"])
        current = cluster.store.get(key)
        if current is not None:
            deleted.append(info.present(_delete_one(cluster, info, key, current)))
    body = {"apiVersion": info.group_version, "kind": info.list_kind,
            "metadata": {"resourceVersion": str(cluster.store.resource_version)}, "items": deleted}
    return WriteResult(status=200, object=body)


def seed(cluster: Cluster, info: ResourceInfo, body: dict[str, Any]) -> dict[str, Any]:
    """Create or replace an object as given, status included (for fixtures and state files).

    The usual admission runs (names, schema, CRD registration), but unlike an API write the
    body's ``status`` is stored as is and no resourceVersion precondition applies.

    Raises:
        ApiError: the object is invalid.
    """
    body = copy.deepcopy(body)
    metadata = body.setdefault("metadata", {})
    namespace = str(metadata.get("namespace") or ("default" if info.namespaced else ""))
    metadata.pop("resourceVersion", None)
    _check_identity(info, body, namespace=namespace, name=None)
    request = Request(method="POST", path="")
    key = _key(info, namespace, str(metadata.get("name", "")))
    old = cluster.store.get(key) if key.name else None
    body = info.stored_form(body)
    if old is None:
        obj = prepare_create(info, body, namespace=namespace)
        if (info.group, info.resource) == _NAMESPACE:
            prepare_namespace(obj)
        key = _key(info, namespace, obj["metadata"]["name"])
    else:
        obj = prepare_update(info, old, body, status_only=False)
    if "status" in body:
        obj["status"] = body["status"]
    obj, _ = _admit(cluster, info, obj, old=old, request=request)
    if old is not None:
        obj = with_generation(info, old, obj)
        if same_content(old, obj):
            return info.present(old)
    stored = cluster.store.put(key, obj)
    _after_write(cluster, info, stored)
    return info.present(stored)
