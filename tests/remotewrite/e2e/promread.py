"""Reading back what a Prometheus-API server holds, and comparing two of them sample by sample.

Raw samples come from an instant query of a range selector (``sel[W]`` at time T), the
query-API read that returns every stored sample with its exact timestamp (staleness
markers excluded, on both sides alike). :func:`compare_samples` then tells, per series,
which source samples the copy lacks, which it has that the source does not, and which it
holds with another value: an exact copy has none of the three.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "SampleDiff",
    "SeriesKey",
    "compare_samples",
    "instant_series",
    "metric_total",
    "newest_timestamp_s",
    "raw_samples",
]

SeriesKey = tuple[tuple[str, str], ...]
Samples = dict[SeriesKey, dict[int, float]]


def _key(metric: Mapping[str, str]) -> SeriesKey:
    return tuple(sorted(metric.items()))


async def _query(
    http: httpx.AsyncClient, url: str, query: str, *, at_s: float, auth: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    response = await http.post(
        f"{url.rstrip('/')}/api/v1/query",
        data={"query": query, "time": f"{at_s:.3f}"},
        auth=httpx.USE_CLIENT_DEFAULT if auth is None else auth,
    )
    response.raise_for_status()
    body = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"{url}: {query!r} failed: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def raw_samples(
    http: httpx.AsyncClient,
    url: str,
    selector: str,
    *,
    at_s: float,
    range_s: int,
    auth: tuple[str, str] | None = None,
) -> Samples:
    """Every raw sample of ``selector`` in ``(at_s - range_s, at_s]``: series → {ms: value}."""
    out: Samples = {}
    for series in await _query(http, url, f"{selector}[{range_s}s]", at_s=at_s, auth=auth):
        samples = out.setdefault(_key(series["metric"]), {})
        for timestamp, value in series.get("values", []):
            samples[round(float(timestamp) * 1000)] = float(value)
    return out


async def instant_series(
    http: httpx.AsyncClient, url: str, selector: str, *, at_s: float, auth: tuple[str, str] | None = None
) -> dict[SeriesKey, float]:
    """The series an instant query of ``selector`` returns at ``at_s`` (so not stale), with values."""
    return {
        _key(series["metric"]): float(series["value"][1])
        for series in await _query(http, url, selector, at_s=at_s, auth=auth)
    }


async def newest_timestamp_s(http: httpx.AsyncClient, url: str, selector: str, *, at_s: float) -> float | None:
    """The newest sample timestamp among the live series of ``selector``, or None.

    ``timestamp()`` drops the metric name, and returns sample times only for a plain
    selector, so ``selector`` must name one metric.
    """
    result = await _query(http, url, f"max(timestamp({selector}))", at_s=at_s)
    return float(result[0]["value"][1]) if result else None


async def metric_total(http: httpx.AsyncClient, url: str, name: str, **labels: str) -> float:
    """The sum of a server's own metric ``name`` (from its ``/metrics``) over series matching ``labels``."""
    response = await http.get(f"{url.rstrip('/')}/metrics")
    response.raise_for_status()
    total = 0.0
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleDiff:
    """How a copy differs from its source; empty everywhere for an exact copy."""

    source_series: int
    source_samples: int
    copy_samples: int
    missing_series: tuple[SeriesKey, ...]
    extra_series: tuple[SeriesKey, ...]
    missing: dict[SeriesKey, tuple[int, ...]]
    """Per series, source timestamps (ms) the copy lacks."""
    extra: dict[SeriesKey, tuple[int, ...]]
    """Per series, copy timestamps the source does not have."""
    different: dict[SeriesKey, tuple[tuple[int, float, float], ...]]
    """Per series, (timestamp, source value, copy value) where both have the sample."""

    @property
    def exact(self) -> bool:
        return not (self.missing_series or self.extra_series or self.missing or self.extra or self.different)

    def summary(self) -> str:
        def first(items: dict[SeriesKey, tuple[Any, ...]]) -> str:
            return "; ".join(f"{dict(k)}: {len(v)} e.g. {list(v[:3])}" for k, v in list(items.items())[:3])

        return (
            f"source {self.source_series} series / {self.source_samples} samples, copy {self.copy_samples} samples; "
            f"missing series {[dict(k) for k in self.missing_series]}; "
            f"extra series {[dict(k) for k in self.extra_series]}; "
            f"missing samples {sum(map(len, self.missing.values()))} [{first(self.missing)}]; "
            f"extra samples {sum(map(len, self.extra.values()))} [{first(self.extra)}]; "
            f"different values {sum(map(len, self.different.values()))} [{first(self.different)}]"
        )


def compare_samples(
    source: Samples, copy: Samples, *, rel_tol: float = 0.0, stale_markers_in_copy: bool = False
) -> SampleDiff:
    """The differences between ``copy`` and ``source`` (see :class:`SampleDiff`).

    Args:
        rel_tol: Values this close count as equal; 0 (exact) for a Prometheus copy.
            VictoriaMetrics keeps about 12 significant decimal digits.
        stale_markers_in_copy: NaN samples the copy has and the source does not are not
            extra: VictoriaMetrics' range selectors return the staleness markers the
            forwarder sent, where Prometheus' hide them.
    """
    missing: dict[SeriesKey, tuple[int, ...]] = {}
    extra: dict[SeriesKey, tuple[int, ...]] = {}
    different: dict[SeriesKey, tuple[tuple[int, float, float], ...]] = {}
    for key in source.keys() & copy.keys():
        wanted, held = source[key], copy[key]
        if lacking := tuple(sorted(wanted.keys() - held.keys())):
            missing[key] = lacking
        surplus = sorted(held.keys() - wanted.keys())
        if stale_markers_in_copy:
            surplus = [t for t in surplus if not math.isnan(held[t])]
        if surplus:
            extra[key] = tuple(surplus)
        both = sorted(wanted.keys() & held.keys())
        if changed := tuple(
            (t, wanted[t], held[t]) for t in both if not math.isclose(wanted[t], held[t], rel_tol=rel_tol)
        ):
            different[key] = changed
    return SampleDiff(
        source_series=len(source),
        source_samples=sum(map(len, source.values())),
        copy_samples=sum(map(len, copy.values())),
        missing_series=tuple(sorted(source.keys() - copy.keys())),
        extra_series=tuple(sorted(copy.keys() - source.keys())),
        missing=missing,
        extra=extra,
        different=different,
    )
