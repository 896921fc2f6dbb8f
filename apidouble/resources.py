"""The table of resources the double serves: built-in kinds plus those registered by CRDs.

A :class:`ResourceInfo` says everything the handlers need about one group/version/resource:
its kind, scope, verbs, short names and categories (for discovery), whether it has a
``status`` subresource, whether it tracks ``metadata.generation``, which field selectors it
accepts, and, for custom resources, the schema and printer columns of that version.

Contract: objects are stored per group and resource, not per version, as the real server
stores one copy in its storage version; a custom resource served in several versions is
the same object under each (conversion strategy ``None``: only ``apiVersion`` changes).
Built-in kinds are not validated beyond their metadata; their generation, status and
defaulting rules are simplified to the ones listed on each entry. A resource may also be
stored as another one (``storage``), converted on the way in and out: ``events.k8s.io/v1``
Events are core Events (:mod:`.eventsapi`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import eventsapi
from .schema import ObjectSchema

__all__ = [
    "CREATE_ONLY_VERBS",
    "STANDARD_VERBS",
    "GroupResource",
    "PrinterColumn",
    "Registry",
    "ResourceInfo",
    "builtin_resources",
]

STANDARD_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)
CREATE_ONLY_VERBS: tuple[str, ...] = ("create",)
_NAMESPACE_VERBS: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupResource:
    """The storage identity of a resource: objects of every version live under it."""

    group: str
    """API group, ``""`` for the core group."""
    resource: str
    """Plural resource name, e.g. ``metricaccesses``."""

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


@dataclass(frozen=True, slots=True, kw_only=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry of a CRD version."""

    name: str
    type: str
    """``string``, ``integer``, ``number``, ``boolean`` or ``date``."""
    json_path: str
    """A simple JSONPath such as ``.spec.mode`` or ``.status.conditions[?(@.type=="Ready")].status``."""
    description: str = ""
    format: str = ""
    priority: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceInfo:
    """Everything the handlers and discovery need about one served group/version/resource."""

    group: str
    version: str
    resource: str
    """Plural name, as in the URL."""
    singular: str
    kind: str
    list_kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    has_status: bool = False
    """Serves ``<name>/status``: status writes change only status, other writes keep it."""
    tracks_generation: bool = False
    """Sets ``metadata.generation`` to 1 on create and bumps it on non-status, non-metadata changes."""
    allow_create_on_update: bool = False
    """A PUT of a missing object creates it (true for a few built-ins, e.g. endpoints)."""
    field_selectors: tuple[str, ...] = ()
    """Field selector keys accepted besides ``metadata.name`` and ``metadata.namespace``."""
    custom: bool = False
    """Served from a CustomResourceDefinition."""
    crd_name: str = ""
    schema: ObjectSchema | None = field(default=None, compare=False)
    """Structural schema of a custom resource version (defaulting, pruning, validation)."""
    printer_columns: tuple[PrinterColumn, ...] = ()
    storage: GroupResource | None = None
    """Stored as this other resource (converted by ``to_storage``/``from_storage``)."""
    to_storage: Callable[[dict[str, Any]], dict[str, Any]] | None = field(default=None, compare=False)
    from_storage: Callable[[dict[str, Any]], dict[str, Any]] | None = field(default=None, compare=False)
    field_aliases: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Field selector paths of this API, as the stored object's paths they select on."""

    @property
    def group_version(self) -> str:
        """``v1`` for the core group, ``<group>/<version>`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> GroupResource:
        """The storage identity shared by every version (and by a resource stored as another)."""
        return self.storage or GroupResource(group=self.group, resource=self.resource)

    def stored_form(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Return an object written through this resource as it is stored."""
        return self.to_storage(obj) if self.to_storage is not None else obj

    def present(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Return the stored object as served at this version (a shallow copy when it differs)."""
        if self.from_storage is not None:
            return self.from_storage(obj)
        if obj.get("apiVersion") == self.group_version and obj.get("kind") == self.kind:
            return obj
        return {"apiVersion": self.group_version, "kind": self.kind,
                **{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}}


def _core(resource: str, singular: str, kind: str, **kwargs: Any) -> ResourceInfo:
    return ResourceInfo(
        group="", version="v1", resource=resource, singular=singular, kind=kind,
        list_kind=f"{kind}List", **kwargs,
    )


def _grouped(group: str, version: str, resource: str, singular: str, kind: str, **kwargs: Any) -> ResourceInfo:
    return ResourceInfo(
        group=group, version=version, resource=resource, singular=singular, kind=kind,
        list_kind=f"{kind}List", **kwargs,
    )


_POD_FIELDS = (
    "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
    "status.phase", "status.podIP", "status.nominatedNodeName",
)
_EVENT_FIELDS = (
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
    "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
    "reason", "reportingComponent", "source", "type",
)


def builtin_resources() -> tuple[ResourceInfo, ...]:
    """Return the built-in resources every double serves."""
    return (
        _core("namespaces", "namespace", "Namespace", namespaced=False, short_names=("ns",),
              verbs=_NAMESPACE_VERBS, has_status=True, field_selectors=("status.phase",)),
        _core("services", "service", "Service", namespaced=True, short_names=("svc",),
              categories=("all",), has_status=True),
        _core("pods", "pod", "Pod", namespaced=True, short_names=("po",), categories=("all",),
              has_status=True, field_selectors=_POD_FIELDS),
        _core("endpoints", "endpoints", "Endpoints", namespaced=True, short_names=("ep",),
              allow_create_on_update=True),
        _core("secrets", "secret", "Secret", namespaced=True, field_selectors=("type",)),
        _core("configmaps", "configmap", "ConfigMap", namespaced=True, short_names=("cm",)),
        _core("events", "event", "Event", namespaced=True, short_names=("ev",), field_selectors=_EVENT_FIELDS),
        _core("serviceaccounts", "serviceaccount", "ServiceAccount", namespaced=True, short_names=("sa",)),
        _grouped("events.k8s.io", "v1", "events", "event", "Event", namespaced=True, short_names=("ev",),
                 storage=GroupResource(group="", resource="events"), to_storage=eventsapi.to_core,
                 from_storage=eventsapi.from_core, field_aliases=eventsapi.FIELD_ALIASES,
                 field_selectors=eventsapi.SELECTABLE_FIELDS),
        _grouped("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", namespaced=True),
        _grouped("coordination.k8s.io", "v1", "leases", "lease", "Lease", namespaced=True),
        _grouped("apps", "v1", "deployments", "deployment", "Deployment", namespaced=True,
                 short_names=("deploy",), categories=("all",), has_status=True, tracks_generation=True),
        _grouped("apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
                 "CustomResourceDefinition", namespaced=False, short_names=("crd", "crds"),
                 categories=("api-extensions",), has_status=True, tracks_generation=True),
        _grouped("authentication.k8s.io", "v1", "tokenreviews", "tokenreview", "TokenReview",
                 namespaced=False, verbs=CREATE_ONLY_VERBS),
        _grouped("authorization.k8s.io", "v1", "subjectaccessreviews", "subjectaccessreview",
                 "SubjectAccessReview", namespaced=False, verbs=CREATE_ONLY_VERBS),
        _grouped("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", namespaced=True),
        _grouped("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", namespaced=True),
        _grouped("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole",
                 namespaced=False),
        _grouped("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
                 "ClusterRoleBinding", namespaced=False),
    )


class Registry:
    """The mutable set of served resources: the built-ins plus one entry per CRD version.

    Lookups are by (group, version, plural); discovery reads :meth:`served` and
    :meth:`group_versions`. Registering a CRD again replaces its previous versions.
    """

    def __init__(self, builtins: tuple[ResourceInfo, ...] | None = None) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceInfo] = {}
        self._by_crd: dict[str, tuple[ResourceInfo, ...]] = {}
        for info in builtins if builtins is not None else builtin_resources():
            self._by_gvr[(info.group, info.version, info.resource)] = info

    def lookup(self, *, group: str, version: str, resource: str) -> ResourceInfo | None:
        """Return the resource served at this group/version/plural, or None."""
        return self._by_gvr.get((group, version, resource))

    def lookup_kind(self, *, api_version: str, kind: str) -> ResourceInfo | None:
        """Return the resource whose objects have this apiVersion and kind, or None."""
        group, _, version = api_version.rpartition("/")
        for info in self._by_gvr.values():
            if info.group == group and info.version == version and info.kind == kind:
                return info
        return None

    def versions_of(self, group_resource: GroupResource) -> tuple[ResourceInfo, ...]:
        """Return every served version of one group/resource."""
        return tuple(
            info for info in self._by_gvr.values()
            if info.group == group_resource.group and info.resource == group_resource.resource
        )

    def register_crd(self, crd_name: str, infos: tuple[ResourceInfo, ...]) -> None:
        """Serve the versions of one CRD, replacing what it served before."""
        self.unregister_crd(crd_name)
        for info in infos:
            self._by_gvr[(info.group, info.version, info.resource)] = info
        self._by_crd[crd_name] = infos

    def unregister_crd(self, crd_name: str) -> tuple[ResourceInfo, ...]:
        """Stop serving one CRD's versions and return them."""
        removed = self._by_crd.pop(crd_name, ())
        for info in removed:
            self._by_gvr.pop((info.group, info.version, info.resource), None)
        return removed

    def served(self) -> Iterator[ResourceInfo]:
        """Yield every served resource, built-ins first, in registration order."""
        yield from self._by_gvr.values()

    def group_versions(self) -> dict[str, list[str]]:
        """Return group -> served versions (preferred first) in registration order."""
        groups: dict[str, list[str]] = {}
        for info in self._by_gvr.values():
            versions = groups.setdefault(info.group, [])
            if info.version not in versions:
                versions.append(info.version)
        for group, versions in groups.items():
            groups[group] = sorted(versions, key=_version_priority)
        return groups


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key giving Kubernetes version priority: GA > beta > alpha, higher numbers first."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if match is None:
        return (3, 0, 0, version)
    major = int(match.group(1))
    stability = {"alpha": 2, "beta": 1, None: 0}[match.group(2)]
    minor = int(match.group(3) or 0)
    return (stability, -major, -minor, version)
