"""Discovery documents: ``/api``, ``/apis``, ``/apis/<group>``, the resource lists and ``/version``.

The documents are the legacy (unaggregated) discovery forms: ``APIVersions``,
``APIGroupList``, ``APIGroup`` and ``APIResourceList``, built from the registry at each
request so a CRD is discoverable the moment it is created. Resource entries carry
``name``, ``singularName``, ``namespaced``, ``kind``, ``verbs``, ``shortNames`` and
``categories``; a ``status`` subresource is listed as ``<plural>/status`` with verbs
get/patch/update. Clients asking for aggregated discovery (``as=APIGroupDiscoveryList``)
get the legacy form with ``Content-Type: application/json`` and fall back, as client-go
and kubectl do against older servers.
"""

from __future__ import annotations

from typing import Any

from .resources import Registry, ResourceInfo

__all__ = ["api_group", "api_group_list", "api_resource_list", "api_versions", "version_info"]

_STATUS_VERBS = ["get", "patch", "update"]


def version_info() -> dict[str, Any]:
    """Return the ``/version`` document (a Kubernetes 1.32 server)."""
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-apidouble",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """Return the ``/api`` document."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{version}", "version": version} for version in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    """Return the ``/apis`` document: every named group with its versions."""
    groups = [_group(group, versions) for group, versions in registry.group_versions().items() if group]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    """Return the ``/apis/<group>`` document, or None when the group is not served."""
    versions = registry.group_versions().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def _entries(info: ResourceInfo) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {
        "name": info.resource,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    entries = [entry]
    if info.has_status:
        entries.append({"name": f"{info.resource}/status", "singularName": "", "namespaced": info.namespaced,
                        "kind": info.kind, "verbs": list(_STATUS_VERBS)})
    return entries


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """Return the ``/api/v1`` or ``/apis/<group>/<version>`` document, or None when not served."""
    resources = [
        entry
        for info in registry.served()
        if info.group == group and info.version == version
        for entry in _entries(info)
    ]
    if not resources:
        return None
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}
