"""The Collector against a real Prometheus 2.42: raw samples exactly, and the series that went away.

Raw samples are read from the shared data set (whose label values hold quotes,
backslashes, spaces and non-ASCII text, so the scanner meets real escapes). Vanished
series need series that stop while others with the same labels but another name go on,
so that test loads a small data set of its own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from realservers import LoadedPrometheus, ServerProcess
from realservers.backfill import create_blocks
from realservers.prometheus import infrastructure_prometheus

from mtproxy.api import rules_for
from mtproxy.remotewrite.collect import Collector
from mtproxy.remotewrite.scan import decode_labels

pytestmark = pytest.mark.slow

LOOKBACK_MS = 360_000


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
        yield client


@pytest.mark.parametrize("namespace", ["team-a", "team-b", "team-c"])
async def test_raw_samples_are_every_sample_of_the_window_with_its_exact_labels(
    infra_prometheus_with_data: LoadedPrometheus, http: httpx.AsyncClient, namespace: str
) -> None:
    data = infra_prometheus_with_data.data
    collector = Collector(http, source_urls=lambda: [infra_prometheus_with_data.server.url])
    (rule,) = rules_for([".+"], label_selectors={}, isolation_namespace=namespace)
    start_ms, end_ms = data.end_ms - 10 * data.step_ms, data.end_ms - data.step_ms
    read = {
        tuple(sorted(decode_labels(identity).items())): samples
        for identity, samples in await collector.raw_samples(rule, start_ms=start_ms, end_ms=end_ms)
    }
    expected = {
        series.labels: tuple((s.timestamp_ms, s.value) for s in series.samples if start_ms < s.timestamp_ms <= end_ms)
        for series in data.series
        if series.namespace == namespace
    }
    assert read == {labels: samples for labels, samples in expected.items() if samples}
    assert any("\\" in value or '"' in value for labels in read for _, value in labels), "no escapes met"


@pytest.fixture(scope="module")
def stopping_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    """``gone_total`` and ``other`` stop at t0 + 30 s; ``kept_total``, labelled as ``gone_total``, goes on."""
    workdir = tmp_path_factory.mktemp("stopping-source")
    t0 = (int(time.time()) // 3600 - 3) * 3600
    lines = []
    for name, labels, last_s in [
        ("gone_total", 'job="a",k="1"', 30),
        ("kept_total", 'job="a",k="1"', 900),
        ("other", 'job="b"', 30),
    ]:
        lines.append(f"# TYPE {name.removesuffix('_total')} {'counter' if name.endswith('_total') else 'gauge'}")
        lines.extend(f"{name}{{{labels}}} {step} {t0 + step}" for step in range(0, last_s + 1, 15))
    openmetrics = workdir / "source.om"
    openmetrics.write_text("\n".join(lines) + "\n# EOF\n")
    create_blocks(openmetrics, workdir / "data")
    server = infrastructure_prometheus(workdir, storage_dir=workdir / "data", retention="3650d")
    server.start()
    yield server, t0 * 1000
    server.stop()


@pytest.mark.parametrize(
    ("after_last_s", "expected"),
    [
        pytest.param(120, set(), id="still-live-within-the-lookback-delta"),
        pytest.param(330, {"gone_total", "other"}, id="not-live-any-more"),
        pytest.param(400, set(), id="silent-for-longer-than-the-lookback"),
    ],
)
async def test_vanished_series_are_those_not_live_that_had_a_sample_within_the_lookback(
    stopping_source: tuple[ServerProcess, int], http: httpx.AsyncClient, after_last_s: int, expected: set[str]
) -> None:
    server, t0_ms = stopping_source
    collector = Collector(http, source_urls=lambda: [server.url])
    (rule,) = rules_for([".+"], label_selectors={}, isolation_namespace=None)
    at_ms = t0_ms + (30 + after_last_s) * 1000
    vanished = await collector.vanished_series(rule, at_ms=at_ms, lookback_ms=LOOKBACK_MS)
    assert {sample.labels["__name__"] for sample in vanished} == expected
    for sample in vanished:  # the source's own labels: the helper label is gone
        assert (
            sample.labels
            == {
                "gone_total": {"__name__": "gone_total", "job": "a", "k": "1"},
                "other": {"__name__": "other", "job": "b"},
            }[sample.labels["__name__"]]
        )


async def test_a_vanished_series_is_found_though_another_name_with_its_labels_is_live(
    stopping_source: tuple[ServerProcess, int], http: httpx.AsyncClient
) -> None:
    """``unless`` matches on every label but ``__name__``: without the copied name, ``kept_total`` would hide it."""
    server, t0_ms = stopping_source
    collector = Collector(http, source_urls=lambda: [server.url])
    (rule,) = rules_for(["(gone|kept)_total"], label_selectors={"job": "a"}, isolation_namespace=None)
    vanished = await collector.vanished_series(rule, at_ms=t0_ms + 360_000, lookback_ms=LOOKBACK_MS)
    assert [sample.labels["__name__"] for sample in vanished] == ["gone_total"]
