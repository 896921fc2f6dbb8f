"""``/api/v1/metadata`` without name oracles: names the tenant has series of, text from targets it sees.

Prometheus keeps HELP/TYPE/UNIT per scrape target and metric name, and its
``/api/v1/metadata`` merges them over every target: for a name two teams both expose, it
lists both teams' texts, and it answers for names nobody may see. The proxy therefore
builds the answer itself:

1. What the tenant sees now: one query (``visible_sources_query``) that lists, per visible
   series, its exact metric name and its ``job``/``instance``, restricted by the policy's
   own rules. Names are compared exactly as stored: no family-name guessing (stripping
   ``_total``, ``_bucket`` … is what made the old answer an oracle: a tenant seeing
   ``x_total`` learnt about another team's ``x``).
2. Where the backend can tell (Prometheus' ``/api/v1/targets/metadata``), an entry is kept
   only when the tenant has a visible series of exactly that name from exactly that target
   (``job`` and ``instance``): another team's text for the same name is left out.
3. Where it cannot (the endpoint is missing: Thanos, VictoriaMetrics …), the backend's
   merged ``/api/v1/metadata`` is filtered to the visible names.

What remains (README, "Endpoints"): a histogram or an OpenMetrics counter is listed by its
family name (``foo`` for ``foo_bucket``, ``foo_total``), which no series carries, so such
families are not listed; series whose ``job``/``instance`` are not their target's (pushed
through a Pushgateway, federated, written remotely) show no metadata from targets; and on a
backend without per-target metadata, the text of a visible name may be another team's.

Pure functions of bytes; the caller fetches and may run them in a worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mtproxy.api import Rule
from mtproxy.proxy.selectors import quote_meta

__all__ = [
    "NAME_LABEL",
    "Source",
    "metadata_from_targets",
    "metadata_of_names",
    "target_selector",
    "visible_sources",
    "visible_sources_query",
]

NAME_LABEL = "mtproxy_metric_name"
"""The label the visible-sources query copies each series' name into (see ``visible_sources_query``)."""

Source = tuple[str, str, str]
"""(metric name, job, instance) of visible series; ``""`` where the label is absent."""

_MAX_SELECTOR_BYTES = 64 * 1024
"""Beyond this the ``match_target`` selector names jobs only (targets/metadata is GET-only)."""


def _dump(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def visible_sources_query(rules: Iterable[Rule]) -> str:
    """PromQL listing (name, job, instance) of every series the rules admit, one result per source.

    Each rule's selector is grouped on its own and the groups are joined with ``or``. The
    name is copied into ``NAME_LABEL`` first: ``or`` matches label sets without
    ``__name__``, so two names from one target would otherwise collapse into one.
    """
    parts = [
        f'group by ({NAME_LABEL}, job, instance) (label_replace({rule.selector()}, "{NAME_LABEL}", "$1", '
        '"__name__", "(.+)"))'
        for rule in rules
    ]
    return " or ".join(parts)


def visible_sources(body: bytes) -> set[Source]:
    """The sources in the answer of ``visible_sources_query`` (empty when it is not a vector)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return set()
    data = document.get("data") if isinstance(document, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    sources: set[Source] = set()
    for item in result if isinstance(result, list) else []:
        metric = item.get("metric") if isinstance(item, dict) else None
        if isinstance(metric, dict) and isinstance(metric.get(NAME_LABEL), str):
            sources.add((metric[NAME_LABEL], str(metric.get("job", "")), str(metric.get("instance", ""))))
    return sources


def target_selector(sources: Iterable[Source]) -> str | None:
    """A ``match_target`` selector covering the targets of ``sources`` (None: no source has one).

    It only narrows what the backend returns; entries are matched exactly afterwards.
    """
    jobs = sorted({job for _, job, instance in sources if job and instance})
    instances = sorted({instance for _, job, instance in sources if job and instance})
    if not jobs:
        return None
    by_job = f'job=~"{_alternation(jobs)}"'
    both = f'{{{by_job},instance=~"{_alternation(instances)}"}}'
    return both if len(both) <= _MAX_SELECTOR_BYTES else f"{{{by_job}}}"


def _alternation(values: list[str]) -> str:
    return "|".join(quote_meta(v) for v in values).replace("\\", "\\\\").replace('"', '\\"')


def _answer(entries: dict[str, list[dict[str, Any]]], limit: int | None) -> bytes:
    names = sorted(entries)
    if limit is not None and limit >= 0:
        names = names[:limit]
    return _dump({"status": "success", "data": {name: entries[name] for name in names}})


def metadata_from_targets(
    body: bytes, sources: frozenset[Source], limit: int | None, metric: str | None = None
) -> bytes | None:
    """The ``/api/v1/metadata`` answer from a ``/api/v1/targets/metadata`` answer, kept to ``sources``.

    ``metric`` is the name asked for, if any: Prometheus leaves ``metric`` out of its entries
    then. None when the body is not a targets/metadata answer.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        return None
    entries: dict[str, list[dict[str, Any]]] = {}
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("target"), dict):
            continue
        name, target = item.get("metric", metric), item["target"]
        if (name, str(target.get("job", "")), str(target.get("instance", ""))) not in sources:
            continue
        entry = {"type": item.get("type", ""), "help": item.get("help", ""), "unit": item.get("unit", "")}
        found = entries.setdefault(str(name), [])
        if entry not in found:
            found.append(entry)
    return _answer(entries, limit)


def metadata_of_names(body: bytes, names: frozenset[str], limit: int | None) -> bytes | None:
    """A backend's merged ``/api/v1/metadata`` answer kept to exactly ``names``; None when unreadable."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        return None
    return _answer({name: list(v) for name, v in data.items() if name in names and isinstance(v, list)}, limit)
