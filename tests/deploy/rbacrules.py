"""What a recorded API call needs from RBAC, and what rendered RBAC manifests grant.

:func:`access_of` turns one request (method, path, query) into the attributes RBAC's
authorizer sees: API group, resource, subresource, verb and namespace (as the API server's
``RequestInfoFactory`` does). :func:`grants_of` expands the rules that rendered manifests bind
to one service account into single (group, resource, verb, where) grants: ``where`` is
``None`` for a ClusterRole bound cluster-wide, else the namespace of the binding.
:func:`missing` and :func:`unused` compare the two:

- *missing*: a call no grant allows;
- *unused*: a grant no call needed. A cluster-wide grant counts as needed only by a call
  that a Role in the service's own namespace could not have allowed (cluster-scoped, all
  namespaces, or another namespace), so a rule that belongs in the Role is reported when it
  sits in the ClusterRole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Access",
    "Grant",
    "NonResource",
    "Scope",
    "access_of",
    "grants_of",
    "missing",
    "scope_of",
    "table",
    "unused",
]

_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True, slots=True, order=True)
class Access:
    """One resource request as RBAC sees it."""

    group: str
    resource: str
    subresource: str
    verb: str
    namespace: str | None
    """None: a cluster-scoped resource, or every namespace."""

    @property
    def rbac_resource(self) -> str:
        """``resource`` or ``resource/subresource``, as RBAC rules spell it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclass(frozen=True, slots=True, order=True)
class NonResource:
    """A request outside the resource API (``/version``, ``/apis``, …)."""

    path: str
    verb: str


def access_of(
    method: str, path: str, query: Mapping[str, str] | Iterable[tuple[str, str]] = ()
) -> Access | NonResource:
    """The RBAC attributes of one request."""
    params = dict(query.items() if isinstance(query, Mapping) else query)
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return NonResource("/" + "/".join(parts), method.lower())
    if not rest:
        return NonResource("/" + "/".join(parts), method.lower())
    namespace: str | None = None
    # /namespaces/{ns}/{resource}/…; /namespaces/{name}[/status|/finalize] is the namespace itself
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) >= 2:
        namespace = rest[1]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:])
    if method == "GET":
        watching = params.get("watch") in ("true", "1")
        verb = "get" if name is not None else "watch" if watching else "list"
    elif method == "DELETE":
        verb = "delete" if name is not None else "deletecollection"
    else:
        verb = _VERBS.get(method, method.lower())
    return Access(group, resource, subresource, verb, namespace)


Scope = str
"""``cluster`` (cluster-scoped or every namespace), ``own namespace`` or ``tenant namespaces``."""


def scope_of(access: Access, own_namespace: str) -> Scope:
    if access.namespace is None:
        return "cluster"
    return "own namespace" if access.namespace == own_namespace else "tenant namespaces"


def table(accesses: Iterable[Access], own_namespace: str) -> list[tuple[str, str, str, str, Scope]]:
    """(group, resource, subresource, verb, scope) rows, sorted, each once."""
    return sorted({(a.group or '""', a.resource, a.subresource, a.verb, scope_of(a, own_namespace))
                   for a in accesses})


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """One verb on one resource, from one rule of one role."""

    group: str
    resource: str
    """``resource`` or ``resource/subresource``."""
    verb: str
    where: str | None
    """None: everywhere (ClusterRole + ClusterRoleBinding); else that namespace only."""
    role: str

    def allows(self, access: Access) -> bool:
        return (
            self.group == access.group
            and self.resource == access.rbac_resource
            and self.verb == access.verb
            and (self.where is None or self.where == access.namespace)
        )


def _binds(binding: Mapping[str, Any], account: tuple[str, str]) -> bool:
    return any(
        s.get("kind") == "ServiceAccount" and (s.get("namespace"), s.get("name")) == account
        for s in binding.get("subjects") or ()
    )


def grants_of(documents: Sequence[Mapping[str, Any]], account: tuple[str, str]) -> list[Grant]:
    """Every grant the documents bind to service account ``(namespace, name)``.

    Raises:
        ValueError: a rule uses a wildcard, resourceNames or nonResourceURLs (this
            expansion would not be exact, and the service needs none of them).
    """
    roles = {(d["kind"], (d["metadata"].get("namespace") if d["kind"] == "Role" else None), d["metadata"]["name"]): d
             for d in documents if d.get("kind") in ("Role", "ClusterRole")}
    out: list[Grant] = []
    for binding in documents:
        if binding.get("kind") not in ("RoleBinding", "ClusterRoleBinding") or not _binds(binding, account):
            continue
        where = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        ref = binding["roleRef"]
        role = roles.get((ref["kind"], where if ref["kind"] == "Role" else None, ref["name"]))
        if role is None:
            raise ValueError(f"{binding['kind']} {binding['metadata']['name']} refers to a missing {ref['kind']} "
                             f"{ref['name']}")
        for rule in role.get("rules") or ():
            if rule.get("resourceNames") or rule.get("nonResourceURLs"):
                raise ValueError(f"{role['kind']} {role['metadata']['name']}: resourceNames/nonResourceURLs in {rule}")
            for group in rule.get("apiGroups") or ():
                for resource in rule.get("resources") or ():
                    for verb in rule.get("verbs") or ():
                        if "*" in (group, resource, verb):
                            raise ValueError(f"{role['kind']} {role['metadata']['name']}: wildcard in {rule}")
                        out.append(Grant(group, resource, verb, where, f"{role['kind']}/{role['metadata']['name']}"))
    return out


def missing(accesses: Iterable[Access], grants: Sequence[Grant]) -> list[Access]:
    """The accesses no grant allows (sorted, each once)."""
    return sorted({a for a in accesses if not any(g.allows(a) for g in grants)})


def unused(grants: Iterable[Grant], accesses: Iterable[Access], own_namespace: str) -> list[Grant]:
    """The grants no access needed (sorted, each once); see the module docstring."""
    seen = list(accesses)
    out = set()
    for grant in grants:
        candidates = [a for a in seen if grant.allows(a)]
        if grant.where is None:
            candidates = [a for a in candidates if a.namespace != own_namespace]
        if not candidates:
            out.add(grant)
    return sorted(out)
