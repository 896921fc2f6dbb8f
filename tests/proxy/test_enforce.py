"""enforce_query: every vector selector restricted to the tenant's policy, wherever it stands.

Tables of queries, one row per behaviour, judged by the composable checks of
``enforce_checks``: the exact text sent on where the row states it, and for *every* accepted
row the meaning checks (the output parses back to itself through the project's printer,
every selector in it selects only series the policy admits, the tenant's own matchers are
kept, and enforcing the output again selects the same series). Three policies:

- ``isolated``: namespace team-a with ``metricIsolation``, ``up``, ``http_.*`` and
  ``node_cpu_seconds_total{mode="idle"}``;
- ``selectors``: isolation off, ``labelSelectors: {env: prod}``, where two rules differ only
  in a label value holding regex metacharacters, a quote and a backslash;
- ``merged``: two MetricAccess objects of team-a merged by the reconciler's
  ``desired_policy``, one of them with ``labelSelectors``.

A table for ``absent()``, whose answer must carry the labels of the query, never the ones the
rewrite added (checked against a model of Prometheus 2.42 measured with promtool), generated
queries (hypothesis), and regression tests for the bugs this suite found; the bugs still open
are strict xfails.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import promql_parser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtproxy.api import GuardrailsConfig, MetricAccess, MetricAccessSchema, rules_for
from mtproxy.proxy.enforce import enforce_query, forget_memos
from mtproxy.proxy.errors import BadRequest, Forbidden
from mtproxy.proxy.policy import AccessPolicy
from mtproxy.proxy.promql_parity import MAX_NESTING, PromQLUnsupported, check_supported, parse_promql
from mtproxy.proxy.promql_print import format_expr
from mtproxy.proxy.selectors import quote_meta
from mtproxy.reconcilers import desired_policy

from .enforce_checks import (
    Check,
    answers_absent_like_the_original,
    carries_policy,
    checks,
    enforce,
    error_is,
    has_expression,
    idempotent_in_meaning,
    keeps_user_matchers,
    leak_witness,
    no_error,
    parses_back,
    selectors_of,
    selects_exactly,
)


def _access(name: str, *, metrics: list[str], **spec: Any) -> MetricAccess:
    doc = {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"source": "team-a", "metricIsolation": True, "metrics": metrics, **spec},
    }
    result: MetricAccess = MetricAccessSchema().load(doc)
    return result


def _merged_policy() -> AccessPolicy:
    objects = [
        _access("base", metrics=["up", "http_requests_total"]),
        _access(
            "prod",
            metrics=["up", "http_.*", 'node_cpu_seconds_total{mode="idle"}', 'node_cpu_seconds_total{mode="user"}'],
            labelSelectors={"env": "prod"},
        ),
    ]
    policy = desired_policy("team-a", objects, guardrails=GuardrailsConfig()).policy
    assert policy is not None
    return policy


POLICIES = {
    "isolated": AccessPolicy.of(
        "team-a",
        rules_for(
            ["up", "http_.*", 'node_cpu_seconds_total{mode="idle"}'], label_selectors={}, isolation_namespace="team-a"
        ),
    ),
    "selectors": AccessPolicy.of(
        "team-b",
        rules_for(
            [
                "up",
                "kube_.*",
                'app_info{version="1.0+beta"}',
                'app_info{version="(rc)"}',
                r'app_info{version="x\"y\\z"}',
            ],
            label_selectors={"env": "prod"},
            isolation_namespace=None,
        ),
        isolated=False,
    ),
    "merged": _merged_policy(),
}

ALWAYS = checks(parses_back(), carries_policy(), keeps_user_matchers(), idempotent_in_meaning())
"""Run on every accepted row, whatever the row says."""

UP = '{__name__="up",namespace="team-a"}'
HTTP = '{__name__="http_requests_total",namespace="team-a"}'
IDLE = '{__name__="node_cpu_seconds_total",mode="idle",namespace="team-a"}'
NOTHING = '__name__!~"(?s:.*)"'
PROD_NOT_HTTP = 'env="prod",namespace="team-a",__name__!="http_requests_total"'
"""The merged policy's prod rule without what its http_requests_total rule selects: the two made disjoint."""
EVERYTHING = '{__name__=~".+"}'


_BRANCH = '"__mtproxy_branch__"'


def _union(*operands: str) -> str:
    """The exact union of operands that keep the metric name: each carries a copy of it through ``or``."""
    joined = " or ".join(f'label_join({operand}, {_BRANCH}, "", "__name__")' for operand in operands)
    return f'label_replace(({joined}), {_BRANCH}, "", "", "")'


def _tagged_union(*operands: str) -> str:
    """The exact union of disjoint operands whose function dropped the name: each carries its number."""
    joined = " or ".join(
        f'label_replace({operand}, {_BRANCH}, "{number}", "", "")' for number, operand in enumerate(operands, 1)
    )
    return f'label_replace(({joined}), {_BRANCH}, "", "", "")'


def _any_of(selector: str, policy: str = "isolated") -> str:
    """S written as the union of S and each rule, as the enforcer writes the three-rule policies."""
    body = selector[1:-1] + ","
    branches = {
        "isolated": [
            f'{{{body}__name__="node_cpu_seconds_total",mode="idle",namespace="team-a"}}',
            f'{{{body}__name__="up",namespace="team-a"}}',
            f'{{{body}__name__=~"http_.*",namespace="team-a"}}',
        ],
    }[policy]
    return _union(*branches)


def _row(query: str, *row_checks: Check, policy: str = "isolated", id: str) -> Any:
    return pytest.param(policy, query, checks(*row_checks), id=id)


def _run(policy: str, query: str, row_checks: Sequence[Check]) -> None:
    """Checks the first sight of the query (memos emptied), and that the memos then give the same answer."""
    forget_memos()
    outcome = enforce(query, POLICIES[policy])
    again = enforce(query, POLICIES[policy])
    assert (again.output, repr(again.error)) == (outcome.output, repr(outcome.error)), "memoised answer differs"
    for check in row_checks:
        check(outcome)
    if outcome.error is None:
        for check in ALWAYS:
            check(outcome)


def _same(query: str, expected: str, *, id: str) -> Any:
    return _row(query, has_expression(expected), id=id)


# -- every node type, under the isolated policy ------------------------------------------------

NODE_CASES = [
    _same("up", UP, id="vector-selector-bare-name"),
    _same("up[5m]", f"{UP}[5m]", id="matrix-selector-top-level"),
    _same("up offset 5m", f"{UP} offset 5m", id="vector-selector-offset"),
    _same("up offset -5m", f"{UP} offset -5m", id="vector-selector-negative-offset"),
    _same("up @ 1609746000", f"{UP} @ 1609746000", id="vector-selector-at-timestamp"),
    _same("up @ start()", f"{UP} @ start()", id="vector-selector-at-start"),
    _same("up offset 5m @ end()", f"{UP} @ end() offset 5m", id="vector-selector-offset-and-at-end"),
    _same("rate(up[5m] offset 1h)", f"rate({UP}[5m] offset 1h)", id="matrix-selector-offset"),
    _same("rate(http_requests_total[5m] @ end())", f"rate({HTTP}[5m] @ end())", id="matrix-selector-at-end"),
    _same("up[10m:1m]", f"{UP}[10m:1m]", id="subquery-with-step"),
    _same("up[10m:]", f"{UP}[10m:]", id="subquery-default-step-keeps-colon"),
    _same("up[5m:] @ end()", f"{UP}[5m:] @ end()", id="subquery-at-end"),
    _same("up[1h:5m] @ end() offset 10m", f"{UP}[1h:5m] @ end() offset 10m", id="subquery-at-end-and-offset"),
    _same("max_over_time(up[1h:5m] offset 1h)", f"max_over_time({UP}[1h:5m] offset 1h)", id="subquery-in-function"),
    _same(
        "max_over_time(rate(http_requests_total[5m])[1h:5m] @ end())",
        f"max_over_time(rate({HTTP}[5m])[1h:5m] @ end())",
        id="subquery-of-rate-at-end",
    ),
    _same("sum(up)", f"sum({UP})", id="aggregation-sum"),
    _same("sum by (job) (up)", f"sum by (job) ({UP})", id="aggregation-sum-by"),
    _same("sum(up) by (job)", f"sum by (job) ({UP})", id="aggregation-trailing-by"),
    _same("sum without (instance) (up)", f"sum without (instance) ({UP})", id="aggregation-sum-without"),
    _same("avg by (job) (up)", f"avg by (job) ({UP})", id="aggregation-avg"),
    _same("min(up)", f"min({UP})", id="aggregation-min"),
    _same("max without (job) (up)", f"max without (job) ({UP})", id="aggregation-max-without"),
    _same("count by (job) (up)", f"count by (job) ({UP})", id="aggregation-count"),
    _same("group by (job) (up)", f"group by (job) ({UP})", id="aggregation-group"),
    _same("stddev(up)", f"stddev({UP})", id="aggregation-stddev"),
    _same("stdvar(up)", f"stdvar({UP})", id="aggregation-stdvar"),
    _same("topk(5, rate(http_requests_total[5m]))", f"topk(5, rate({HTTP}[5m]))", id="aggregation-topk-over-rate"),
    _same("bottomk by (job) (3, up)", f"bottomk by (job) (3, {UP})", id="aggregation-bottomk-by"),
    _same("topk(scalar(up), up)", f"topk(scalar({UP}), {UP})", id="aggregation-parameter-selector-restricted"),
    _same("quantile(0.9, up)", f"quantile(0.9, {UP})", id="aggregation-quantile"),
    _same("quantile without (instance) (0.5, up)", f"quantile without (instance) (0.5, {UP})", id="quantile-without"),
    _same('count_values("value", up)', f'count_values("value", {UP})', id="aggregation-count-values"),
    _same('count_values by (job) ("v", up)', f'count_values by (job) ("v", {UP})', id="count-values-by"),
    _same("up + up", f"{UP} + {UP}", id="binary-add-both-sides"),
    _same("up - 1", f"{UP} - 1", id="binary-subtract-number"),
    _same("2 * up", f"2 * {UP}", id="binary-number-times-vector"),
    _same("up / up", f"{UP} / {UP}", id="binary-divide"),
    _same("up % 2", f"{UP} % 2", id="binary-modulo"),
    _same("up ^ 2", f"{UP} ^ 2", id="binary-power"),
    _same("up atan2 up", f"{UP} atan2 {UP}", id="binary-atan2"),
    _same("up == 1", f"{UP} == 1", id="comparison-filter"),
    _same("up != bool 1", f"{UP} != bool 1", id="comparison-bool"),
    _same("up > 0", f"{UP} > 0", id="comparison-greater"),
    _same("up < bool 1", f"{UP} < bool 1", id="comparison-less-bool"),
    _same("up >= 1", f"{UP} >= 1", id="comparison-greater-equal"),
    _same("up <= 1", f"{UP} <= 1", id="comparison-less-equal"),
    _same("up and http_requests_total", f"{UP} and {HTTP}", id="set-and"),
    _same("up or http_requests_total", f"{UP} or {HTTP}", id="set-or"),
    _same("up unless http_requests_total", f"{UP} unless {HTTP}", id="set-unless"),
    _same("up and on() http_requests_total", f"{UP} and on () {HTTP}", id="set-and-on-nothing"),
    _same("up or ignoring(job) http_requests_total", f"{UP} or ignoring (job) {HTTP}", id="set-or-ignoring"),
    _same(
        "up * on(job) group_left(mode) node_cpu_seconds_total",
        f"{UP} * on (job) group_left (mode) {IDLE}",
        id="group-left-on",
    ),
    _same(
        "node_cpu_seconds_total / ignoring(mode) group_right up",
        f"{IDLE} / ignoring (mode) group_right () {UP}",
        id="group-right-ignoring",
    ),
    _same("up == bool on(job) http_requests_total", f"{UP} == bool on (job) {HTTP}", id="comparison-bool-on"),
    _same("-up", f"-{UP}", id="unary-minus"),
    _same("-(up + 1)", f"-({UP} + 1)", id="unary-minus-parenthesised"),
    _same("1", "1", id="number-literal"),
    _same("-2.5", "-2.5", id="negative-number"),
    _same('"hello"', '"hello"', id="string-literal"),
    _same("(up)", f"({UP})", id="parentheses-kept"),
    _same("abs(up)", f"abs({UP})", id="call-abs"),
    _same("absent(secret)", f'absent({{__name__="secret",{NOTHING}}})', id="call-absent-of-invisible"),
    # absent() answers with the labels of the query's own selector: the rewrite's added ones are deleted
    _same(
        'absent(up{job="api"})',
        'label_replace(label_replace(absent({__name__="up",job="api",namespace="team-a"}), '
        '"namespace", "", "", ""), "job", "api", "", "")',
        id="call-absent",
    ),
    _same(
        "absent_over_time(up[5m])",
        f'label_replace(absent_over_time({UP}[5m]), "namespace", "", "", "")',
        id="call-absent-over-time",
    ),
    _same(
        'label_replace(up, "dst", "$1", "job", "(.*)")',
        f'label_replace({UP}, "dst", "$1", "job", "(.*)")',
        id="call-label-replace",
    ),
    _same(
        'label_join(up, "dst", ",", "job", "instance")',
        f'label_join({UP}, "dst", ",", "job", "instance")',
        id="call-label-join",
    ),
    _same(
        "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
        'histogram_quantile(0.9, sum by (le) (rate({__name__="http_request_duration_seconds_bucket",'
        'namespace="team-a"}[5m])))',
        id="call-histogram-quantile-over-rate-of-buckets",
    ),
    _same(
        "predict_linear(node_cpu_seconds_total[1h], 3600)",
        f"predict_linear({IDLE}[1h], 3600)",
        id="call-predict-linear",
    ),
    _same("holt_winters(up[1h], 0.5, 0.5)", f"holt_winters({UP}[1h], 0.5, 0.5)", id="call-holt-winters"),
    _same("timestamp(up)", f"timestamp({UP})", id="call-timestamp"),
    _same("vector(1)", "vector(1)", id="call-vector-no-selector"),
    _same("scalar(up)", f"scalar({UP})", id="call-scalar"),
    _same("time()", "time()", id="call-time"),
    _same("time() - timestamp(up)", f"time() - timestamp({UP})", id="call-time-minus-timestamp"),
    _same("vector(time())", "vector(time())", id="call-vector-of-time"),
    _same("clamp(up, 0, 1)", f"clamp({UP}, 0, 1)", id="call-clamp"),
    _same("clamp_max(up, 1)", f"clamp_max({UP}, 1)", id="call-clamp-max"),
    _same("round(up, 0.1)", f"round({UP}, 0.1)", id="call-round"),
    _same("sort_desc(up)", f"sort_desc({UP})", id="call-sort-desc"),
    _same("day_of_week()", "day_of_week()", id="call-without-optional-argument"),
    _same("day_of_week(timestamp(up))", f"day_of_week(timestamp({UP}))", id="nested-calls"),
    _same("quantile_over_time(0.9, up[5m])", f"quantile_over_time(0.9, {UP}[5m])", id="call-quantile-over-time"),
    _same("changes(up[1h])", f"changes({UP}[1h])", id="call-changes"),
    _same("resets(http_requests_total[1h])", f"resets({HTTP}[1h])", id="call-resets"),
    _same("deriv(up[5m])", f"deriv({UP}[5m])", id="call-deriv"),
    _same("irate(http_requests_total[5m])", f"irate({HTTP}[5m])", id="call-irate"),
    _same("increase(http_requests_total[1h])", f"increase({HTTP}[1h])", id="call-increase"),
    _same("delta(up[5m])", f"delta({UP}[5m])", id="call-delta"),
    _same("idelta(up[5m])", f"idelta({UP}[5m])", id="call-idelta"),
    _same("last_over_time(up[5m])", f"last_over_time({UP}[5m])", id="call-last-over-time"),
    _same("present_over_time(up[5m])", f"present_over_time({UP}[5m])", id="call-present-over-time"),
    _same("count_over_time(up[5m])", f"count_over_time({UP}[5m])", id="call-count-over-time"),
    _same("sum_over_time(up[5m])", f"sum_over_time({UP}[5m])", id="call-sum-over-time"),
    _same("avg_over_time(up[5m])", f"avg_over_time({UP}[5m])", id="call-avg-over-time"),
    _same("min_over_time(up[5m])", f"min_over_time({UP}[5m])", id="call-min-over-time"),
    _same("stddev_over_time(up[5m])", f"stddev_over_time({UP}[5m])", id="call-stddev-over-time"),
    _same("stdvar_over_time(up[5m])", f"stdvar_over_time({UP}[5m])", id="call-stdvar-over-time"),
    _same(
        "sum(rate(http_requests_total[5m])) / on() group_left sum(rate(http_requests_total[1h] offset 1d))",
        f"sum(rate({HTTP}[5m])) / on () group_left () sum(rate({HTTP}[1h] offset 1d))",
        id="ratio-on-group-left-with-offset",
    ),
]


@pytest.mark.parametrize(("policy", "query", "row_checks"), NODE_CASES)
def test_every_node_type_is_enforced_where_it_stands(policy: str, query: str, row_checks: Sequence[Check]) -> None:
    _run(policy, query, row_checks)


# -- the six steps of DESIGN.md, under all three policies -------------------------------------

EXACT = selects_exactly()

STEP_CASES = [
    # 1. contradiction: a selector that matches nothing, never a refusal, never S itself
    _row("secret", EXACT, has_expression(f'{{__name__="secret",{NOTHING}}}'), id="step1-unknown-name"),
    _row(
        'up{namespace="team-b"}',
        EXACT,
        has_expression(f'{{__name__="up",namespace="team-b",{NOTHING}}}'),
        id="step1-other-namespace",
    ),
    _row(
        "my_http_x",
        EXACT,
        has_expression(f'{{__name__="my_http_x",{NOTHING}}}'),
        id="step1-name-fails-anchored-rule-regex",
    ),
    _row(
        'node_cpu_seconds_total{mode="user"}',
        EXACT,
        has_expression(f'{{__name__="node_cpu_seconds_total",mode="user",{NOTHING}}}'),
        id="step1-label-value-conflicts-with-pattern-selector",
    ),
    _row(
        'up{env="dev"}',
        EXACT,
        has_expression(f'{{__name__="up",env="dev",{NOTHING}}}'),
        policy="selectors",
        id="step1-label-selector-conflict",
    ),
    _row(
        "http_requests_total",
        EXACT,
        has_expression(f'{{__name__="http_requests_total",{NOTHING}}}'),
        policy="selectors",
        id="step1-name-outside-label-selector-policy",
    ),
    _row(
        "secret or up",
        has_expression(f'{{__name__="secret",{NOTHING}}} or {UP}'),
        id="step1-or-returns-the-visible-part",
    ),
    # 2. entailment: S already inside the policy
    _row('up{namespace="team-a"}', EXACT, has_expression(UP), id="step2-selector-implies-rule"),
    _row(
        'node_cpu_seconds_total{cpu="0",mode="idle",namespace="team-a"}',
        EXACT,
        has_expression('{__name__="node_cpu_seconds_total",cpu="0",mode="idle",namespace="team-a"}'),
        id="step2-pattern-selector-implied",
    ),
    _row(
        'http_requests_total{namespace="team-a"}',
        EXACT,
        has_expression(HTTP),
        id="step2-name-matches-rule-regex",
    ),
    _row(
        'kube_pod_info{env="prod"}',
        EXACT,
        has_expression('{__name__="kube_pod_info",env="prod"}'),
        policy="selectors",
        id="step2-label-selector-implied",
    ),
    _row('up{namespace="team-a"}', EXACT, has_expression(UP), policy="merged", id="step2-merged-policy"),
    # 3. containment: up∧env∧ns lies inside up∧ns, http_.*∧env∧ns inside http_requests_total∧ns
    _row("up", EXACT, has_expression(UP), policy="merged", id="step3-narrower-rule-dropped"),
    _row("http_requests_total", EXACT, has_expression(HTTP), policy="merged", id="step3-regex-rule-dropped"),
    _row(
        'up{job="api"}',
        EXACT,
        has_expression('{__name__="up",job="api",namespace="team-a"}'),
        policy="merged",
        id="step3-with-extra-matcher",
    ),
    _row(
        'up{env="dev"}',
        EXACT,
        has_expression('{__name__="up",env="dev",namespace="team-a"}'),
        policy="merged",
        id="step3-only-the-unconditional-object-admits",
    ),
    # 4. one rule left: its matchers added
    _row("up", EXACT, has_expression(UP), id="step4-isolation-label-added"),
    _row("node_cpu_seconds_total", EXACT, has_expression(IDLE), id="step4-pattern-selector-added"),
    _row(
        '{__name__=~"http_.*"}',
        EXACT,
        has_expression('{__name__=~"http_.*",namespace="team-a"}'),
        id="step4-implied-regex-not-repeated",
    ),
    _row("up", EXACT, has_expression('{__name__="up",env="prod"}'), policy="selectors", id="step4-label-selector"),
    _row(
        'kube_pod_info{env=~"prod|dev"}',
        EXACT,
        has_expression('{__name__="kube_pod_info",env=~"prod|dev",env="prod"}'),
        policy="selectors",
        id="step4-label-selector-narrows-regex",
    ),
    _row(
        'app_info{version=~"x.*"}',
        EXACT,
        has_expression(r'{__name__="app_info",version=~"x.*",env="prod",version="x\"y\\z"}'),
        policy="selectors",
        id="step4-quoted-value-added-escaped",
    ),
    # 5. one label differing: one =~ alternation, values regex-escaped
    _row(
        "app_info",
        EXACT,
        has_expression(r'{__name__="app_info",env="prod",version=~"1\\.0\\+beta|\\(rc\\)|x\"y\\\\z"}'),
        policy="selectors",
        id="step5-values-regex-escaped-and-quoted",
    ),
    _row(
        "rate(app_info[5m])",
        EXACT,
        has_expression(r'rate({__name__="app_info",env="prod",version=~"1\\.0\\+beta|\\(rc\\)|x\"y\\\\z"}[5m])'),
        policy="selectors",
        id="step5-range-selector-needs-no-union",
    ),
    _row(
        "node_cpu_seconds_total",
        EXACT,
        has_expression('{__name__="node_cpu_seconds_total",env="prod",namespace="team-a",mode=~"idle|user"}'),
        policy="merged",
        id="step5-two-objects-merge-mode",
    ),
    _row(
        "absent_over_time(node_cpu_seconds_total[5m])",
        EXACT,
        has_expression(
            'label_replace(label_replace(absent_over_time({__name__="node_cpu_seconds_total",env="prod",'
            'namespace="team-a",mode=~"idle|user"}[5m]), "env", "", "", ""), "namespace", "", "", "")'
        ),
        policy="merged",
        id="step5-merge-allows-any-range-function",
    ),
    _row(
        '{mode="idle"}',
        EXACT,
        has_expression('{mode="idle",namespace="team-a",__name__=~"(?:http_.*)|node_cpu_seconds_total|up"}'),
        id="step5-names-merged-regex-grouped",
    ),
    _row(
        '{__name__=~"up|secret"}',
        EXACT,
        has_expression('{__name__=~"up|secret",namespace="team-a",__name__=~"(?:http_.*)|up"}'),
        id="step5-after-step1-drops-a-rule",
    ),
    # 6. several rules: a union for instant vectors, distribution over per-series range functions
    _row('{__name__=~".+"}', EXACT, has_expression(_any_of(EVERYTHING)), id="step6-union-of-three"),
    _row('{job="api"}', EXACT, has_expression(_any_of('{job="api"}')), id="step6-union-without-name"),
    _row(
        '{__name__=~"http_.*"}',
        EXACT,
        has_expression(
            _union(
                '{__name__=~"http_.*",__name__="http_requests_total",namespace="team-a"}',
                '{__name__=~"http_.*",env="prod",namespace="team-a"}',
            )
        ),
        policy="merged",
        id="step6-rules-differ-in-two-labels",
    ),
    _row(
        'sum by (job) ({__name__=~"http_.*"})',
        has_expression(
            "sum by (job) ("
            + _union(
                '{__name__=~"http_.*",__name__="http_requests_total",namespace="team-a"}',
                '{__name__=~"http_.*",env="prod",namespace="team-a"}',
            )
            + ")"
        ),
        policy="merged",
        id="step6-union-under-aggregation",
    ),
    _row(
        '{__name__=~".+"} offset 5m',
        has_expression(
            _union(
                '{__name__=~".+",__name__="node_cpu_seconds_total",mode="idle",namespace="team-a"} offset 5m',
                '{__name__=~".+",__name__="up",namespace="team-a"} offset 5m',
                '{__name__=~".+",__name__=~"http_.*",namespace="team-a"} offset 5m',
            )
        ),
        id="step6-each-branch-keeps-offset",
    ),
    _row(
        '-{__name__=~".+"}',
        has_expression("-" + _any_of(EVERYTHING)),
        id="step6-union-under-unary-minus",
    ),
    _row(
        '{__name__=~".+"}[5m:1m]',
        has_expression(_any_of(EVERYTHING) + "[5m:1m]"),
        id="step6-union-inside-subquery",
    ),
    _row(
        'max_over_time({__name__=~".+"}[5m:1m] @ end())',
        has_expression("max_over_time(" + _any_of(EVERYTHING) + "[5m:1m] @ end())"),
        id="step6-union-inside-subquery-at-end",
    ),
    _row(
        'rate({__name__=~".+"}[5m])',
        has_expression(
            _tagged_union(
                'rate({__name__=~".+",__name__="up",namespace="team-a"}[5m])',
                'rate({__name__=~".+",__name__=~"http_.*",namespace="team-a"}[5m])',
                'rate({__name__=~".+",__name__="node_cpu_seconds_total",mode="idle",namespace="team-a"}[5m])',
            )
        ),
        id="step6-rate-distributed",
    ),
    _row(
        'quantile_over_time(0.9, {__name__=~"http_.*"}[5m])',
        has_expression(
            _tagged_union(
                'quantile_over_time(0.9, {__name__=~"http_.*",__name__="http_requests_total",namespace="team-a"}[5m])',
                f'quantile_over_time(0.9, {{__name__=~"http_.*",{PROD_NOT_HTTP}}}[5m])',
            )
        ),
        policy="merged",
        id="step6-quantile-over-time-distributed-keeps-parameter",
    ),
    _row(
        'predict_linear({__name__=~"http_.*"}[1h] offset 1h, 3600)',
        has_expression(
            _tagged_union(
                'predict_linear({__name__=~"http_.*",__name__="http_requests_total",namespace="team-a"}[1h] offset 1h,'
                " 3600)",
                f'predict_linear({{__name__=~"http_.*",{PROD_NOT_HTTP}}}[1h] offset 1h, 3600)',
            )
        ),
        policy="merged",
        id="step6-predict-linear-distributed-keeps-offset",
    ),
    _row(
        'holt_winters({__name__=~"http_.*"}[1h], 0.5, 0.5) > 1',
        has_expression(
            _tagged_union(
                'holt_winters({__name__=~"http_.*",__name__="http_requests_total",namespace="team-a"}[1h], 0.5, 0.5)',
                f'holt_winters({{__name__=~"http_.*",{PROD_NOT_HTTP}}}[1h], 0.5, 0.5)',
            )
            + " > 1"
        ),
        policy="merged",
        id="step6-distributed-call-in-comparison",
    ),
    _row(
        'sum(rate({job="api"}[5m])) by (job)',
        has_expression(
            "sum by (job) ("
            + _tagged_union(
                'rate({job="api",__name__="up",namespace="team-a"}[5m])',
                'rate({job="api",__name__=~"http_.*",namespace="team-a"}[5m])',
                'rate({job="api",__name__="node_cpu_seconds_total",mode="idle",namespace="team-a"}[5m])',
            )
            + ")"
        ),
        id="step6-distributed-under-aggregation",
    ),
    _row(
        'last_over_time({__name__=~".+"}[5m])',
        has_expression(
            _union(
                'last_over_time({__name__=~".+",__name__="node_cpu_seconds_total",mode="idle",namespace="team-a"}[5m])',
                'last_over_time({__name__=~".+",__name__="up",namespace="team-a"}[5m])',
                'last_over_time({__name__=~".+",__name__=~"http_.*",namespace="team-a"}[5m])',
            )
        ),
        id="step6-last-over-time-keeps-names-through-the-union",
    ),
    _row(
        'timestamp({__name__=~".+"} offset 1m)',
        has_expression(
            _tagged_union(
                'timestamp({__name__=~".+",__name__="up",namespace="team-a"} offset 1m)',
                'timestamp({__name__=~".+",__name__=~"http_.*",namespace="team-a"} offset 1m)',
                f"timestamp({{__name__=~\".+\",{IDLE[1:-1]}}} offset 1m)",
            )
        ),
        id="step6-timestamp-reads-sample-times-of-each-branch",
    ),
    _row(
        'timestamp(({__name__=~"http_.*"}))',
        has_expression(
            _tagged_union(
                'timestamp({__name__=~"http_.*",__name__="http_requests_total",namespace="team-a"})',
                f'timestamp({{__name__=~"http_.*",{PROD_NOT_HTTP}}})',
            )
        ),
        policy="merged",
        id="step6-timestamp-looks-through-parentheses-overlapping-rules-made-disjoint",
    ),
    _row("timestamp((up))", has_expression(f"timestamp(({UP}))"), id="timestamp-of-one-branch-unchanged"),
    # 6. a range selector that would need a union anywhere else: 403 naming it
    _row(
        '{__name__=~".+"}[5m]',
        error_is(Forbidden, '{__name__=~".+"}[5m]', "narrow"),
        id="step6-bare-range-selector-forbidden",
    ),
    _row(
        '{__name__=~".+"}[5m]',
        error_is(Forbidden, '{__name__=~".+"}[5m]'),
        policy="merged",
        id="step6-bare-range-selector-forbidden-two-label-rules",
    ),
    _row(
        '{__name__=~"http_.*"}[5m]',
        error_is(Forbidden, '{__name__=~"http_.*"}[5m]'),
        policy="merged",
        id="step6-range-selector-rules-differ-in-name-and-env",
    ),
    _row(
        'absent_over_time({__name__=~".+"}[5m])',
        error_is(Forbidden, '{__name__=~".+"}[5m]'),
        id="step6-absent-over-time-is-not-per-series",
    ),
    _row(
        'absent_over_time({job="api"}[5m])',
        error_is(Forbidden, '{job="api"}[5m]'),
        policy="selectors",
        id="step6-absent-over-time-label-selector-policy",
    ),
    _row(
        '{job="api"}[5m] offset 1h',
        error_is(Forbidden, '{job="api"}[5m]'),
        policy="merged",
        id="step6-range-selector-with-offset-forbidden",
    ),
]


@pytest.mark.parametrize(("policy", "query", "row_checks"), STEP_CASES)
def test_each_restriction_step_writes_the_expected_selector(
    policy: str, query: str, row_checks: Sequence[Check]
) -> None:
    _run(policy, query, row_checks)


# -- absent(): the answer's labels are those of the query, not of the rewrite -------------------

_LIKE_ORIGINAL = answers_absent_like_the_original()


def _absent_row(query: str, *row_checks: Check, policy: str = "isolated", id: str) -> Any:
    return pytest.param(policy, query, checks(_LIKE_ORIGINAL, *row_checks), id=id)


ABSENT_CASES = [
    _absent_row('absent(up{job="api"})', id="equality-label-kept-added-namespace-deleted"),
    _absent_row('absent(up{namespace="team-a"})', id="own-namespace-label-kept"),
    _absent_row('absent(up{namespace=~"team-.*"})', id="regex-namespace-gives-no-label"),
    _absent_row('absent(up{namespace="team-b"})', id="other-namespace-keeps-its-label"),
    _absent_row('absent(up{job="api",job="api"})', id="label-set-twice-gives-none"),
    _absent_row('absent(up{job!="x",job="api"})', id="matcher-before-equality-ignored"),
    _absent_row('absent(up{job=~"api",job="api"})', id="regex-before-equality-ignored"),
    _absent_row('absent(up{job=""})', id="empty-value-is-no-label"),
    _absent_row('absent(up{job="api"} offset 1h)', id="offset-looked-through"),
    _absent_row("absent(up @ end())", id="at-end-looked-through"),
    _absent_row('absent_over_time(up{job="api"}[5m])', id="absent-over-time"),
    _absent_row('absent(secret{job="x"})', id="invisible-metric"),
    _absent_row('absent({__name__=~".+",job="api"})', id="union-argument"),
    _absent_row("absent(sum(up))", id="aggregation-argument-gives-no-label"),
    _absent_row('absent_over_time((up{job="api"})[5m:])', id="subquery-argument-gives-no-label"),
    _absent_row('absent(up{job="api"})', policy="selectors", id="label-selector-deleted"),
    _absent_row("absent_over_time(node_cpu_seconds_total[5m])", policy="merged", id="merged-rules-labels-deleted"),
    _absent_row('absent(up{job="api",job!="x"})', id="later-matcher-drops-label-regression"),
    _absent_row('absent_over_time(up{job="api",job=~"a.*"}[5m])', id="later-regex-drops-label-regression"),
    _absent_row("absent((up))", id="parentheses-looked-through-namespace-deleted-regression"),
    _absent_row(
        'absent((up{job="api"}))', policy="selectors", id="parentheses-looked-through-label-selector-deleted-regression"
    ),
]


@pytest.mark.parametrize(("policy", "query", "row_checks"), ABSENT_CASES)
def test_absent_answers_with_the_labels_of_the_query_itself(
    policy: str, query: str, row_checks: Sequence[Check]
) -> None:
    _run(policy, query, row_checks)


# -- adversarial queries -----------------------------------------------------------------------


def _selector_count(count: int) -> Check:
    def check(outcome: Any) -> None:
        assert len(selectors_of(parse_promql(outcome.accepted()))) == count

    return check


_OVER = MAX_NESTING + 1
_TOO_MANY = f"more than the {MAX_NESTING} allowed"
_DEEP = MAX_NESTING // 2
# The output must stay under the limit too, so that it can be enforced once more: a union of
# the isolated policy's three rules (with the label functions that keep it exact) counts about
# 25 operators and brackets, strings included, and a group of the four selectors below about 17.
_UNIONS = MAX_NESTING // 30
_GROUPS = MAX_NESTING // 40

ADVERSARIAL_CASES = [
    _row(
        'up{namespace="team-a",namespace="team-b"}',
        EXACT,
        has_expression(f'{{__name__="up",namespace="team-a",namespace="team-b",{NOTHING}}}'),
        id="conflicting-namespace-matchers",
    ),
    _row(
        'up{namespace="team-b",namespace=~"team-a|team-b"}',
        EXACT,
        has_expression(f'{{__name__="up",namespace="team-b",namespace=~"team-a|team-b",{NOTHING}}}'),
        id="other-namespace-beside-regex-covering-own",
    ),
    _row(
        'up{namespace=~".*"}',
        EXACT,
        has_expression('{__name__="up",namespace=~".*",namespace="team-a"}'),
        id="namespace-match-anything",
    ),
    _row(
        '{namespace=~".+"}',
        EXACT,
        has_expression(_any_of('{namespace=~".+"}')),
        id="namespace-match-any-non-empty-only",
    ),
    _row(
        'up{namespace=~"team-a|team-b"}',
        EXACT,
        has_expression('{__name__="up",namespace=~"team-a|team-b",namespace="team-a"}'),
        id="namespace-regex-covering-two",
    ),
    _row(
        'up{namespace!="x"}',
        EXACT,
        has_expression('{__name__="up",namespace!="x",namespace="team-a"}'),
        id="namespace-not-equal-other",
    ),
    _row(
        'up{namespace!="team-a"}',
        EXACT,
        has_expression(f'{{__name__="up",namespace!="team-a",{NOTHING}}}'),
        id="namespace-not-equal-own",
    ),
    _row(
        'up{namespace!~"team-a"}',
        EXACT,
        has_expression(f'{{__name__="up",namespace!~"team-a",{NOTHING}}}'),
        id="namespace-not-regex-own",
    ),
    _row(
        'up{namespace=""}',
        EXACT,
        has_expression(f'{{__name__="up",namespace="",{NOTHING}}}'),
        id="namespace-missing",
    ),
    _row('{__name__=~".+"}', EXACT, id="name-match-any"),
    _row('{__name__!=""}', EXACT, id="name-not-empty"),
    _row('{__name__=~".*",job="api"}', EXACT, id="name-match-anything-with-label"),
    _row('{__name__="up",__name__="secret"}', EXACT, id="two-names"),
    _row('{__name__="sum"}', EXACT, id="keyword-name"),
    _row(
        '{__name__=~"up|secret"} or {__name__=~"secret|up"}',
        no_error(),
        id="or-of-regex-names-each-restricted",
    ),
    _row(
        'label_replace(up, "namespace", "team-b", "", "")',
        has_expression(f'label_replace({UP}, "namespace", "team-b", "", "")'),
        id="label-replace-renaming-namespace-selects-own-only",
    ),
    _row(
        'label_replace({__name__="secret",namespace="team-b"}, "namespace", "team-a", "", "")',
        has_expression(
            f'label_replace({{__name__="secret",namespace="team-b",{NOTHING}}}, "namespace", "team-a", "", "")'
        ),
        id="label-replace-disguising-other-namespace",
    ),
    _row(
        'label_join(secret, "namespace", "", "namespace")',
        has_expression(f'label_join({{__name__="secret",{NOTHING}}}, "namespace", "", "namespace")'),
        id="label-join-onto-namespace",
    ),
    _row("up or secret", has_expression(f'{UP} or {{__name__="secret",{NOTHING}}}'), id="or-with-invisible"),
    _row("up unless secret", has_expression(f'{UP} unless {{__name__="secret",{NOTHING}}}'), id="unless-invisible"),
    _row("up and on() secret", has_expression(f'{UP} and on () {{__name__="secret",{NOTHING}}}'), id="and-on-none"),
    _row(
        'vector(1) or on() {namespace="team-b"}',
        has_expression(f'vector(1) or on () {{namespace="team-b",{NOTHING}}}'),
        id="or-on-none-other-namespace",
    ),
    _row(
        'sum(up) or on() sum({__name__=~".+"})',
        has_expression(f"sum({UP}) or on () sum({_any_of(EVERYTHING)})"),
        id="or-on-none-with-everything",
    ),
    _row(
        'max_over_time({namespace="team-b",__name__=~".+"}[1h:1m] @ end())',
        has_expression(f'max_over_time({{namespace="team-b",__name__=~".+",{NOTHING}}}[1h:1m] @ end())'),
        id="subquery-at-end-other-namespace",
    ),
    _row(
        'up{job="a\\"b"}',
        has_expression(r'{__name__="up",job="a\"b",namespace="team-a"}'),
        _selector_count(1),
        id="value-with-escaped-quote",
    ),
    _row(
        "up{job='it\\'s'}",
        has_expression('{__name__="up",job="it\'s",namespace="team-a"}'),
        id="single-quoted-value-with-quote",
    ),
    _row(
        'up{job="back\\\\slash"}',
        has_expression(r'{__name__="up",job="back\\slash",namespace="team-a"}'),
        id="value-with-backslash",
    ),
    _row(
        'up{job="new\\nline"}',
        has_expression(r'{__name__="up",job="new\nline",namespace="team-a"}'),
        id="value-with-newline",
    ),
    _row(
        'up{job="}{"}',
        has_expression('{__name__="up",job="}{",namespace="team-a"}'),
        _selector_count(1),
        id="value-with-braces",
    ),
    _row(
        'up{job="`tick`"}',
        has_expression('{__name__="up",job="`tick`",namespace="team-a"}'),
        id="value-with-backticks",
    ),
    _row(
        'up{job=`a"b}`}',
        has_expression(r'{__name__="up",job="a\"b}",namespace="team-a"}'),
        _selector_count(1),
        id="raw-string-with-quote-and-brace",
    ),
    _row(
        "up{job=`a\\nb`}",
        has_expression(r'{__name__="up",job="a\\nb",namespace="team-a"}'),
        id="raw-string-backslash-n-stays-two-characters",
    ),
    _row(
        "up{job=`line\nbreak`}",
        has_expression(r'{__name__="up",job="line\nbreak",namespace="team-a"}'),
        id="raw-string-with-real-newline",
    ),
    _row(
        'up{job="\\"} or {__name__=~\\".+\\"} or up{b=\\""}',
        has_expression(r'{__name__="up",job="\"} or {__name__=~\".+\"} or up{b=\"",namespace="team-a"}'),
        _selector_count(1),
        id="injection-attempt-stays-one-value",
    ),
    _row(
        '{__name__="up\\"} or secret{a=\\"b"}',
        has_expression(rf'{{__name__="up\"}} or secret{{a=\"b",{NOTHING}}}'),
        _selector_count(1),
        id="injection-attempt-in-name",
    ),
    _row(
        'up{job="\\u00e9\\U0001F642\\ufffd\\x00\\u2028"}',
        has_expression(r'{__name__="up",job="é🙂\ufffd\x00\u2028",namespace="team-a"}'),
        id="value-with-unicode-and-control-escapes",
    ),
    _row('up{job="\\x80"}', error_is(BadRequest, "\\x80"), id="high-byte-escape-refused"),
    _row("up{job=`a\\`}", error_is(BadRequest, "backtick"), id="raw-string-ending-in-backslash-refused"),
    _row('up{__name__="secret"}', error_is(BadRequest), id="name-set-twice-refused"),
    _row('{namespace=~".*"}', error_is(BadRequest, "non-empty matcher"), id="only-empty-matchers-refused"),
    _row('up{job=~"("}', error_is(BadRequest), id="invalid-regex-refused"),
    _row("up{job=~'(?<n>a)'}", error_is(BadRequest, "(?<name>"), id="named-group-regex-refused"),
    # \Q...\E is literal text to Go's regexp (Prometheus); the parser library's regex engine lacks it
    _row(
        'up{job=~"\\\\Qa.b\\\\E"}',
        has_expression('{__name__="up",job=~"a\\\\.b",namespace="team-a"}'),
        id="quoted-literal-regex-spelled-out",
    ),
    _row(
        "up{job!~`x\\Q(*)|\\E+`}",
        has_expression('{__name__="up",job!~"x\\\\(\\\\*\\\\)\\\\|+",namespace="team-a"}'),
        id="quoted-literal-in-raw-string-repetition-binds-last-character",
    ),
    _row(
        "up{job=~'\\\\Q\\\\d\"\\\\E'}",
        has_expression('{__name__="up",job=~"\\\\\\\\d\\"",namespace="team-a"}'),
        id="quoted-literal-escapes-are-literal",
    ),
    _row(
        'up{job=~"\\\\Qa"}',
        error_is(BadRequest),
        id="quoted-literal-without-end-refused-as-prometheus-does",
    ),
    _row(
        'up{job=~"[\\\\Q]"}',
        error_is(BadRequest),
        id="quoted-literal-inside-brackets-refused-as-go-does",
    ),
    _row(
        'label_replace(up, "a", "$1", "b", "\\\\Qx\\\\E")',
        has_expression(f'label_replace({UP}, "a", "$1", "b", "\\\\Qx\\\\E")'),
        id="quoted-literal-outside-matchers-left-to-prometheus",
    ),
    _row("sum(", error_is(BadRequest), id="unclosed-refused"),
    _row("up @ -100", error_is(BadRequest, "negative"), id="negative-at-refused"),
    _row("(" * _OVER + "up" + ")" * _OVER, error_is(BadRequest, _TOO_MANY), id="deep-parentheses-refused"),
    _row("-" * _OVER + "up", error_is(BadRequest, _TOO_MANY), id="deep-unary-minus-refused"),
    _row(" + ".join(["up"] * (_OVER + 1)), error_is(BadRequest, _TOO_MANY), id="long-sum-refused"),
    _row("abs(" * _OVER + "up" + ")" * _OVER, error_is(BadRequest, _TOO_MANY), id="deep-calls-refused"),
    _row("-" * _OVER + "1", error_is(BadRequest, _TOO_MANY), id="deep-unary-minus-number-refused"),
    # brackets inside a string are characters, not depth (a Grafana regex variable holds hundreds)
    _row(
        'up{job="' + "(" * 2000 + '"}',
        has_expression('{__name__="up",job="' + "(" * 2000 + '",namespace="team-a"}'),
        id="brackets-in-a-string-are-only-characters",
    ),
    _row("up{job=`" + "(" * 2000 + "`}", error_is(BadRequest, _TOO_MANY), id="brackets-in-a-raw-string-still-counted"),
    _row(
        "abs(" * _DEEP + "up" + ")" * _DEEP,
        has_expression("abs(" * _DEEP + UP + ")" * _DEEP),
        id="deep-calls-below-limit-accepted",
    ),
    _row(
        " + ".join([EVERYTHING] * _UNIONS),
        has_expression(" + ".join([_any_of(EVERYTHING)] * _UNIONS)),
        _selector_count(3 * _UNIONS),
        id="long-query-each-selector-a-union",
    ),
    _row(
        " + ".join(["up", "http_requests_total", "node_cpu_seconds_total", "secret"] * _GROUPS),
        has_expression(" + ".join([UP, HTTP, IDLE, f'{{__name__="secret",{NOTHING}}}'] * _GROUPS)),
        _selector_count(4 * _GROUPS),
        id="long-query-of-many-selectors",
    ),
    _row(
        'up{job="' + "x" * 50_000 + '"}',
        has_expression('{__name__="up",job="' + "x" * 50_000 + '",namespace="team-a"}'),
        id="very-long-value",
    ),
]


@pytest.mark.parametrize(("policy", "query", "row_checks"), ADVERSARIAL_CASES)
def test_adversarial_query_cannot_escape_the_policy(policy: str, query: str, row_checks: Sequence[Check]) -> None:
    _run(policy, query, row_checks)


def test_long_accepted_query_may_grow_past_the_input_limit_yet_every_selector_is_restricted() -> None:
    """Each union multiplies a selector's matchers, so the output may hold more operators than
    parse_promql accepts from a tenant: it cannot be enforced a second time, but Prometheus has
    no such limit. The output is read here with the library itself, which its depth allows."""
    count = MAX_NESTING // 3 - 1  # each "{__name__=~".+"} + " counts "=", "+" and "+"
    query = " + ".join([EVERYTHING] * count)
    outcome = enforce(query, POLICIES["isolated"])
    output = outcome.accepted()
    with pytest.raises(PromQLUnsupported, match=_TOO_MANY):
        parse_promql(output)
    tree = promql_parser.parse(output)
    check_supported(tree)
    assert format_expr(tree) == output
    found = selectors_of(tree)
    assert len(found) == 3 * count
    for selector in found:
        assert leak_witness(selector, POLICIES["isolated"]) is None, selector


# -- every policy: the same queries, accepted within the policy or refused with 403 ------------

CROSS_QUERIES = [
    pytest.param("up", id="name"),
    pytest.param('{__name__=~".+"}', id="everything"),
    pytest.param('{job="api"}', id="label-only"),
    pytest.param('rate({job="api"}[5m])', id="rate-label-only"),
    pytest.param('sum by (namespace) (rate({__name__=~".+"}[5m]))', id="sum-rate-everything"),
    pytest.param('topk(3, {__name__=~"http_.*|kube_.*"})', id="topk-regex-names"),
    pytest.param('histogram_quantile(0.9, sum by (le) (rate({__name__=~".+_bucket"}[5m])))', id="histogram"),
    pytest.param("up / on(job) group_left app_info", id="group-left-info"),
    pytest.param('count_values("v", node_cpu_seconds_total)', id="count-values"),
    pytest.param('absent_over_time({__name__=~"kube_.*"}[5m])', id="absent-over-time-regex"),
    pytest.param('{__name__=~"up|app_info"}[5m]', id="range-selector-two-names"),
    pytest.param('max_over_time({__name__=~".+"}[1h:5m] @ end())', id="subquery-at-end"),
    pytest.param(
        'label_replace({__name__=~".+",namespace!="team-a"}, "namespace", "team-a", "", "")', id="label-replace"
    ),
    pytest.param('{__name__=~".+"} unless on() up', id="unless-on"),
    pytest.param('{version=~".+"}', id="version-any"),
    pytest.param('app_info{version!="(rc)"}', id="version-not-equal"),
]


@pytest.mark.parametrize("query", CROSS_QUERIES)
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_any_policy_accepts_within_policy_or_refuses_with_403(policy: str, query: str) -> None:
    outcome = enforce(query, POLICIES[policy])
    if outcome.error is not None:
        error_is(Forbidden, "narrow")(outcome)
        return
    for check in ALWAYS:
        check(outcome)


# -- generated queries -------------------------------------------------------------------------

_TRICKY = ['"', "\\", "`", "'", "\n", "}", "{", ",", "=~", " or ", "\ufffd", "é", "🙂", "\x00", "\u2028", '\\"']
_KNOWN = ["team-a", "team-b", "idle", "user", "prod", "dev", "api", "1.0+beta", "(rc)", 'x"y\\z', ""]
label_values = st.one_of(
    st.sampled_from(_KNOWN),
    st.lists(st.one_of(st.text(max_size=4), st.sampled_from(_TRICKY)), max_size=4).map("".join),
)
regex_values = st.one_of(
    st.sampled_from([".*", ".+", "team-.*", "idle|user", "http_.*", "(?s:.*)", "a|b", "[^t].*", "prod|dev"]),
    label_values.map(quote_meta),
)
label_names = st.one_of(
    st.sampled_from(["namespace", "job", "mode", "env", "version", "instance", "on", "bool"]),
    st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,5}", fullmatch=True).filter(lambda n: n != "__name__"),
)
metric_names = st.sampled_from(
    ["up", "http_requests_total", "node_cpu_seconds_total", "secret", "app_info", "kube_pod_info", "sum", "by"]
)
_SHORT = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(value: str, style: str) -> str:
    """Quote ``value`` as PromQL, by the test's own rules, in one of several spellings."""
    if style == "raw" and "`" not in value and "\\" not in value:
        return f"`{value}`"
    quote_char = "'" if style == "single" else '"'
    out = [quote_char]
    for char in value:
        code = ord(char)
        if char == quote_char:
            out.append("\\" + char)
        elif style == "unicode" and not (char.isascii() and char.isalnum()):
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        elif style == "octal" and code < 0x80 and not char.isalnum():
            out.append(f"\\{code:03o}")
        elif char in _SHORT:
            out.append(_SHORT[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(char)
    out.append(quote_char)
    return "".join(out)


@st.composite
def selector_parts(draw: st.DrawFn) -> tuple[str, str]:
    """A selector's text and its modifiers, quoted in one of the spellings of ``quote``."""
    style = draw(st.sampled_from(["raw", "double", "single", "unicode", "octal"]))
    matchers = []
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
        value = draw(regex_values if "~" in op else label_values)
        matchers.append(f"{draw(label_names)}{op}{quote(value, style)}")
    name = draw(st.one_of(st.none(), metric_names.filter(lambda n: n not in {"sum", "by"})))
    if name is None:
        first = draw(st.one_of(metric_names.map(lambda n: f"__name__={quote(n, style)}"), st.just('__name__=~".+"')))
        matchers.insert(0, first)
    modifiers = draw(st.sampled_from(["", " offset 5m", " offset -1h", " @ 100", " @ end()", " @ start() offset 1m"]))
    return (name or "") + ("{" + ",".join(matchers) + "}" if matchers else ""), modifiers


def selectors() -> st.SearchStrategy[str]:
    return selector_parts().map("".join)


@st.composite
def ranges(draw: st.DrawFn, vectors: st.SearchStrategy[str]) -> str:
    """A matrix: a range selector, or a subquery of a vector expression."""
    window = draw(st.sampled_from(["5m", "1h", "90s"]))
    if draw(st.booleans()):
        body, modifiers = draw(selector_parts())
        return f"{body}[{window}]{modifiers}"
    step = draw(st.sampled_from(["", "1m"]))
    return f"({draw(vectors)})[{window}:{step}]" + draw(st.sampled_from(["", " @ end()", " offset 10m"]))


_RANGE_FUNCTIONS = [
    "rate({})", "irate({})", "increase({})", "delta({})", "idelta({})", "deriv({})", "changes({})",
    "resets({})", "avg_over_time({})", "max_over_time({})", "count_over_time({})", "last_over_time({})",
    "present_over_time({})", "absent_over_time({})", "quantile_over_time(0.5, {})",
    "predict_linear({}, 60)", "holt_winters({}, 0.5, 0.5)",
]  # fmt: skip
_VECTOR_FUNCTIONS = [
    "abs({})", "ceil({})", "timestamp({})", "sort_desc({})", "absent({})", "clamp({}, 0, 1)", "round({}, 0.5)",
    "histogram_quantile(0.9, {})", 'label_replace({}, "namespace", "$1", "job", "(.*)")',
    'label_join({}, "dst", ",", "namespace", "job")', "day_of_week({})", "vector(scalar({}))", "-{}", "({})",
]  # fmt: skip
_AGGREGATIONS = [
    "sum{g}({})", "avg{g}({})", "min{g}({})", "max{g}({})", "count{g}({})", "group{g}({})", "stddev{g}({})",
    "stdvar{g}({})", "topk{g}(3, {})", "bottomk{g}(1, {})", "quantile{g}(0.9, {})", 'count_values{g}("v", {})',
]  # fmt: skip
_GROUPINGS = ["", " by (job)", " without (namespace)", " by ()", " by (namespace, le)"]
_BINARY = [
    "+", "-", "*", "/", "%", "^", "atan2", "==", "!= bool", "> bool", "<", "and", "or", "unless",
    "and on ()", "or on (namespace)", "unless ignoring (job)", "* on (job) group_left (mode)",
    "/ ignoring (mode) group_right", "== bool on ()",
]  # fmt: skip


def _aggregate(template: str, grouping: str, operand: str) -> str:
    return template.format(operand, g=grouping)


def _extend(vectors: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(str.format, st.sampled_from(_RANGE_FUNCTIONS), ranges(vectors)),
        st.builds(str.format, st.sampled_from(_VECTOR_FUNCTIONS), vectors),
        st.builds(
            lambda t, g, v: t.format(v, g=g), st.sampled_from(_AGGREGATIONS), st.sampled_from(_GROUPINGS), vectors
        ),
        st.builds("{} {} {}".format, vectors, st.sampled_from(_BINARY), vectors),
        st.builds("{} {} 2".format, vectors, st.sampled_from(["*", ">", "^", "-"])),
    )


# Deferred rather than st.recursive, whose trees mostly hold a single selector.
vector_expressions: st.SearchStrategy[str] = st.deferred(
    lambda: st.one_of(selectors(), _extend(vector_expressions), _extend(vector_expressions))
)
queries = st.one_of(vector_expressions, ranges(vector_expressions))


def test_generated_queries_parse_back_to_the_rewrite_and_carry_the_policy() -> None:
    seen: collections.Counter[str] = collections.Counter()

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(policy=st.sampled_from(sorted(POLICIES)), query=queries)
    def run(policy: str, query: str) -> None:
        outcome = enforce(query, POLICIES[policy])
        if outcome.error is not None:
            seen[f"{type(outcome.error).__name__}: {outcome.error.message[:60]}"] += 1
            return
        seen["accepted"] += 1
        for check in (parses_back(), carries_policy(), keeps_user_matchers()):
            check(outcome)

    run()
    total = sum(seen.values())
    assert seen["accepted"] >= total / 2, f"too many refused: {seen.most_common(8)}"


@settings(max_examples=300, deadline=None, database=None)
@given(policy=st.sampled_from(sorted(POLICIES)), selector=selectors())
def test_generated_selector_becomes_exactly_its_visible_part(policy: str, selector: str) -> None:
    outcome = enforce(selector, POLICIES[policy])
    if outcome.error is None:
        for check in (selects_exactly(), parses_back()):
            check(outcome)
    else:
        error_is(BadRequest)(outcome)  # an instant selector is never refused for the policy's sake


# -- regexes and newlines: Prometheus 2.42 anchors as ^(?:re)$, where "." skips a newline ---------


def test_rule_with_dot_star_does_not_admit_a_value_with_a_newline() -> None:
    policy = AccessPolicy.of(
        "team-a", rules_for(['{__name__="up",job=~".*"}'], label_selectors={}, isolation_namespace="team-a")
    )
    outcome = enforce("up", policy)
    assert not policy.admits({"__name__": "up", "job": "a\nb", "namespace": "team-a"})
    carries_policy()(outcome)


def test_match_nothing_selector_matches_no_name_even_with_a_newline() -> None:
    policy = POLICIES["isolated"]
    outcome = enforce('{job="x",namespace="team-b"}', policy)
    (selector,) = selectors_of(parse_promql(outcome.accepted()))
    series = {"__name__": "secret\nx", "job": "x", "namespace": "team-b"}
    assert not policy.admits(series)
    assert not all(m.matches(series.get(m.name, "")) for m in selector), f"{outcome.output} selects {series!r}"


def test_a_union_needing_too_many_disjoint_parts_is_refused_where_names_are_dropped() -> None:
    """rate() drops the name, so its union needs disjoint parts; eight overlapping rules need too many."""
    rules = rules_for([f'{{l{n}="x",m{n}="y"}}' for n in range(8)], label_selectors={}, isolation_namespace=None)
    policy = AccessPolicy.of("team-c", rules, isolated=False)
    with pytest.raises(Forbidden, match="disjoint parts"):
        enforce_query('rate({__name__=~".+"}[5m])', policy)
    with pytest.raises(Forbidden, match="disjoint parts"):
        enforce_query('timestamp({__name__=~".+"})', policy)
    assert enforce_query('last_over_time({__name__=~".+"}[5m])', policy).count("last_over_time(") == 8
    assert enforce_query('{__name__=~".+"}', policy).count("label_join(") == 8
