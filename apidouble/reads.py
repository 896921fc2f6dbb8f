"""The read verbs: get one object, and list with selectors, resourceVersion semantics and paging.

Contract, as the real (etcd-backed) server:

- **get** answers the object, or 404 NotFound naming ``<resource>.<group> "<name>"``.
- **list** answers ``<Kind>List`` with ``metadata.resourceVersion``; items sorted by
  namespace then name; items of built-in kinds carry no ``apiVersion``/``kind`` (as the real
  server's JSON), custom objects do.
- **resourceVersion.** Unset: the current state. ``resourceVersionMatch=NotOlderThan`` (or a
  non-zero resourceVersion without ``limit``): the current state, once it is at least that
  version (a version the server has not reached is awaited up to 3 s, then 504 Timeout).
  ``resourceVersionMatch=Exact`` (or a non-zero resourceVersion with ``limit``): the state
  exactly at that version, rebuilt from history; 410 Expired once compacted.
- **Paging.** ``limit`` cuts the list and returns ``metadata.continue`` (plus
  ``remainingItemCount`` when no selector is used); every page of one list is served at
  the first page's resourceVersion, so pages are a consistent snapshot. A continue token
  older than the retained history answers 410 Expired; an unreadable one 400.
- **Selectors.** ``labelSelector`` (set-based included) and ``fieldSelector``
  (``metadata.name``, ``metadata.namespace`` and the resource's own fields; others 400).
- **Renderings.** ``as=Table`` and ``as=PartialObjectMetadata(List)`` (see :mod:`.tables`).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import trio

from .asgi import Request
from .cluster import Cluster
from .errors import BadRequestError, ExpiredError, NotFoundError, ServerTimeoutError
from .resources import ResourceInfo
from .selectors import parse_field_selector, parse_label_selector
from .store import ObjectKey
from .tables import Rendering, RenderingRequest, partial_metadata, table

__all__ = ["decode_continue", "encode_continue", "get_object", "list_objects", "parse_resource_version"]

_TOO_LARGE_WAIT_S = 3.0
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may "
    "show up in the list."
)


def encode_continue(resource_version: int, last: tuple[str, str]) -> str:
    """Return the opaque token for the page after ``last`` of a list at ``resource_version``."""
    payload = json.dumps({"v": "meta.k8s.io/v1", "rv": resource_version, "start": list(last)})
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    """Return (resourceVersion, last key) from a continue token.

    Raises:
        BadRequestError: the token was not issued by this server.
    """
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        namespace, name = payload["start"]
        return int(payload["rv"]), (str(namespace), str(name))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise BadRequestError(f"continue key is not valid: {exc}") from exc


def parse_resource_version(text: str | None) -> int | None:
    """Return the integer version of a ``resourceVersion`` parameter (None when unset or "0").

    Raises:
        BadRequestError: the value is not a non-negative integer.
    """
    if text in (None, "", "0"):
        return None
    assert text is not None
    if not text.isdigit():
        raise BadRequestError(f'resourceVersion: Invalid value: "{text}": must be a non-negative integer')
    return int(text)


def get_object(cluster: Cluster, info: ResourceInfo, *, namespace: str, name: str,
               request: Request, rendering: RenderingRequest) -> dict[str, Any]:
    """Return the rendered object.

    Raises:
        NotFoundError: no such object.
    """
    stored_as = info.group_resource
    key = ObjectKey(group=stored_as.group, resource=stored_as.resource, namespace=namespace, name=name)
    obj = cluster.store.get(key)
    if obj is None:
        raise NotFoundError.for_object(group=info.group, resource=info.resource, name=name)
    if rendering.rendering is Rendering.TABLE:
        return table(info, [info.present(obj)], meta_version=rendering.meta_version,
                     include_object=request.param("includeObject") or "Metadata",
                     list_metadata={"resourceVersion": obj["metadata"]["resourceVersion"]})
    if rendering.rendering is Rendering.PARTIAL_METADATA:
        return partial_metadata(obj, meta_version=rendering.meta_version)
    return info.present(obj)


async def _await_version(cluster: Cluster, version: int) -> None:
    if version <= cluster.store.resource_version:
        return
    with trio.move_on_after(_TOO_LARGE_WAIT_S):
        await cluster.store.wait_for_change(version - 1)
        return
    raise ServerTimeoutError(
        f"Too large resource version: {version}, current: {cluster.store.resource_version}",
        details={"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                 "retryAfterSeconds": 1},
    )


async def list_objects(cluster: Cluster, info: ResourceInfo, *, namespace: str | None,
                       request: Request, rendering: RenderingRequest) -> dict[str, Any]:
    """Return the rendered list (see the module docstring for the parameters honoured).

    Raises:
        BadRequestError: bad selector, limit, resourceVersion or continue token.
        ExpiredError: the requested version or continue token is compacted.
        ServerTimeoutError: the requested version never arrived.
    """
    labels = parse_label_selector(request.param("labelSelector"))
    fields = parse_field_selector(request.param("fieldSelector"))
    fields.check_supported(info.field_selectors)
    fields = fields.renamed(info.field_aliases)
    limit_text = request.param("limit") or "0"
    if not limit_text.isdigit():
        raise BadRequestError(f'limit: Invalid value: "{limit_text}": must be a non-negative integer')
    limit = int(limit_text)
    token = request.param("continue")
    version = parse_resource_version(request.param("resourceVersion"))
    match = request.param("resourceVersionMatch") or ""
    if match not in ("", "Exact", "NotOlderThan"):
        raise BadRequestError(f'resourceVersionMatch: Unsupported value: "{match}"')
    store = cluster.store
    after: tuple[str, str] | None = None
    if token:
        if version is not None:
            raise BadRequestError("specifying resource version is not allowed when using continue")
        list_version, after = decode_continue(token)
        try:
            items = store.items_at(list_version, info.group_resource, namespace=namespace)
        except ExpiredError as exc:
            raise ExpiredError(_CONTINUE_EXPIRED) from exc
    elif version is not None and (match == "Exact" or (not match and limit > 0)):
        await _await_version(cluster, version)
        list_version = version
        items = store.items_at(version, info.group_resource, namespace=namespace)
    else:
        if version is not None:
            await _await_version(cluster, version)
        list_version = store.resource_version
        items = store.items(info.group_resource, namespace=namespace)
    selected = [obj for obj in items if labels.matches(obj) and fields.matches(obj)]
    if after is not None:
        selected = [obj for obj in selected if _key(obj) > after]
    metadata: dict[str, Any] = {"resourceVersion": str(list_version)}
    if limit and len(selected) > limit:
        remaining = len(selected) - limit
        selected = selected[:limit]
        metadata["continue"] = encode_continue(list_version, _key(selected[-1]))
        if labels.empty and fields.empty:
            metadata["remainingItemCount"] = remaining
    return _render_list(info, selected, metadata, request=request, rendering=rendering)


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata", {})
    return (str(metadata.get("namespace", "")), str(metadata.get("name", "")))


def _render_list(info: ResourceInfo, items: list[dict[str, Any]], metadata: dict[str, Any], *,
                 request: Request, rendering: RenderingRequest) -> dict[str, Any]:
    if rendering.rendering is Rendering.TABLE:
        return table(info, [info.present(obj) for obj in items], meta_version=rendering.meta_version,
                     include_object=request.param("includeObject") or "Metadata", list_metadata=metadata)
    if rendering.rendering is Rendering.PARTIAL_METADATA:
        return {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{rendering.meta_version}",
                "metadata": metadata,
                "items": [partial_metadata(obj, meta_version=rendering.meta_version) for obj in items]}
    if info.custom:
        rendered = [info.present(obj) for obj in items]
    else:
        rendered = [{k: v for k, v in info.present(obj).items() if k not in ("apiVersion", "kind")}
                    for obj in items]
    return {"apiVersion": info.group_version, "kind": info.list_kind, "metadata": metadata, "items": rendered}
