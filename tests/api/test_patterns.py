"""Tests for api/patterns.py and api/matchers.py: the three pattern forms, anchoring, the
selectors the parser refuses, and that no input makes the parser crash."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from survival import assert_no_signal, run_python

from mtproxy.api import (
    ISOLATION_LABEL,
    LabelMatcher,
    MatchOp,
    PatternError,
    Rule,
    parse_pattern,
    parse_selector,
    rule_for_pattern,
    rules_for,
)
from mtproxy.proxy.promql_parity import PromQLUnsupported, parse_promql

EQ, NE, RE, NRE = MatchOp.EQUAL, MatchOp.NOT_EQUAL, MatchOp.REGEX, MatchOp.NOT_REGEX


def m(name: str, op: MatchOp, value: str) -> LabelMatcher:
    return LabelMatcher(name=name, op=op, value=value)


def rule(pattern: str, **label_selectors: str) -> Rule:
    return rule_for_pattern(pattern, label_selectors=label_selectors, isolation_namespace=None)


def series(name: str, **labels: str) -> dict[str, str]:
    return {"__name__": name, **labels}


# --- the three forms -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param("up", (m("__name__", EQ, "up"),), id="short-name"),
        pytest.param("http_requests_total", (m("__name__", EQ, "http_requests_total"),), id="name-with-underscores"),
        pytest.param("node_cpu:rate5m", (m("__name__", EQ, "node_cpu:rate5m"),), id="recording-rule-colon"),
        pytest.param("_private", (m("__name__", EQ, "_private"),), id="leading-underscore"),
        pytest.param(" up\n", (m("__name__", EQ, "up"),), id="surrounding-whitespace-trimmed"),
    ],
)
def test_a_valid_metric_name_is_an_exact_match(pattern: str, expected: tuple[LabelMatcher, ...]) -> None:
    assert parse_pattern(pattern) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param("http_.*", (m("__name__", RE, "http_.*"),), id="prefix"),
        pytest.param(".*_duration_.*", (m("__name__", RE, ".*_duration_.*"),), id="infix"),
        pytest.param(
            "node_cpu_seconds_(total|count)", (m("__name__", RE, "node_cpu_seconds_(total|count)"),), id="group"
        ),
        pytest.param("a|b", (m("__name__", RE, "a|b"),), id="alternation"),
        pytest.param("(?i)UP", (m("__name__", RE, "(?i)UP"),), id="case-insensitive-flag"),
        pytest.param(r"go_gc_\d+", (m("__name__", RE, r"go_gc_\d+"),), id="perl-class"),
        pytest.param("a.b", (m("__name__", RE, "a.b"),), id="single-dot"),
        pytest.param("[a-z]+_total", (m("__name__", RE, "[a-z]+_total"),), id="char-class"),
    ],
)
def test_a_regex_pattern_is_one_regex_matcher_on_the_name(pattern: str, expected: tuple[LabelMatcher, ...]) -> None:
    assert parse_pattern(pattern) == expected


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param(".*", id="dot-star"),
        pytest.param("x*", id="x-star"),
        pytest.param("(a|)", id="empty-alternative"),
        pytest.param("(?:http_.*)?", id="optional-group"),
    ],
)
def test_a_regex_that_matches_the_empty_name_gets_a_non_empty_name_matcher(pattern: str) -> None:
    assert parse_pattern(pattern) == (m("__name__", RE, pattern), m("__name__", NE, ""))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param('{job="my-app"}', (m("job", EQ, "my-app"),), id="labels-only"),
        pytest.param('up{job="my-app"}', (m("__name__", EQ, "up"), m("job", EQ, "my-app")), id="name-and-labels"),
        pytest.param("up{}", (m("__name__", EQ, "up"),), id="name-empty-braces"),
        pytest.param('{__name__="up"}', (m("__name__", EQ, "up"),), id="name-as-matcher"),
        pytest.param(
            '{__name__="up",instance=".*"}',
            (m("__name__", EQ, "up"), m("instance", EQ, ".*")),
            id="equality-value-is-literal-not-regex",
        ),
        pytest.param(
            'http_requests_total{method="GET"}',
            (m("__name__", EQ, "http_requests_total"), m("method", EQ, "GET")),
            id="readme-name-with-labels",
        ),
        pytest.param(
            '{__name__=~"node_.*",job="node-exporter"}',
            (m("__name__", RE, "node_.*"), m("job", EQ, "node-exporter")),
            id="name-regex-and-label",
        ),
        pytest.param(
            'up{a="1",b!="2",c=~"3.*",d!~"4|5"}',
            (m("__name__", EQ, "up"), m("a", EQ, "1"), m("b", NE, "2"), m("c", RE, "3.*"), m("d", NRE, "4|5")),
            id="all-four-operators",
        ),
        pytest.param('{job!="a",env="prod"}', (m("job", NE, "a"), m("env", EQ, "prod")), id="not-equal"),
        pytest.param('{job!~"a|b",env="prod"}', (m("job", NRE, "a|b"), m("env", EQ, "prod")), id="not-regex"),
        pytest.param('{job=~"app-.*"}', (m("job", RE, "app-.*"),), id="regex"),
        pytest.param('{job = "a" , env = "b"}', (m("job", EQ, "a"), m("env", EQ, "b")), id="spaces-around-tokens"),
        pytest.param('{job="a",}', (m("job", EQ, "a"),), id="trailing-comma"),
        pytest.param(
            '{job="a.*+?^$[](){}|\\\\"}', (m("job", EQ, "a.*+?^$[](){}|\\"),), id="regex-metacharacters-in-value"
        ),
        pytest.param('{path=~"/api/v1/(query|series)"}', (m("path", RE, "/api/v1/(query|series)"),), id="regex-path"),
        pytest.param('{job="{x}"}', (m("job", EQ, "{x}"),), id="braces-inside-value"),
        pytest.param('{job="a,b=c"}', (m("job", EQ, "a,b=c"),), id="comma-and-equals-inside-value"),
        pytest.param(r'{job="a\"b"}', (m("job", EQ, 'a"b'),), id="escaped-double-quote"),
        pytest.param(r"{job='it\'s'}", (m("job", EQ, "it's"),), id="escaped-single-quote"),
        pytest.param('{job=`a"b\\n`}', (m("job", EQ, 'a"b\\n'),), id="raw-backtick-string"),
        pytest.param(r'{path="C:\\dir"}', (m("path", EQ, "C:\\dir"),), id="escaped-backslash"),
        pytest.param(r'{msg="a\nb\tc"}', (m("msg", EQ, "a\nb\tc"),), id="escaped-newline-and-tab"),
        pytest.param('{job="é✓"}', (m("job", EQ, "é✓"),), id="unicode-value"),
        pytest.param(
            'node_cpu:rate5m{mode="idle"}',
            (m("__name__", EQ, "node_cpu:rate5m"), m("mode", EQ, "idle")),
            id="colon-name-with-labels",
        ),
    ],
)
def test_a_selector_is_parsed_as_promql_matchers(pattern: str, expected: tuple[LabelMatcher, ...]) -> None:
    assert parse_pattern(pattern) == expected


def test_the_readme_complex_selector_keeps_every_matcher() -> None:
    pattern = (
        '{__name__=~"node_cpu_seconds_total|node_memory_MemAvailable_bytes",'
        'job="node-exporter",container="kube-rbac-proxy",namespace="monitoring"}'
    )
    assert parse_pattern(pattern) == (
        m("__name__", RE, "node_cpu_seconds_total|node_memory_MemAvailable_bytes"),
        m("job", EQ, "node-exporter"),
        m("container", EQ, "kube-rbac-proxy"),
        m("namespace", EQ, "monitoring"),
    )


# --- what a rule matches: anchoring and label semantics ------------------------------------


@pytest.mark.parametrize(
    ("pattern", "labels", "admitted"),
    [
        pytest.param("up", series("up"), True, id="exact-same-name"),
        pytest.param("up", series("upx"), False, id="exact-longer-name"),
        pytest.param("up", series("my_up"), False, id="exact-suffix"),
        pytest.param("http_.*", series("http_requests_total"), True, id="regex-prefix"),
        pytest.param("http_.*", series("my_http_x"), False, id="regex-anchored-at-start"),
        pytest.param("node_.*", series("kube_node_info"), False, id="regex-not-a-substring-search"),
        pytest.param("http_requests", series("http_requests_total"), False, id="exact-is-not-a-prefix"),
        pytest.param("http_req.*s", series("http_requests_total"), False, id="regex-anchored-at-end"),
        pytest.param("a|b", series("ab"), False, id="alternation-anchored-as-a-whole"),
        pytest.param("a|b", series("b"), True, id="alternation-second-branch"),
        pytest.param("(?i)UP", series("up"), True, id="regex-flag"),
        pytest.param("a.b", series("a_b"), True, id="dot-is-any-character"),
        pytest.param(".*", series("anything"), True, id="dot-star-any-name"),
        pytest.param(".*", {"job": "x"}, False, id="dot-star-needs-a-name"),
        pytest.param('{job="my-app"}', series("anything", job="my-app"), True, id="selector-without-name-any-name"),
        pytest.param('{job="my-app"}', series("up", job="my-app-2"), False, id="selector-equality-is-exact"),
        pytest.param('{job=~"app"}', series("up", job="my-app"), False, id="selector-regex-anchored"),
        pytest.param('{job=~"my-.*"}', series("up", job="my-app"), True, id="selector-regex-matches"),
        pytest.param('up{job!="a"}', series("up", job="b"), True, id="not-equal-other-value"),
        pytest.param('up{job!="a"}', series("up", job="a"), False, id="not-equal-same-value"),
        pytest.param('up{env!="prod"}', series("up"), True, id="not-equal-missing-label-is-empty"),
        pytest.param('up{env!~"prod|stage"}', series("up", env="stage"), False, id="not-regex-excluded"),
        pytest.param('up{env!~"prod|stage"}', series("up", env="production"), True, id="not-regex-anchored"),
        pytest.param('up{env=""}', series("up"), True, id="empty-equality-matches-missing-label"),
        pytest.param('{__name__="up",instance=".*"}', series("up", instance="host:9090"), False, id="readme-literal"),
        pytest.param('{__name__="up",instance=".*"}', series("up", instance=".*"), True, id="readme-literal-itself"),
        pytest.param('{job="a.*+?^$[](){}|\\\\"}', series("x", job="a.*+?^$[](){}|\\"), True, id="metachar-literal"),
        pytest.param('{job="a.*+?^$[](){}|\\\\"}', series("x", job="abc"), False, id="metachar-not-a-regex"),
    ],
)
def test_rule_admits_exactly_the_series_the_pattern_means(pattern: str, labels: dict[str, str], admitted: bool) -> None:
    assert rule(pattern).matches(labels) is admitted


def test_label_selectors_are_anded_with_every_pattern() -> None:
    r = rule("http_.*", team="webapp", environment="production")
    assert r.matches(series("http_x", team="webapp", environment="production", extra="y"))
    assert not r.matches(series("http_x", team="webapp"))
    assert not r.matches(series("http_x", team="other", environment="production"))
    assert not r.matches(series("other", team="webapp", environment="production"))


def test_label_selectors_also_restrict_selector_patterns() -> None:
    r = rule('{job="my-app"}', team="webapp")
    assert r.matches(series("up", job="my-app", team="webapp"))
    assert not r.matches(series("up", job="my-app"))


def test_isolation_adds_the_namespace_label() -> None:
    r = rule_for_pattern("up", label_selectors={}, isolation_namespace="team-a")
    assert ISOLATION_LABEL == "namespace"
    assert r.matches(series("up", namespace="team-a"))
    assert not r.matches(series("up", namespace="team-b"))
    assert not r.matches(series("up"))


def test_rules_for_removes_duplicates_and_keeps_first_seen_order() -> None:
    rules = rules_for(
        ["up", "http_.*", '{__name__="up"}', "up{}", "kube_pod_info"], label_selectors={}, isolation_namespace=None
    )
    assert rules == (rule("up"), rule("http_.*"), rule("kube_pod_info"))


def test_rules_with_the_same_matchers_in_another_order_are_equal() -> None:
    assert rule('{a="1",b="2"}') == rule('{b="2",a="1"}')
    assert hash(rule('{a="1",b="2"}')) == hash(rule('{b="2",a="1"}'))


@pytest.mark.parametrize(
    ("pattern", "selector"),
    [
        pytest.param("up", '{__name__="up"}', id="exact"),
        pytest.param(".*", '{__name__!="",__name__=~".*"}', id="dot-star"),
        pytest.param('{job="a\\"b",env=~"x|y"}', '{env=~"x|y",job="a\\"b"}', id="sorted-and-quoted"),
    ],
)
def test_rule_selector_is_canonical_promql(pattern: str, selector: str) -> None:
    assert rule(pattern).selector() == selector
    assert str(rule(pattern)) == selector


@pytest.mark.parametrize(
    "pattern",
    [
        "up",
        ".*",
        "http_.*",
        'up{a="1",b!="2",c=~"3.*",d!~"4|5"}',
        r'{job="a\"b",path="C:\\x",msg="a\nb"}',
        '{job="a.*+?^$[](){}|\\\\"}',
    ],
)
def test_a_rule_selector_parses_back_to_the_same_rule(pattern: str) -> None:
    original = rule(pattern)
    assert Rule.of(parse_pattern(original.selector())) == original


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40))
def test_any_label_value_survives_quoting_and_parsing(value: str) -> None:
    matcher = m("job", EQ, value)
    assert parse_pattern("up{" + str(matcher) + "}") == (m("__name__", EQ, "up"), matcher)


# --- refused patterns ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        pytest.param("", "must not be empty", id="empty"),
        pytest.param("   \t", "must not be empty", id="blank"),
        pytest.param("a" * 16_385, "longer than 16384 characters", id="too-long"),
        pytest.param("(?<=x)y", "invalid RE2 regex '(?<=x)y'", id="lookbehind-not-re2"),
        pytest.param(r"(a)\1", "invalid RE2 regex", id="backreference-not-re2"),
        pytest.param("[", "missing ]", id="unclosed-class"),
        pytest.param("a\\", "trailing \\", id="trailing-backslash"),
        pytest.param("x**", "invalid RE2 regex", id="double-star"),
        pytest.param("{}", "at least one non-empty matcher", id="empty-braces"),
        pytest.param('{job!="a"}', "at least one non-empty matcher", id="only-negative-matcher"),
        pytest.param('{job=~".*"}', "at least one non-empty matcher", id="only-empty-matching-regex"),
        pytest.param('{job=""}', "at least one non-empty matcher", id="only-empty-equality"),
        pytest.param('up{job="a"}[5m]', "must be a plain vector selector, not a MatrixSelector", id="range"),
        pytest.param('rate(up{job="a"}[5m])', "must be a plain vector selector", id="function-call"),
        pytest.param('sum(up{job="a"})', "must be a plain vector selector", id="aggregation"),
        pytest.param('{job="a"} and {b="c"}', "must be a plain vector selector, not a BinaryExpr", id="binary-op"),
        pytest.param('up{job="a"} offset 5m', "must not use offset or @", id="offset"),
        pytest.param('up{job="a"} @ 100', "must not use offset or @", id="at-modifier"),
        pytest.param('{job="a" or job="b"}', "must not use 'or' inside braces", id="or-inside-braces"),
        pytest.param('{"job"="a"}', "quoted names are not PromQL 2.x", id="quoted-label-name"),
        pytest.param('{"up"}', "quoted names are not PromQL 2.x", id="quoted-metric-name"),
        pytest.param('up{"job"="a"}', "quoted names are not PromQL 2.x", id="quoted-label-name-after-metric"),
        pytest.param("{job}", "is not a valid selector", id="label-without-operator"),
        pytest.param("{job=a}", "is not a valid selector", id="unquoted-value"),
        pytest.param('{job=="a"}', "is not a valid selector", id="double-equals"),
        pytest.param('{job=~"("}', "is not a valid selector", id="bad-regex-value"),
        pytest.param('{job="a",,}', "is not a valid selector", id="double-comma"),
        pytest.param("{,}", "is not a valid selector", id="lone-comma"),
        pytest.param('{job="a"', "is not a valid selector", id="unclosed-brace"),
        pytest.param("}", "is not a valid selector", id="lone-closing-brace"),
        pytest.param('up{job="a"}{b="c"}', "is not a valid selector", id="two-brace-groups"),
        pytest.param(r'{job="\x"}', "is not a valid selector", id="invalid-escape"),
        pytest.param('{job="a}', "is not a valid selector", id="unterminated-string"),
        pytest.param('{1job="a"}', "is not a valid selector", id="label-starting-with-digit"),
    ],
)
def test_a_refused_pattern_raises_pattern_error_with_a_clear_message(pattern: str, fragment: str) -> None:
    with pytest.raises(PatternError) as caught:
        parse_pattern(pattern)
    assert fragment in str(caught.value)
    assert caught.value.pattern == pattern


def test_a_non_string_pattern_is_a_pattern_error() -> None:
    with pytest.raises(PatternError, match="must be a string"):
        parse_pattern(42)  # type: ignore[arg-type]


def test_pattern_error_is_an_api_validation_error_with_one_problem() -> None:
    with pytest.raises(PatternError) as caught:
        parse_pattern("[")
    assert isinstance(caught.value, ValueError)
    assert len(caught.value.problems) == 1


@pytest.mark.parametrize(
    ("name", "op", "value"),
    [
        pytest.param("a-b", EQ, "x", id="invalid-label-name"),
        pytest.param("", EQ, "x", id="empty-label-name"),
        pytest.param("job", RE, "(", id="invalid-regex"),
        pytest.param("job", NRE, "(?<=x)", id="not-re2"),
    ],
)
def test_label_matcher_validates_at_construction(name: str, op: MatchOp, value: str) -> None:
    with pytest.raises(ValueError):
        LabelMatcher(name=name, op=op, value=value)


# --- nothing crashes -----------------------------------------------------------------------

_PROMQL_PIECES = st.sampled_from(
    [
        *"{}[]()=~!\"'`\\,.*+?^$|:_ @-",
        "a",
        "Z",
        "0",
        "9",
        "\n",
        "é",
        "offset",
        " or ",
        "__name__",
        "job",
        "up",
        "5m",
        "sum",
        "rate",
        "by",
        "\\x",
        "\\u12",
        "\x00",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.lists(_PROMQL_PIECES, max_size=25).map("".join)))
def test_parse_pattern_raises_only_pattern_error_on_any_text(text: str) -> None:
    try:
        matchers = parse_pattern(text)
    except PatternError as exc:
        assert str(exc)
    else:
        assert matchers
        assert all(isinstance(item, LabelMatcher) for item in matchers)
        Rule.of(matchers).selector()


# --- deep input is a pattern error, in every form (checked in a child: the old way crashed) ---

_DEEP_ENTRIES = {
    "unary-chain": "-" * 9000 + "up",
    "power-chain": "^".join(["up"] * 5000),
    "selector-behind-deep-unary": "-" * 9000 + 'up{job="a"}',
    "calls-around-a-selector": "abs(" * 3000 + '{job="a"}' + ")" * 3000,
    "deep-regex-value": '{job=~"' + "(" * 7000 + ")" * 7000 + '"}',
}
"""Each under the 16384 characters an entry may have, so that depth is what refuses it."""

_DEEP_PROBE = """
import json, sys
from mtproxy.api import PatternError, parse_pattern, parse_selector
for name, text in json.loads(sys.stdin.read()).items():
    for parse in (parse_pattern, parse_selector):
        try:
            parse(text)
        except PatternError as exc:
            print(name, parse.__name__, "refused:", str(exc)[:200], flush=True)
        else:
            print(name, parse.__name__, "accepted", flush=True)
"""


def test_deep_entry_is_refused_by_parse_pattern_and_parse_selector_without_a_crash() -> None:
    completed = run_python(_DEEP_PROBE, stdin=json.dumps(_DEEP_ENTRIES))
    assert_no_signal(completed, what="parse_pattern/parse_selector on deep text")
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = completed.stdout.splitlines()
    assert len(lines) == 2 * len(_DEEP_ENTRIES), completed.stdout
    for line in lines:
        if line.startswith("deep-regex-value"):
            # brackets inside a string are not depth: the regex engines refuse the nesting themselves
            assert " refused: " in line, line
            continue
        assert "refused: has" in line and "operators and brackets, more than the 500 allowed" in line, line


@pytest.mark.parametrize(
    ("selector", "construct"),
    [
        pytest.param('up{job="\\xff"}', "\\xff", id="hex-escape-high-byte"),
        pytest.param('up{job="\\377"}', "\\377", id="octal-escape-high-byte"),
        pytest.param("up{job=`a\\`}", "\\`", id="backslash-before-backtick"),
    ],
)
def test_match_selector_reads_escapes_as_the_query_path_does(selector: str, construct: str) -> None:
    """Prometheus reads \\xff as a raw byte, the parser as U+00FF: refused on both paths alike."""
    with pytest.raises(PatternError, match=re.escape(construct)):
        parse_selector(selector)
    with pytest.raises(PatternError, match=re.escape(construct)):
        parse_pattern(selector)
    with pytest.raises(PromQLUnsupported) as refused:
        parse_promql(selector)
    assert refused.value.construct == construct


def test_a_regex_entry_keeps_its_escapes_since_it_is_never_promql_text() -> None:
    assert parse_pattern("a\\xff") == (m("__name__", RE, "a\\xff"),)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('{job=~"\\\\Qa.b\\\\E"}', (m("job", RE, "a\\.b"),), id="literal-span"),
        pytest.param('up{job!~"x\\\\Q(*)\\\\E"}', (m("__name__", EQ, "up"), m("job", NRE, "x\\(\\*\\)")), id="negated"),
    ],
)
def test_match_selector_and_pattern_read_literal_spans_as_prometheus_does(
    text: str, expected: tuple[LabelMatcher, ...]
) -> None:
    """Go's regexp reads \\Q...\\E as literal text; the parser library would refuse it."""
    assert parse_selector(text) == expected
    assert parse_pattern(text) == expected
