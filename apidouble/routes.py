"""The route table: which handler answers a method and path.

Paths, as the real server lays them out::

    /version /healthz /livez /readyz                         server information
    /api  /api/v1  /apis  /apis/<g>  /apis/<g>/<v>           discovery
    /openapi/v3  /openapi/v3/api/v1  /openapi/v3/apis/<g>/<v> minimal OpenAPI v3 (see .openapi)
    /openapi/v2                                               404 (kubectl copes once v3 answers)
    <prefix>/<resource>[/<name>[/status]]                     cluster-scoped, or all namespaces
    <prefix>/namespaces/<ns>/<resource>[/<name>[/status]]     namespaced
    <prefix>/watch/...                                        legacy watch paths

where ``<prefix>`` is ``/api/v1`` or ``/apis/<g>/<v>``. A resource the registry does not
serve, or a subresource other than ``status``, answers a 404 Status; a path under an API
group nobody serves answers the real server's plain-text ``404 page not found`` (its
mux, not the API machinery, answers it); a verb the resource does not
list in its verbs answers 405. Collection verbs: GET list (``watch=true``: watch), POST
create, DELETE deletecollection. Object verbs: GET, PUT, PATCH, DELETE; ``/status``: GET,
PUT, PATCH.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .asgi import Request, Response, StreamResponse
from .cluster import Cluster
from .discovery import api_group, api_group_list, api_resource_list, api_versions, version_info
from .errors import BadRequestError, MethodNotAllowedError, NotFoundError
from .openapi import openapi_v3_document, openapi_v3_index
from .reads import get_object, list_objects, parse_resource_version
from .resources import ResourceInfo
from .selectors import parse_field_selector, parse_label_selector
from .tables import parse_accept
from .watch import WatchRequest, serve_watch
from .writes import WriteResult, create, delete, delete_collection, patch, update

__all__ = ["ResourcePath", "parse_resource_path", "route"]

logger = logging.getLogger(__name__)

Gate = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourcePath:
    """A URL under a group/version prefix, resolved against the registry."""

    info: ResourceInfo
    namespace: str | None
    """The namespace in the URL; None for cluster-scoped or all-namespaces paths."""
    name: str | None = None
    subresource: str | None = None
    watch: bool = False
    """The legacy ``/watch/`` prefix was used."""


def parse_resource_path(cluster: Cluster, path: str) -> ResourcePath | None:
    """Resolve a resource URL, or return None when it is not one."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watch = bool(rest) and rest[0] == "watch"
    if watch:
        rest = rest[1:]
    if not rest:
        return None
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        nested = cluster.registry.lookup(group=group, version=version, resource=rest[2])
        if nested is not None and nested.namespaced:
            namespace, rest = rest[1], rest[2:]
    info = cluster.registry.lookup(group=group, version=version, resource=rest[0])
    if info is None or len(rest) > 3:
        return None
    if info.namespaced and namespace is None and len(rest) > 1:
        return None
    return ResourcePath(
        info=info,
        namespace=namespace,
        name=rest[1] if len(rest) > 1 else None,
        subresource=rest[2] if len(rest) > 2 else None,
        watch=watch,
    )


def _written(result: WriteResult) -> Response:
    headers = tuple(("warning", '299 - "' + warning.replace("\\", "\\\\").replace('"', '\\"') + '"')
                    for warning in result.warnings)
    return Response.json(result.status, result.object, headers=headers)


def _discovery(cluster: Cluster, request: Request, server_address: str) -> Response | None:
    path = request.path.rstrip("/") or "/"
    parts = [part for part in path.split("/") if part]
    document = None
    if path in ("/healthz", "/livez", "/readyz"):
        return Response(status=200, body=b"ok", content_type="text/plain")
    if path == "/version":
        document = version_info()
    elif path == "/api":
        document = api_versions(server_address)
    elif path == "/api/v1":
        document = api_resource_list(cluster.registry, "", "v1")
    elif path == "/apis":
        document = api_group_list(cluster.registry)
    elif len(parts) == 2 and parts[0] == "apis":
        document = api_group(cluster.registry, parts[1])
    elif len(parts) == 3 and parts[0] == "apis":
        document = api_resource_list(cluster.registry, parts[1], parts[2])
    elif path == "/openapi/v3":
        document = openapi_v3_index(cluster.registry)
    elif parts[:3] == ["openapi", "v3", "api"] and len(parts) == 4:
        document = openapi_v3_document(cluster.registry, "", parts[3])
    elif parts[:3] == ["openapi", "v3", "apis"] and len(parts) == 5:
        document = openapi_v3_document(cluster.registry, parts[3], parts[4])
    elif parts[:1] == ["openapi"]:
        raise NotFoundError.for_path()
    else:
        return None
    if document is None:
        raise NotFoundError.for_path()
    return Response.json(200, document)


_PAGE_NOT_FOUND = Response(status=404, body=b"404 page not found\n", content_type="text/plain; charset=utf-8")


def _in_unknown_group(cluster: Cluster, path: str) -> bool:
    parts = [part for part in path.split("/") if part]
    return len(parts) >= 2 and parts[0] == "apis" and api_group(cluster.registry, parts[1]) is None


def _require(info: ResourceInfo, verb: str) -> None:
    if verb not in info.verbs:
        raise MethodNotAllowedError()


async def route(cluster: Cluster, request: Request, *, gate: Gate, server_address: str) -> Response | StreamResponse:
    """Answer one request (errors are raised as :class:`~.errors.ApiError`)."""
    if _in_unknown_group(cluster, request.path):
        return _PAGE_NOT_FOUND
    if request.method == "GET":
        answered = _discovery(cluster, request, server_address)
        if answered is not None:
            return answered
    target = parse_resource_path(cluster, request.path)
    if target is None:
        raise NotFoundError.for_path()
    info, method = target.info, request.method
    namespace = target.namespace or ""
    rendering = parse_accept(request.headers.get("accept"))
    if target.subresource is not None:
        if target.subresource != "status" or not info.has_status:
            raise NotFoundError.for_path()
        assert target.name is not None
        if method == "GET":
            _require(info, "get")
            return Response.json(200, get_object(cluster, info, namespace=namespace, name=target.name,
                                                 request=request, rendering=rendering))
        if method == "PUT":
            _require(info, "update")
            return _written(update(cluster, info, namespace=namespace, name=target.name, request=request,
                                   status_only=True))
        if method == "PATCH":
            _require(info, "patch")
            return _written(patch(cluster, info, namespace=namespace, name=target.name, request=request,
                                  status_only=True))
        raise MethodNotAllowedError()
    if target.name is not None:
        if method == "GET" and not target.watch:
            _require(info, "get")
            return Response.json(200, get_object(cluster, info, namespace=namespace, name=target.name,
                                                 request=request, rendering=rendering))
        if method == "PUT":
            _require(info, "update")
            return _written(update(cluster, info, namespace=namespace, name=target.name, request=request,
                                   status_only=False))
        if method == "PATCH":
            _require(info, "patch")
            return _written(patch(cluster, info, namespace=namespace, name=target.name, request=request,
                                  status_only=False))
        if method == "DELETE":
            _require(info, "delete")
            return _written(delete(cluster, info, namespace=namespace, name=target.name, request=request))
        if method != "GET":
            raise MethodNotAllowedError()
    if method == "GET":
        if target.watch or request.flag("watch"):
            _require(info, "watch")
            return _watch(cluster, target, request, gate=gate)
        _require(info, "list")
        return Response.json(200, await list_objects(cluster, info, namespace=target.namespace,
                                                     request=request, rendering=rendering))
    if method == "POST":
        _require(info, "create")
        if info.namespaced and target.namespace is None:
            raise MethodNotAllowedError()
        return _written(create(cluster, info, namespace=namespace, request=request))
    if method == "DELETE":
        _require(info, "deletecollection")

        def matching() -> list[dict[str, object]]:
            labels = parse_label_selector(request.param("labelSelector"))
            fields = parse_field_selector(request.param("fieldSelector"))
            fields.check_supported(info.field_selectors)
            fields = fields.renamed(info.field_aliases)
            return [obj for obj in cluster.store.items(info.group_resource, namespace=target.namespace)
                    if labels.matches(obj) and fields.matches(obj)]

        return _written(delete_collection(cluster, info, namespace=target.namespace, request=request,
                                          list_matching=matching))
    raise MethodNotAllowedError()


def _watch(cluster: Cluster, target: ResourcePath, request: Request, *, gate: Gate) -> StreamResponse:
    info = target.info
    fields = parse_field_selector(request.param("fieldSelector"))
    fields.check_supported(info.field_selectors)
    if target.name is not None:
        fields = parse_field_selector(",".join(filter(None, [request.param("fieldSelector"),
                                                             f"metadata.name={target.name}"])))
    fields = fields.renamed(info.field_aliases)
    timeout_text = request.param("timeoutSeconds")
    if timeout_text is not None and not timeout_text.isdigit():
        raise BadRequestError(f'timeoutSeconds: Invalid value: "{timeout_text}"')
    watch_request = WatchRequest(
        info=info,
        namespace=target.namespace,
        label_selector=parse_label_selector(request.param("labelSelector")),
        field_selector=fields,
        resource_version=parse_resource_version(request.param("resourceVersion")),
        allow_bookmarks=request.flag("allowWatchBookmarks"),
        send_initial_events=request.flag("sendInitialEvents"),
        timeout_s=float(timeout_text) if timeout_text else None,
        rendering=parse_accept(request.headers.get("accept")),
    )
    logger.debug("watch opened", extra={"resource": str(info.group_resource), "namespace": target.namespace,
                                        "resource_version": watch_request.resource_version})

    async def produce(send: Callable[[bytes], Awaitable[None]]) -> None:
        await serve_watch(cluster.store, cluster.watches, watch_request, send, gate=gate,
                          bookmark_interval_s=cluster.bookmark_interval_s)

    return StreamResponse(produce=produce)
