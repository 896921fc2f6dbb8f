"""RemoteWritePipeline's staleness markers, from the series the source says went away.

The source is a Collector whose answers each test sets; the receiver an
``httpx.MockTransport`` that decodes every request, so each test checks what was sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import snappy

from mtproxy.api import Rule, rules_for
from mtproxy.remotewrite import prompb
from mtproxy.remotewrite.collect import Collector
from mtproxy.remotewrite.encode import is_stale_marker
from mtproxy.remotewrite.job import Destination, DestinationKind, RemoteWriteJob
from mtproxy.remotewrite.pipeline import RemoteWritePipeline
from mtproxy.remotewrite.reads import JobReads
from mtproxy.remotewrite.samples import InstantSample
from mtproxy.remotewrite.scan import RawSeries
from mtproxy.remotewrite.senders import RemoteWriteSender
from mtproxy.remotewrite.state import JobState, MemoryStateStore, series_hash

LOOKBACK_MS = 360_000
A = {"__name__": "up", "pod": "a"}
B = {"__name__": "up", "pod": "b"}

Received = list[tuple[tuple[tuple[str, str], ...], list[tuple[int, float]]]]


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


class _Source(Collector):
    """A source holding the given samples, and naming the given series as gone."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        super().__init__(http, source_urls=list)
        self.samples: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
        self.gone: list[dict[str, str]] = []
        self.vanished_asked: list[tuple[int, int]] = []

    async def raw_samples(self, rule: Rule, *, start_ms: int, end_ms: int) -> list[RawSeries]:
        out: list[RawSeries] = []
        for key, samples in self.samples.items():
            window = tuple(s for s in samples if start_ms < s[0] <= end_ms)
            if window:
                out.append((json.dumps(dict(key), separators=(",", ":"))[1:-1].encode(), window))
        return out

    async def vanished_series(self, rule: Rule, *, at_ms: int, lookback_ms: int) -> tuple[InstantSample, ...]:
        self.vanished_asked.append((at_ms, lookback_ms))
        return tuple(InstantSample(labels=labels, timestamp_ms=0, value=0.0) for labels in self.gone)


@dataclass
class _Receiver:
    requests: list[Received] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        decoded = prompb.WriteRequest.FromString(snappy.decompress(request.content))
        self.requests.append(
            [
                (tuple((label.name, label.value) for label in ts.labels), [(s.timestamp, s.value) for s in ts.samples])
                for ts in decoded.timeseries
            ]
        )
        return httpx.Response(204)


@dataclass
class _Setup:
    source: _Source
    receiver: _Receiver
    pipeline: RemoteWritePipeline
    state: JobState


@pytest.fixture
async def setup() -> AsyncIterator[_Setup]:
    receiver = _Receiver()
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        destination = Destination(kind=DestinationKind.REMOTE_WRITE, url="http://tenant.test/write", name="tenant")
        job = RemoteWriteJob(
            namespace="team-a",
            name="job",
            rules=rules_for(["up"], label_selectors={}, isolation_namespace="team-a"),
            interval_ms=1000,
            destinations=(destination,),
        )
        source = _Source(http)
        state = JobState()
        pipeline = RemoteWritePipeline(
            JobReads(job, source, vanished_lookback_ms=LOOKBACK_MS),
            destination,
            sender=RemoteWriteSender(http, destination, namespace="team-a", secrets=None),
            state=state,
            store=MemoryStateStore(),
        )
        yield _Setup(source, receiver, pipeline, state)


def _markers(request: Received) -> list[tuple[tuple[str, str], ...]]:
    assert all(len(samples) == 1 and is_stale_marker(samples[0][1]) for _, samples in request)
    return [labels for labels, _ in request]


async def test_a_series_the_source_says_went_away_gets_one_marker_in_a_request_of_its_own(setup: _Setup) -> None:
    setup.source.samples = {_key(A): [(1000, 1.0)], _key(B): [(1000, 2.0)]}
    await setup.pipeline.cycle(1000, first_start_ms=0)
    assert len(setup.receiver.requests) == 1
    setup.source.samples[_key(B)].append((2000, 3.0))
    setup.source.gone = [A]
    await setup.pipeline.cycle(2000, first_start_ms=0)
    new_data, markers = setup.receiver.requests[1:]
    assert new_data == [(_key(B), [(2000, 3.0)])]
    assert _markers(markers) == [_key(A)]
    assert markers[0][1][0][0] == 2000
    assert series_hash(_key(A)) not in setup.state.marks["tenant"]
    # still named by the source for a while, but marked once only
    setup.source.samples[_key(B)].append((3000, 4.0))
    await setup.pipeline.cycle(3000, first_start_ms=0)
    assert setup.receiver.requests[3:] == [[(_key(B), [(3000, 4.0)])]]
    assert setup.pipeline.stale_markers_sent == 1


async def test_a_series_silent_for_longer_than_the_lookback_is_marked_from_its_mark(setup: _Setup) -> None:
    setup.source.samples = {_key(A): [(1000, 1.0)], _key(B): [(1000, 2.0), (200_000, 3.0), (400_000, 4.0)]}
    await setup.pipeline.cycle(1000, first_start_ms=0)
    await setup.pipeline.cycle(1000 + LOOKBACK_MS - 1, first_start_ms=0)
    assert setup.receiver.requests[1:] == [[(_key(B), [(200_000, 3.0)])]]  # A may still be live at the source
    await setup.pipeline.cycle(1000 + LOOKBACK_MS, first_start_ms=0)
    assert _markers(setup.receiver.requests[2]) == [_key(A)]
    assert setup.receiver.requests[2][0][1][0][0] == 1000 + LOOKBACK_MS
    assert setup.source.vanished_asked[-1] == (1000 + LOOKBACK_MS, LOOKBACK_MS)


async def test_the_source_is_not_asked_before_anything_was_delivered(setup: _Setup) -> None:
    await setup.pipeline.cycle(1000, first_start_ms=0)
    assert setup.source.vanished_asked == []
    assert setup.receiver.requests == []


async def test_live_series_get_no_marker(setup: _Setup) -> None:
    setup.source.samples = {_key(A): [(1000, 1.0)], _key(B): [(1000, 2.0)]}
    await setup.pipeline.cycle(1000, first_start_ms=0)
    await setup.pipeline.cycle(2000, first_start_ms=0)  # no new samples, nobody gone
    assert len(setup.receiver.requests) == 1
    assert setup.pipeline.stale_markers_sent == 0
