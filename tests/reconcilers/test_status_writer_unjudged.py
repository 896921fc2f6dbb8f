"""The status writer and objects without a verdict (another namespace's, or not judged yet).

With several ``tenants.watch_namespaces`` the informer lists every namespace, so the store
holds objects the MetricAccess controller never judges. Found by the Kubernetes-mode
acceptance suite (``tests/e2e_kube``) on a shared API server.
"""

from __future__ import annotations

from typing import Any

import trio

from mtproxy.api import GROUP, PLURAL, VERSION
from mtproxy.controller import Resource, Store
from mtproxy.reconcilers.statuswriter import StatusWriter

METRICACCESSES = Resource(group=GROUP, version=VERSION, plural=PLURAL)


def _object(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MetricAccess",
        "metadata": {"name": name, "namespace": namespace, "generation": 1, "uid": f"uid-{name}"},
        "spec": {"source": namespace, "metrics": ["up"]},
    }


async def test_object_without_a_verdict_is_visited_once_not_every_second_for_ever(
    autojump_clock: trio.abc.Clock,
) -> None:
    store: Store[dict[str, Any]] = Store()
    store.put("not-watched", "other-team", _object("not-watched", "other-team"))
    writer = StatusWriter(
        None,  # type: ignore[arg-type]  # never called: nothing is written without a verdict
        METRICACCESSES,
        store=store,
        verdict_of=lambda key: None,
        job_status_of=lambda key: None,
        forwarding_enabled=True,
        status_interval_s=30.0,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await trio.sleep(60)
        statistics = writer.statistics()
        nursery.cancel_scope.cancel()
    assert statistics.controller is not None
    assert statistics.controller.reconciles == 1, statistics.controller
    assert statistics.writes == 0
