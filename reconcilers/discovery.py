"""Infrastructure Prometheus backends discovered from Kubernetes objects.

``desired_targets`` is pure: objects of the configured resource types → backend URLs, in
the original's forms: a Service is ``http://<svc>.<ns>.svc.cluster.local:<port>``, a
running Pod with an IP is ``http://<podIP>:<port>``, every ready address of Endpoints or
an EndpointSlice is ``http://<ip>:<port>``. Label selectors (equality) are applied by the
API server, to every type (the original ignored them for Endpoints); annotation selectors
are applied here. The port is matched by name or number; an object without a matching
port is skipped rather than guessed at (the original fell back to 9090). Duplicates
across types collapse to one target.

``KubernetesDiscovery`` runs one informer per (type, namespace); every change enqueues
the one key of a ``discovery`` controller (the ``controller`` package's work queue, so a
burst of changes collapses into one reconcile), which republishes the whole target
list; the pool keeps health marks of targets that stay, so a refresh never resets them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import trio

from mtproxy.api import KubernetesDiscoveryConfig
from mtproxy.controller import Change, Controller, Informer, KubeClient, Request, Resource, Result

__all__ = ["RESOURCES", "KubernetesDiscovery", "desired_targets"]

logger = logging.getLogger(__name__)

RESOURCES: dict[str, Resource] = {
    "Service": Resource(group="", version="v1", plural="services"),
    "Pod": Resource(group="", version="v1", plural="pods"),
    "Endpoints": Resource(group="", version="v1", plural="endpoints"),
    "EndpointSlice": Resource(group="discovery.k8s.io", version="v1", plural="endpointslices"),
}


def _annotations_match(obj: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return all(annotations.get(k) == v for k, v in wanted.items())


def _port_matches(port: Mapping[str, Any], wanted: str) -> bool:
    return str(port.get("name", "")) == wanted or str(port.get("port", port.get("containerPort", ""))) == wanted


def _service_targets(svc: Mapping[str, Any], wanted: str) -> list[str]:
    meta = svc.get("metadata") or {}
    for port in (svc.get("spec") or {}).get("ports") or []:
        if _port_matches(port, wanted):
            return [f"http://{meta.get('name')}.{meta.get('namespace')}.svc.cluster.local:{port.get('port')}"]
    return []


def _pod_targets(pod: Mapping[str, Any], wanted: str) -> list[str]:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or not status.get("podIP"):
        return []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if _port_matches(port, wanted):
                return [f"http://{status['podIP']}:{port.get('containerPort')}"]
    if wanted.isdigit():
        return [f"http://{status['podIP']}:{wanted}"]
    return []


def _endpoints_targets(endpoints: Mapping[str, Any], wanted: str) -> list[str]:
    out: list[str] = []
    for subset in endpoints.get("subsets") or []:
        port = next((p for p in subset.get("ports") or [] if _port_matches(p, wanted)), None)
        if port is None:
            continue
        out.extend(f"http://{a.get('ip')}:{port.get('port')}" for a in subset.get("addresses") or [] if a.get("ip"))
    return out


def _slice_targets(endpoint_slice: Mapping[str, Any], wanted: str) -> list[str]:
    port = next((p for p in endpoint_slice.get("ports") or [] if _port_matches(p, wanted)), None)
    if port is None:
        return []
    out: list[str] = []
    for endpoint in endpoint_slice.get("endpoints") or []:
        if (endpoint.get("conditions") or {}).get("ready") is False:
            continue
        out.extend(f"http://{address}:{port.get('port')}" for address in endpoint.get("addresses") or [])
    return out


_EXTRACT: dict[str, Callable[[Mapping[str, Any], str], list[str]]] = {
    "Service": _service_targets,
    "Pod": _pod_targets,
    "Endpoints": _endpoints_targets,
    "EndpointSlice": _slice_targets,
}


def desired_targets(
    objects: Mapping[str, Iterable[Mapping[str, Any]]], config: KubernetesDiscoveryConfig
) -> tuple[str, ...]:
    """Backend URLs from objects by resource type (sorted, de-duplicated)."""
    targets: set[str] = set()
    for kind, items in objects.items():
        extract = _EXTRACT.get(kind)
        if extract is None:
            continue
        for obj in items:
            if _annotations_match(obj, config.annotation_selectors):
                targets.update(extract(obj, config.port))
    return tuple(sorted(targets))


class KubernetesDiscovery:
    """Informers for the configured types and namespaces, publishing target lists."""

    def __init__(
        self, client: KubeClient, config: KubernetesDiscoveryConfig, *, publish: Callable[[tuple[str, ...]], None]
    ) -> None:
        selector = ",".join(f"{k}={v}" for k, v in sorted(config.label_selectors.items())) or None
        namespaces: list[str | None] = list(config.namespaces) or [None]
        self._config = config
        self._publish = publish
        self._informers: list[tuple[str, Informer]] = []
        for kind in config.resource_types:
            for namespace in namespaces:
                informer = Informer(client, RESOURCES[kind], namespace=namespace, label_selector=selector)
                informer.add_handler(self._on_change)
                self._informers.append((kind, informer))
        self.controller = Controller("discovery", self._reconcile, workers=1)
        self.targets: tuple[str, ...] = ()

    def informers(self) -> list[Informer]:
        """The informers the manager runs."""
        return [informer for _, informer in self._informers]

    def _on_change(self, change: Change) -> None:
        self.controller.enqueue("", "targets")

    async def _reconcile(self, request: Request) -> Result:
        self._recompute()
        await trio.lowlevel.checkpoint()
        return Result()

    def _recompute(self) -> None:
        objects: dict[str, list[Mapping[str, Any]]] = {}
        for kind, informer in self._informers:
            objects.setdefault(kind, []).extend(obj for _, _, obj in informer.store.items())
        targets = desired_targets(objects, self._config)
        if targets != self.targets:
            logger.info("backends discovered", extra={"targets": len(targets)})
        self.targets = targets
        self._publish(targets)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish once the informers have synced, then after every burst of changes, until cancelled."""
        for _, informer in self._informers:
            await informer.wait_synced()
        self._recompute()
        await self.controller.run(task_status=task_status)
