"""A Kubernetes resource type (group, version, plural) and the URL paths of its objects."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["Resource"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    """One resource type; ``group`` is empty for the core API."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """``group/version``, or just ``version`` for the core API."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, *, subresource: str | None = None) -> str:
        """The URL path of the collection (all or one namespace), an object, or its subresource.

        Raises:
            ValueError: a namespace for a cluster-scoped resource, or a subresource without a name.
        """
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace and not self.namespaced:
            raise ValueError(f"namespace: {self.plural} is cluster-scoped")
        parts = [prefix]
        if namespace:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
        if subresource is not None:
            if name is None:
                raise ValueError("subresource: needs an object name")
            parts.append(subresource)
        return "/".join(parts)
