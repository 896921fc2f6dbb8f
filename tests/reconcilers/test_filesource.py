"""The files source: loads the tenants directory, reloads on change, and stops promptly."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import trio

from mtproxy.api import Config
from mtproxy.proxy import AccessPolicy
from mtproxy.reconcilers.filesource import FilesSource

ACCESS = """
apiVersion: observability.ethos.io/v1alpha1
kind: MetricAccess
metadata: {name: app, namespace: team-a}
spec: {source: team-a, metrics: [up]}
"""


async def test_loads_reloads_and_stops_without_waiting_for_the_watcher_timeout(tmp_path: Path) -> None:
    published: list[Mapping[str, AccessPolicy]] = []
    source = FilesSource(tmp_path, config=Config(), publish_policies=published.append)
    (tmp_path / "a.yaml").write_text(ACCESS, encoding="utf-8")
    async with trio.open_nursery() as nursery:
        await nursery.start(source.run)
        assert set(published[-1]) == {"team-a"}

        (tmp_path / "b.yaml").write_text(ACCESS.replace("team-a", "team-b"), encoding="utf-8")
        with trio.fail_after(10):
            while set(published[-1]) != {"team-a", "team-b"}:
                await trio.sleep(0.05)

        await trio.sleep(0.3)  # the watcher is now waiting in its worker thread
        started = time.monotonic()
        nursery.cancel_scope.cancel()
    stopped_after_s = time.monotonic() - started
    # awatch's own timeout is 5 s; with the stop event the worker thread returns within its 50 ms step
    assert stopped_after_s < 2.0, stopped_after_s
