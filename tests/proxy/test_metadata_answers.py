"""Building /api/v1/metadata: the pure steps, and the fallback for backends without per-target metadata."""

from __future__ import annotations

import json
from typing import Any

import trio

from mtproxy.api import parse_selector, rules_for
from mtproxy.proxy.metadata import (
    NAME_LABEL,
    metadata_from_targets,
    metadata_of_names,
    target_selector,
    visible_sources,
    visible_sources_query,
)
from mtproxy.proxy.promql_parity import parse_promql

from .proxyharness import metric_access, start_proxy
from .rawhttp import read_request, serve_on_loopback


def _vector(*metrics: dict[str, str]) -> bytes:
    result = [{"metric": m, "value": [0, "1"]} for m in metrics]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def test_the_sources_query_groups_each_rule_with_its_name_copied() -> None:
    rules = rules_for(["up", "http_.*"], label_selectors={}, isolation_namespace="team-a")
    query = visible_sources_query(rules)
    parse_promql(query)  # what is sent is valid PromQL
    assert query.count(" or ") == len(rules) - 1
    assert query.count(f'label_replace({{__name__="up",namespace="team-a"}}, "{NAME_LABEL}"') == 1


def test_sources_are_read_from_the_vector_and_junk_is_nothing() -> None:
    body = _vector({NAME_LABEL: "up", "job": "a", "instance": "h:1"}, {NAME_LABEL: "x"}, {"job": "no-name"})
    assert visible_sources(body) == {("up", "a", "h:1"), ("x", "", "")}
    assert visible_sources(b"not json") == set()
    assert visible_sources(b'{"status":"success","data":{"resultType":"scalar","result":[0,"1"]}}') == set()


def test_the_target_selector_escapes_values_and_needs_job_and_instance() -> None:
    selector = target_selector({("up", 'we"ird', "h.x:1"), ("up", "a", ""), ("go", "b", "h:2")})
    assert selector is not None
    matchers = {m.name: m for m in parse_selector(selector)}
    assert matchers["job"].matches('we"ird') and matchers["job"].matches("b") and not matchers["job"].matches("a")
    assert matchers["instance"].matches("h.x:1") and not matchers["instance"].matches("hxx:1")
    assert target_selector({("up", "", "h:1")}) is None


def _targets(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"status": "success", "data": list(entries)}).encode()


def test_target_entries_are_kept_only_for_a_visible_name_from_its_own_target() -> None:
    body = _targets(
        {"target": {"job": "a", "instance": "h:1"}, "metric": "m", "type": "gauge", "help": "mine", "unit": ""},
        {"target": {"job": "b", "instance": "h:2"}, "metric": "m", "type": "gauge", "help": "theirs", "unit": ""},
        {"target": {"job": "a", "instance": "h:1"}, "metric": "m", "type": "gauge", "help": "mine", "unit": ""},
        {"target": {"job": "a", "instance": "h:1"}, "metric": "m_total", "type": "counter", "help": "", "unit": ""},
    )
    answer = json.loads(metadata_from_targets(body, frozenset({("m", "a", "h:1")}), None) or b"")
    assert answer == {"status": "success", "data": {"m": [{"type": "gauge", "help": "mine", "unit": ""}]}}


def test_entries_asked_for_by_name_carry_no_metric_field() -> None:
    body = _targets({"target": {"job": "a", "instance": "h:1"}, "type": "gauge", "help": "mine", "unit": ""})
    answer = json.loads(metadata_from_targets(body, frozenset({("m", "a", "h:1")}), None, "m") or b"")
    assert list(answer["data"]) == ["m"]


def test_limit_counts_metrics_in_name_order() -> None:
    body = json.dumps({"status": "success", "data": {n: [{"type": "gauge"}] for n in ("c", "a", "b")}}).encode()
    answer = json.loads(metadata_of_names(body, frozenset({"a", "b", "c"}), 2) or b"")
    assert list(answer["data"]) == ["a", "b"]


async def test_a_backend_without_target_metadata_gets_its_merged_metadata_kept_to_exact_names(
    nursery: trio.Nursery,
) -> None:
    merged = {
        "up_total": [{"type": "counter", "help": "exact", "unit": ""}],
        "up": [{"type": "gauge", "help": "a family guessed from up_total", "unit": ""}],
        "secret": [{"type": "gauge", "help": "nobody sees this", "unit": ""}],
    }
    answers = {
        b"/api/v1/query": (200, _vector({NAME_LABEL: "up_total", "job": "j", "instance": "i"})),
        b"/api/v1/targets/metadata": (404, b"404 page not found"),
        b"/api/v1/metadata": (200, json.dumps({"status": "success", "data": merged}).encode()),
    }

    async def backend(stream: trio.SocketStream) -> None:
        while (request := await read_request(stream)) is not None:
            path = request.split(b" ", 2)[1].split(b"?", 1)[0]
            status, body = answers[path]
            head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            await stream.send_all(head.encode() + body)

    proxy = await start_proxy(
        nursery, await serve_on_loopback(nursery, backend), access=[metric_access("team-a", "app", ["up.*"])]
    )
    response = await proxy.get("/api/v1/metadata", tenant="team-a")
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"up_total": merged["up_total"]}
    assert [call.path for call in proxy.recorder.take()] == [
        "/api/v1/query",
        "/api/v1/targets/metadata",
        "/api/v1/metadata",
    ]
