"""PromQL that Prometheus 3 accepts and the proxy refuses or reads differently: the README's table, measured.

Each row is a query and three facts, each checked here on every run:

- what Debian's Prometheus 2.42 answers (200 or 400),
- what Prometheus 3 answers, with default flags and with the experimental features a user
  may turn on (``--enable-feature=promql-experimental-functions,promql-binop-fill-modifiers,
  promql-unquoted-utf8-names``),
- what the proxy does with it (``mtproxy enforce``'s ``explain``): the query it sends, or its
  refusal.

The servers hold a few ``up`` series, one with a newline in a label value. The table in the
README ("Prometheus 3") is this module's rows; change both together. The last test guards a
real difference in meaning: Prometheus 3's regex ``.`` matches a newline, RE2's (which the
proxy decides with) does not, so the proxy decides no regex on a value holding a newline
and leaves the matcher to the backend (it once took a ``!~`` rule as satisfied by a value
Prometheus 3 excludes).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from realservers import DEBIAN, PrometheusBinaries, ServerProcess
from realservers.backfill import create_blocks
from realservers.prometheus import infrastructure_prometheus

from mtproxy.cmd.enforce import explain

from .proxyharness import load_policies, metric_access

EXPERIMENTAL = "--enable-feature=promql-experimental-functions,promql-binop-fill-modifiers,promql-unquoted-utf8-names"
NAMESPACE = "team-a"
POLICY = load_policies([metric_access(NAMESPACE, "a", ["http_.*", "up", "my.metric"])])[NAMESPACE]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

OK, REFUSED = 200, 400


@dataclass(frozen=True, slots=True)
class Servers:
    prometheus2: ServerProcess
    prometheus3: ServerProcess
    prometheus3_experimental: ServerProcess
    time_s: int


@dataclass(frozen=True, slots=True)
class Row:
    query: str
    prometheus2: int
    prometheus3: int
    """With default flags."""
    prometheus3_experimental: int
    proxy: str
    """The query the proxy sends, or ``refused: <message part>``."""


ROWS = [
    pytest.param(Row('{"up"}', REFUSED, OK, OK, '{__name__="up",namespace="team-a"}'),
                 id="quoted-metric-name"),
    pytest.param(Row('{"my.metric"}', REFUSED, OK, OK, '{__name__="my.metric",namespace="team-a"}'),
                 id="utf8-metric-name"),
    pytest.param(Row('up{"some.label"="x"}', REFUSED, OK, OK, "refused: 'some.label': is not a label name"),
                 id="utf8-label-name"),
    pytest.param(Row('sum by ("some.label") (up)', REFUSED, OK, OK, "refused: 'some.label': is not a label name"),
                 id="utf8-label-in-grouping"),
    pytest.param(Row("my.metric", REFUSED, REFUSED, OK, "refused: unexpected character after '.'"),
                 id="unquoted-utf8-name"),
    pytest.param(Row("rate(http_requests_total[5m+1m])", REFUSED, OK, OK, "refused: unexpected character"),
                 id="duration-expression"),
    pytest.param(Row("rate(http_requests_total[5m] smoothed)", REFUSED, OK, OK, "refused: invalid promql query"),
                 id="smoothed-range"),
    pytest.param(Row("rate(http_requests_total[5m] anchored)", REFUSED, OK, OK, "refused: invalid promql query"),
                 id="anchored-range"),
    pytest.param(Row("first_over_time(up[5m])", REFUSED, OK, OK, "refused: first_over_time(): is not a function"),
                 id="first-over-time"),
    pytest.param(Row("histogram_avg(up)", REFUSED, OK, OK, "refused: histogram_avg(): is not a function"),
                 id="histogram-avg"),
    pytest.param(Row("histogram_stddev(up)", REFUSED, OK, OK, "refused: histogram_stddev(): is not a function"),
                 id="histogram-stddev"),
    pytest.param(Row("info(up)", REFUSED, REFUSED, OK, "refused: info(): is not a function"), id="info"),
    pytest.param(Row("limitk(2, up)", REFUSED, REFUSED, OK, "refused: limitk(): is not an aggregation"),
                 id="limitk"),
    pytest.param(Row("limit_ratio(0.5, up)", REFUSED, REFUSED, OK, "refused: limit_ratio(): is not an aggregation"),
                 id="limit-ratio"),
    pytest.param(Row("mad_over_time(up[5m])", REFUSED, REFUSED, OK, "refused: mad_over_time(): is not a function"),
                 id="mad-over-time"),
    pytest.param(Row('sort_by_label(up, "job")', REFUSED, REFUSED, OK, "refused: sort_by_label(): is not a function"),
                 id="sort-by-label"),
    pytest.param(Row("ts_of_max_over_time(up[5m])", REFUSED, REFUSED, OK,
                     "refused: ts_of_max_over_time(): is not a function"), id="ts-of-max-over-time"),
    pytest.param(Row("double_exponential_smoothing(up[5m], 0.5, 0.5)", REFUSED, REFUSED, OK,
                     "refused: double_exponential_smoothing(): is not a function"), id="double-exponential-smoothing"),
    pytest.param(Row("step()", REFUSED, REFUSED, OK, "refused: step(): is not a function"), id="step"),
    pytest.param(Row("up + fill(0) up", REFUSED, REFUSED, OK, "refused: invalid query"), id="binop-fill"),
    pytest.param(Row("holt_winters(up[5m], 0.5, 0.5)", OK, REFUSED, REFUSED,
                     'holt_winters({__name__="up",namespace="team-a"}[5m], 0.5, 0.5)'), id="holt-winters-removed"),
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, prometheus3_binaries: PrometheusBinaries) -> Iterator[Servers]:
    """2.42, 3 and 3 with experimental features, on the same few series (Debian's promtool blocks)."""
    workdir = tmp_path_factory.mktemp("prometheus3-promql")
    time_s = int(time.time()) - 60
    openmetrics = workdir / "data.om"
    openmetrics.write_text(
        "# TYPE up gauge\n"
        f'up{{job="a\\nb",namespace="team-a"}} 1 {time_s}\n'
        f'up{{job="axb",namespace="team-a"}} 1 {time_s}\n'
        f'up{{job="api",namespace="team-a"}} 1 {time_s}\n'
        "# EOF\n"
    )
    started: list[ServerProcess] = []
    try:
        for name, binaries, extra in (("prometheus2", DEBIAN, ()), ("prometheus3", prometheus3_binaries, ()),
                                      ("prometheus3-experimental", prometheus3_binaries, (EXPERIMENTAL,))):
            directory = workdir / name
            create_blocks(openmetrics, directory / "data", binaries=DEBIAN)
            server = infrastructure_prometheus(directory, storage_dir=directory / "data", retention="3650d",
                                               binaries=binaries, extra_args=extra)
            started.append(server)
            server.start()
        yield Servers(*started, time_s=time_s)
    finally:
        for server in started:
            server.stop()


def _ask(server: ServerProcess, query: str, time_s: int) -> tuple[int, dict[str, object]]:
    url = f"{server.url}/api/v1/query?" + urllib.parse.urlencode({"query": query, "time": str(time_s)})
    try:
        with _OPENER.open(url, timeout=10) as response:
            return int(response.status), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _proxy(query: str) -> str:
    """The query the proxy sends, or its refusal (``refused (400 bad_data): …``)."""
    return explain(POLICY, NAMESPACE, query)[1]


@pytest.mark.parametrize("row", ROWS)
def test_prometheus3_and_the_proxy_answer_as_the_table_says(servers: Servers, row: Row) -> None:
    answers = {
        "prometheus2": _ask(servers.prometheus2, row.query, servers.time_s)[0],
        "prometheus3": _ask(servers.prometheus3, row.query, servers.time_s)[0],
        "prometheus3_experimental": _ask(servers.prometheus3_experimental, row.query, servers.time_s)[0],
    }
    assert answers == {"prometheus2": row.prometheus2, "prometheus3": row.prometheus3,
                       "prometheus3_experimental": row.prometheus3_experimental}
    proxy = _proxy(row.query)
    if row.proxy.startswith("refused: "):
        assert proxy.startswith("refused (400 bad_data): "), proxy
        assert row.proxy.removeprefix("refused: ") in proxy, proxy
    else:
        assert proxy == row.proxy


def test_prometheus3_stores_classic_bucket_bounds_as_floats(tmp_path: Path,
                                                             prometheus3_binaries: PrometheusBinaries) -> None:
    """promtool 3 (as Prometheus 3's scrape) writes ``le="1"`` as ``le="1.0"``: a MetricAccess
    selector ``{le="1"}`` that matched on 2.42 matches nothing on data ingested by 3.x."""
    time_s = int(time.time()) - 60
    openmetrics = tmp_path / "data.om"
    openmetrics.write_text(
        "# TYPE req histogram\n"
        f'req_bucket{{le="1"}} 1 {time_s}\nreq_bucket{{le="+Inf"}} 1 {time_s}\n'
        f"req_count 1 {time_s}\nreq_sum 1 {time_s}\n# EOF\n"
    )
    create_blocks(openmetrics, tmp_path / "data", binaries=prometheus3_binaries)
    server = infrastructure_prometheus(tmp_path, storage_dir=tmp_path / "data", retention="3650d",
                                       binaries=prometheus3_binaries)
    server.start()
    try:
        status, body = _ask(server, "req_bucket", time_s)
    finally:
        server.stop()
    assert status == OK
    data = body["data"]
    assert isinstance(data, dict)
    assert sorted(series["metric"]["le"] for series in data["result"]) == ["+Inf", "1.0"]


def test_a_negative_regex_rule_hides_on_prometheus3_what_prometheus3_says_it_excludes(servers: Servers) -> None:
    policy = load_policies([metric_access(NAMESPACE, "n", ['up{job!~"a.b"}'], isolation=False)])[NAMESPACE]
    allowed, enforced = explain(policy, NAMESPACE, 'up{job="a\\nb"}')
    assert allowed
    status, body = _ask(servers.prometheus3, enforced, servers.time_s)
    assert status == OK
    data = body["data"]
    assert isinstance(data, dict)
    # what the rule admits on Prometheus 3 (its own answer to the rule) must bound what the tenant got
    _, admitted = _ask(servers.prometheus3, 'up{job!~"a.b"}', servers.time_s)
    admitted_data = admitted["data"]
    assert isinstance(admitted_data, dict)
    visible = {json.dumps(s["metric"], sort_keys=True) for s in admitted_data["result"]}
    got = {json.dumps(s["metric"], sort_keys=True) for s in data["result"]}
    assert got <= visible, f"the tenant got {got - visible}, which the rule excludes on Prometheus 3"
