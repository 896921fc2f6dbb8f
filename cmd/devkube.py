"""The Kubernetes API server of ``mtproxy dev``: the embedded double, or a real one, made ready to use.

``--kube=double`` (the default) serves :mod:`mtproxy.apidouble` in this process;
``--kube=real`` runs etcd and kube-apiserver built by ``make testbin``
(:mod:`mtproxy.cmd.devrealkube`). Either way a kubeconfig is written to ``.dev/kubeconfig``
once the server answers (kubectl and the service both use it), and removed when the server
stops, since it names a server that no longer exists. :func:`prepare_cluster` then registers
the MetricAccess CRD from the API schemas (the same document ``mtproxy manifests`` writes),
waits until the API serves it, and creates the namespaces the service itself needs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from mtproxy.api import GROUP, VERSION, metricaccess_crd
from mtproxy.apidouble import ApiDouble, serve, write_kubeconfig
from mtproxy.controller import AlreadyExists, APIError, KubeClient, Resource, TransportError

__all__ = ["CRDS", "NAMESPACES", "DevCluster", "find_kubectl", "prepare_cluster", "run_double", "testbin_dir"]

logger = logging.getLogger(__name__)

CRDS = Resource(group="apiextensions.k8s.io", version="v1", plural="customresourcedefinitions", namespaced=False)
NAMESPACES = Resource(group="", version="v1", plural="namespaces", namespaced=False)
_SERVED_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DevCluster:
    """A running API server and the kubeconfig that reaches it."""

    kind: str
    """``double`` or ``real``."""
    url: str
    kubeconfig: Path


def testbin_dir() -> Path:
    """Where ``make testbin`` caches what it builds (``$MTPROXY_TESTBIN`` overrides it)."""
    override = os.environ.get("MTPROXY_TESTBIN")
    if override:
        return Path(override)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mtproxy" / "testbin"


def find_kubectl() -> str | None:
    """``kubectl`` on PATH, else the one ``make testbin`` built (newest version), else None."""
    found = shutil.which("kubectl")
    if found is not None:
        return "kubectl"
    built = sorted(testbin_dir().glob("kubernetes-*/kubectl"))
    return str(built[-1]) if built else None


async def run_double(
    port: int, kubeconfig: Path, *, task_status: trio.TaskStatus[DevCluster] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the API double on loopback ``port`` until cancelled; report it once it listens."""
    app = ApiDouble()
    try:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(serve, app, host="127.0.0.1", port=port))
            write_kubeconfig(kubeconfig, url, name="mtproxy-dev")
            task_status.started(DevCluster(kind="double", url=url, kubeconfig=kubeconfig))
    finally:
        with contextlib.suppress(FileNotFoundError):
            kubeconfig.unlink()


async def _wait_served(kube: KubeClient, group_version: str, plural: str) -> None:
    path = f"/apis/{group_version}"
    with trio.fail_after(_SERVED_TIMEOUT_S):
        while True:
            # Registration is asynchronous on a real API server (the CRD turns Established,
            # then discovery serves it): there is nothing to wait on but the answer itself.
            with contextlib.suppress(APIError, TransportError):
                answer = await kube.request("GET", path)
                if any(r.get("name") == plural for r in answer.get("resources") or []):
                    return
            await trio.sleep(0.1)


async def prepare_cluster(kube: KubeClient, *, namespaces: Iterable[str]) -> None:
    """Register (or update) the MetricAccess CRD, wait until it is served, create ``namespaces``.

    Raises:
        trio.TooSlowError: the CRD was not served within 30 s.
    """
    crd = metricaccess_crd()
    try:
        await kube.create(CRDS, None, crd)
    except AlreadyExists:
        current = await kube.get(CRDS, None, crd["metadata"]["name"])
        body = {**crd, "metadata": {**crd["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        await kube.update(CRDS, None, body)
    await _wait_served(kube, f"{GROUP}/{VERSION}", crd["spec"]["names"]["plural"])
    for name in namespaces:
        with contextlib.suppress(AlreadyExists):
            await kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    logger.info("dev cluster prepared", extra={"crd": crd["metadata"]["name"], "namespaces": list(namespaces)})
