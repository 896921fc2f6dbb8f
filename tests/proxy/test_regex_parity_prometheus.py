"""Regex parity, end to end on real Prometheus: the proxy never decides on a verdict Go's regexp does not share.

The proxy reasons about regexes with RE2 (google-re2), the backend evaluates them with the Go
``regexp`` of Prometheus 2.42 (Go 1.19, Unicode 13). Their Unicode tables differ: U+1DF00 is a
letter to RE2 and unassigned to Go. With a rule ``regex_probe{v!="\U0001df00"}``, a query
``regex_probe{v=~"\\PL"}`` used to be judged "cannot select the excluded value" by RE2 and
forwarded unrestricted, and Prometheus returned the excluded series.

The data set's ``regex_probe{v=…}`` series (``REGEX_PROBE_VALUES``: ASCII, case-folding
specials, letters of Unicode 14 and 15) are asked for with a table of regexes:

- every verdict ``LabelMatcher.verdict`` gives (it gives none where the engines may differ)
  equals what the infrastructure Prometheus selects;
- through the proxy, under two policies (the red team's ``v!="\U0001df00"`` and a rule with a
  Unicode class, ``v=~"\\pL+"``), ``v=~R``, ``v!~R`` and ``v="<value>"`` answer exactly what a
  Prometheus holding only the visible series answers. The visible series are what Prometheus
  itself selects with the rules, never what RE2 thinks they select.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trio
from realservers import Dataset, LoadedPrometheus, start_prometheus_with_data
from realservers.testdata import REGEX_PROBE_VALUES

from mtproxy.api import LabelMatcher, MatchOp, Rule, parse_selector
from mtproxy.api.regex import expand_literal_spans
from mtproxy.proxy import AccessPolicy
from mtproxy.proxy.promql_print import quote_string

from .proxyharness import start_proxy

pytestmark = pytest.mark.slow

REGEXES = [
    # Unicode classes and scripts: the tables differ for characters added after Unicode 13
    "\\pL", "\\PL", "\\pL+", "\\p{Ll}", "\\p{Lu}", "\\p{Lo}", "\\p{Lm}", "\\p{L}|\\p{N}",
    "\\p{Latin}", "\\p{Greek}", "\\p{Cyrillic}", "\\p{Arabic}", "\\p{Glagolitic}", "\\pN", "\\p{Nd}",
    "\\PN", "\\p{So}", "[\\pL_]", "[^\\pL]",
    # case folding, into and beyond ASCII
    "(?i)k", "(?i)K", "(?i)s", "(?i)\u212a", "(?i)\u017f", "(?i)\u00df", "(?i)\u1e9e", "(?i)\u03c3",
    "(?i)\u03c2", "(?i)\u2c2f", "(?i)\u2c5f", "(?i)\ua7c0", "(?i)\U00010570", "(?i)[a-z]", "(?i)[^k]",
    "(?i)\\w", "(?i)\\W", "(?i)[[:upper:]]", "(?i)\u00e9",
    # ASCII classes, code points, ranges: both engines alike
    "[[:alpha:]]", "\\w", "\\W", "\\d", "\\s", ".", "[^a]", "[\u00e0-\u00ff]", "\\x{1DF00}",
    "[\\x{10000}-\\x{10FFFF}]", "[a-z]+", "\u00e9|\u00df", "_|-",
    # \Q...\E: literal text to Go; the proxy spells it out before its parser sees it
    "\\Qa.b\\E", "\\Qa+b\\E", "a\\Q.\\Eb", "\\Q[x]\\E", "(?i)\\QA.B\\E", "a\\Q\\E.b", "\\Q\\d\\E|x",
    "\\Qa",  # without \E: the span swallows the ")$" Prometheus anchors with, and the regex is refused
]  # fmt: skip

EXCLUDED = "\U0001df00"
POLICIES: dict[str, list[str]] = {
    "red-team": [f"regex_probe{{v!={quote_string(EXCLUDED)}}}"],
    "unicode-class": ['regex_probe{v=~"\\\\pL+"}'],
}
"""Rules as selectors, isolation off (``regex_probe`` has no namespace)."""


def _values(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 200, answer.text
    return {item["metric"].get("v", "") for item in answer.json()["data"]["result"]}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegexView:
    """One policy, the infrastructure Prometheus and a Prometheus holding only the series Prometheus admits."""

    name: str
    policy: AccessPolicy
    infra: LoadedPrometheus
    visible: LoadedPrometheus


@pytest.fixture(scope="module", params=list(POLICIES))
def regex_view(
    request: pytest.FixtureRequest,
    infra_prometheus_with_data: LoadedPrometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RegexView]:
    name: str = request.param
    rules = [Rule.of(parse_selector(text)) for text in POLICIES[name]]
    policy = AccessPolicy.of("probe", rules, isolated=False)
    data = infra_prometheus_with_data.data
    with httpx.Client(timeout=30) as client:
        admitted: set[tuple[tuple[str, str], ...]] = set()
        for rule in rules:
            answer = client.get(infra_prometheus_with_data.url + "/api/v1/series", params={"match[]": rule.selector()})
            assert answer.status_code == 200, answer.text
            admitted.update(tuple(sorted(series.items())) for series in answer.json()["data"])
    subset = tuple(s for s in data.series if s.labels in admitted)
    assert subset, f"policy {name} admits nothing"
    visible = start_prometheus_with_data(
        tmp_path_factory.mktemp(f"regex-visible-{name}"),
        Dataset(start_ms=data.start_ms, end_ms=data.end_ms, step_ms=data.step_ms, namespaces=(), series=subset),
    )
    try:
        yield RegexView(name=name, policy=policy, infra=infra_prometheus_with_data, visible=visible)
    finally:
        visible.server.stop()


def test_every_verdict_the_proxy_uses_is_the_backends(infra_prometheus_with_data: LoadedPrometheus) -> None:
    """Where ``verdict`` answers, Go's regexp answers the same; and the red team's case is withheld."""
    infra = infra_prometheus_with_data
    wrong: list[tuple[str, str, bool]] = []
    withheld = 0
    with httpx.Client(timeout=30) as client:
        for regex in REGEXES:
            params = {"query": f"regex_probe{{v=~{quote_string(regex)}}}", "time": infra.data.end_s}
            answer = client.get(infra.url + "/api/v1/query", params=params)
            if answer.status_code == 400:  # Prometheus refuses the regex: so does the proxy
                with pytest.raises(ValueError):
                    LabelMatcher(name="v", op=MatchOp.REGEX, value=expand_literal_spans(regex))
                continue
            selected = _values(answer)
            matcher = LabelMatcher(name="v", op=MatchOp.REGEX, value=regex)
            for value in REGEX_PROBE_VALUES:
                verdict = matcher.verdict(value)
                withheld += verdict is None
                if verdict is not None and verdict != (value in selected):
                    wrong.append((regex, value, verdict))
    assert wrong == []
    assert LabelMatcher(name="v", op=MatchOp.REGEX, value="\\PL").verdict(EXCLUDED) is None
    assert withheld > 0


def test_re2_alone_would_have_disagreed_with_go() -> None:
    """The table is not vacuous: RE2's own answers differ from Go 1.19's on some rows."""
    letters = LabelMatcher(name="v", op=MatchOp.REGEX, value="\\PL")
    assert not letters.matches(EXCLUDED)  # RE2: a letter; Go 1.19: unassigned, so \PL matches it


async def _mismatches(view: RegexView, queries: list[str], nursery: trio.Nursery) -> list[tuple[str, Any, Any]]:
    proxy = await start_proxy(nursery, view.infra.url, policies={"probe": view.policy})
    found = []
    for query in queries:
        params = {"query": query, "time": view.infra.data.end_s}
        through = await proxy.get("/api/v1/query", params, tenant="probe")
        direct = await proxy.client.get(view.visible.url + "/api/v1/query", params=params)
        if through.status_code != 200 or direct.status_code != 200:
            if (through.status_code, through.json().get("errorType")) != (
                direct.status_code,
                direct.json().get("errorType"),
            ):
                found.append((query, through.text, direct.text))
            continue
        if _values(through) != _values(direct):
            found.append((query, sorted(_values(through)), sorted(_values(direct))))
    return found


async def test_regex_selectors_answer_as_on_visible_series_only(nursery: trio.Nursery, regex_view: RegexView) -> None:
    queries = [f"regex_probe{{v{op}{quote_string(regex)}}}" for regex in REGEXES for op in ("=~", "!~")]
    assert await _mismatches(regex_view, queries, nursery) == []


async def test_equality_selectors_answer_as_on_visible_series_only(
    nursery: trio.Nursery, regex_view: RegexView
) -> None:
    queries = [f"regex_probe{{v={quote_string(value)}}}" for value in REGEX_PROBE_VALUES]
    queries.append("regex_probe")
    assert await _mismatches(regex_view, queries, nursery) == []


async def test_the_red_team_probe_returns_no_excluded_value(nursery: trio.Nursery, regex_view: RegexView) -> None:
    if regex_view.name != "red-team":
        pytest.skip("the red team's rule only")
    proxy = await start_proxy(nursery, regex_view.infra.url, policies={"probe": regex_view.policy})
    params = {"query": 'regex_probe{v=~"\\\\PL"}', "time": regex_view.infra.data.end_s}
    through = await proxy.get("/api/v1/query", params, tenant="probe")
    direct = await proxy.client.get(regex_view.infra.url + "/api/v1/query", params=params)
    assert EXCLUDED in _values(direct)  # Go's \PL takes U+1DF00, as the red team found
    assert EXCLUDED not in _values(through)
