"""The files source feeds the MetricAccess controller: loads the directory, reloads on change, stops promptly."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import trio

from mtproxy.api import Config
from mtproxy.proxy import AccessPolicy
from mtproxy.reconcilers.accesscontroller import MetricAccessController
from mtproxy.reconcilers.filesource import FilesSource

ACCESS = """
apiVersion: observability.ethos.io/v1alpha1
kind: MetricAccess
metadata: {name: app, namespace: team-a}
spec: {source: team-a, metrics: [up], metricIsolation: true}
"""


async def test_loads_reloads_and_stops_without_waiting_for_the_watcher_timeout(tmp_path: Path) -> None:
    published: list[Mapping[str, AccessPolicy]] = []
    source = FilesSource(tmp_path)
    controller = MetricAccessController(source, config=Config(), publish_policies=published.append)
    (tmp_path / "a.yaml").write_text(ACCESS, encoding="utf-8")
    async with trio.open_nursery() as nursery:
        await nursery.start(source.run)
        await nursery.start(controller.run)
        assert set(published[-1]) == {"team-a"}

        (tmp_path / "b.yaml").write_text(ACCESS.replace("team-a", "team-b"), encoding="utf-8")
        with trio.fail_after(10):
            while set(published[-1]) != {"team-a", "team-b"}:
                await trio.sleep(0.05)

        (tmp_path / "a.yaml").write_text(ACCESS.replace("[up]", "['up{job=\"(\"}', 'foo((']"), encoding="utf-8")
        with trio.fail_after(10):
            while set(published[-1]) != {"team-b"}:
                await trio.sleep(0.05)
        verdict = controller.verdict("team-a/app")
        assert verdict is not None and not verdict.in_force
        assert any(problem.startswith("spec.metrics[1]") for problem in verdict.problems)

        await trio.sleep(0.3)  # the watcher is now waiting in its worker thread
        started = time.monotonic()
        nursery.cancel_scope.cancel()
    stopped_after_s = time.monotonic() - started
    # awatch's own timeout is 5 s; with the stop event the worker thread returns within its 50 ms step
    assert stopped_after_s < 2.0, stopped_after_s


def test_documents_without_a_name_or_namespace_or_twice_are_reported(tmp_path: Path) -> None:
    source = FilesSource(tmp_path)
    (tmp_path / "a.yaml").write_text(
        ACCESS + "---\n" + ACCESS + "---\n" + ACCESS.replace("namespace: team-a", "namespace: ''"), encoding="utf-8"
    )
    (tmp_path / "b.yaml").write_text("{not yaml", encoding="utf-8")
    source.reload()
    assert list(source.store.namespaces()) == ["team-a"]
    problems = "\n".join(source.last_problems)
    assert "defined twice" in problems and "metadata.name and metadata.namespace are required" in problems
    assert "b.yaml: cannot read" in problems
