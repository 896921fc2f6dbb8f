"""Minimal OpenAPI v3 documents: enough for kubectl to validate on the server side.

kubectl (1.27+) decides how to validate ``apply``/``create`` input by reading
``/openapi/v3``: when the PATCH operation of the object's group/version/kind lists a
``fieldValidation`` query parameter, it skips client-side validation and sends
``fieldValidation=Strict`` instead. Without that document it falls back to
``/openapi/v2`` (protobuf only) and, when that is missing too, refuses with "failed to
download openapi". So the double serves:

- ``/openapi/v3``: the index, one ``serverRelativeURL`` per served group/version, with a
  ``hash`` that changes when the document does (clients cache by URL);
- ``/openapi/v3/api/v1`` and ``/openapi/v3/apis/<group>/<version>``: one path per resource
  whose PATCH operation names its GVK, the ``fieldValidation`` parameter and the patch
  media types; custom resources also get their CRD schema under ``components.schemas``
  (so ``kubectl explain`` works). Strategic merge patch is never advertised, so kubectl
  computes it from its compiled-in types for built-ins and uses a JSON merge patch for
  custom resources, exactly as it does against a real server's CRDs.

``/openapi/v2`` is not served (404); kubectl tolerates that once v3 answers.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import Registry, ResourceInfo

__all__ = ["openapi_v3_document", "openapi_v3_index"]

_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json")


def _path_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _schema_name(info: ResourceInfo) -> str:
    reversed_group = ".".join(reversed(info.group.split("."))) if info.group else "io.k8s.api.core"
    return f"{reversed_group}.{info.version}.{info.kind}"


def _gvk(info: ResourceInfo) -> dict[str, str]:
    return {"group": info.group, "version": info.version, "kind": info.kind}


def _object_path(info: ResourceInfo) -> str:
    prefix = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    scope = "/namespaces/{namespace}" if info.namespaced else ""
    return f"{prefix}{scope}/{info.resource}/{{name}}"


def _schema_ref(info: ResourceInfo) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{_schema_name(info)}"}


def openapi_v3_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """Return the OpenAPI v3 document of one group/version, or None when it is not served."""
    infos = [info for info in registry.served() if info.group == group and info.version == version]
    if not infos:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for info in infos:
        schema = dict(info.schema.raw) if info.schema is not None else {"type": "object"}
        schemas[_schema_name(info)] = {**schema, "x-kubernetes-group-version-kind": [_gvk(info)]}
        if "patch" not in info.verbs:
            continue
        paths[_object_path(info)] = {
            "patch": {
                "operationId": f"patch{info.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": _gvk(info),
                "parameters": [
                    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                ],
                "requestBody": {"content": {media: {"schema": {"type": "object"}} for media in _PATCH_TYPES},
                                "required": True},
                "responses": {"200": {"description": "OK",
                                      "content": {"application/json": {"schema": _schema_ref(info)}}}},
            },
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-apidouble"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def openapi_v3_index(registry: Registry) -> dict[str, Any]:
    """Return the ``/openapi/v3`` index naming every group/version document."""
    paths: dict[str, Any] = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            document = openapi_v3_document(registry, group, version)
            digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32].upper()
            key = _path_key(group, version)
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}
