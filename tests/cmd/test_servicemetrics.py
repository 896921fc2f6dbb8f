"""``/metrics`` for forwarding, read from the runner's snapshots: equal to what the receivers got."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx
import pytest
import snappy
import trio
import trio.testing
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mtproxy.api import Rule, rules_for
from mtproxy.cmd.servicemetrics import ServiceCollector, version
from mtproxy.remotewrite import prompb
from mtproxy.remotewrite.collect import Collector
from mtproxy.remotewrite.job import Destination, DestinationKind, RemoteWriteJob
from mtproxy.remotewrite.runner import JobRunner
from mtproxy.remotewrite.samples import InstantSample
from mtproxy.remotewrite.scan import RawSeries
from mtproxy.remotewrite.senders import RemoteWriteSender
from mtproxy.remotewrite.state import MemoryStateStore

EPOCH_MS = 1_700_000_000_000


@pytest.fixture
def jump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0.02)


class _Source(Collector):
    async def raw_samples(self, rule: Rule, *, start_ms: int, end_ms: int) -> list[RawSeries]:
        await trio.sleep(0)
        first = (start_ms // 1000 + 1) * 1000
        samples = tuple((t, 1.0) for t in range(first, end_ms + 1, 1000))
        return [(b'"__name__":"up","namespace":"team-a"', samples)] if samples else []

    async def vanished_series(self, rule: Rule, *, at_ms: int, lookback_ms: int) -> tuple[InstantSample, ...]:
        await trio.sleep(0)
        return ()


async def test_forwarding_series_match_what_the_receivers_acknowledged(jump_clock: trio.testing.MockClock) -> None:
    received: dict[str, int] = defaultdict(int)
    refuse = {"http://refusing.test/api/v1/write"}

    def receive(request: httpx.Request) -> httpx.Response:
        if str(request.url) in refuse:
            return httpx.Response(400, text="out of order")
        decoded = prompb.WriteRequest.FromString(snappy.decompress(request.content))
        received[str(request.url)] += sum(len(ts.samples) for ts in decoded.timeseries)
        return httpx.Response(204)

    job = RemoteWriteJob(
        namespace="team-a",
        name="forward",
        rules=rules_for(["up"], label_selectors={}, isolation_namespace="team-a"),
        interval_ms=10_000,
        destinations=tuple(
            Destination(kind=DestinationKind.REMOTE_WRITE, url=url, name=url)
            for url in ("http://ok.test/api/v1/write", "http://refusing.test/api/v1/write")
        ),
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(receive)) as http:
        runner = JobRunner(
            collector=_Source(http, source_urls=list),
            senders=lambda j, i: RemoteWriteSender(http, j.destinations[i], namespace=j.namespace, secrets=None),
            state_store=MemoryStateStore(),
            safety_delay_ms=0,
            wall_clock_ms=lambda: EPOCH_MS + int(trio.current_time() * 1000),
        )
        runner.set_jobs({job.key: job})
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            await trio.sleep(35)
            registry = CollectorRegistry()
            registry.register(
                ServiceCollector(
                    lambda: {"runner": runner.statistics()},
                    runner=runner,
                    wall_clock_s=lambda: (EPOCH_MS + int(trio.current_time() * 1000)) / 1000,
                )
            )
            text = generate_latest(registry).decode()
            nursery.cancel_scope.cancel()

    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def value(metric: str, **labels: Any) -> float:
        return values[(metric, tuple(sorted(labels.items())))]

    ok = {"namespace": "team-a", "name": "forward", "destination": "http://ok.test/api/v1/write"}
    bad = {**ok, "destination": "http://refusing.test/api/v1/write"}
    assert received["http://ok.test/api/v1/write"] > 0
    assert value("prometheus_proxy_remote_write_samples_total", **ok) == received["http://ok.test/api/v1/write"]
    assert value("prometheus_proxy_remote_write_samples_total", **bad) == 0
    assert value("prometheus_proxy_remote_write_samples_failed_total", **bad, reason="http_400") > 0
    assert value("prometheus_proxy_remote_write_jobs", state="failing") == 1
    lag = value("prometheus_proxy_remote_write_lag_seconds", **ok)
    assert 0 <= lag <= 10
    assert value("prometheus_proxy_remote_write_highest_sent_timestamp_seconds", **ok) > EPOCH_MS / 1000
    assert value("prometheus_proxy_remote_write_cycle_duration_seconds_count") >= 6
    assert value("prometheus_proxy_build_info", version=version()) == 1


def test_version_flag_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from mtproxy.cmd.main import main

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"mtproxy {version()}"
    assert version() != "unknown"
