"""The six selector-restriction steps, one table row per behaviour.

Each row: the selector S, the tenant's patterns (namespace team-a, isolation unless the
row says otherwise), the expected kind and the expected branches as selector text.
A second check evaluates S ∧ policy and the result on sample series, so a row cannot
pass with a rewrite that changes meaning.
"""

from __future__ import annotations

import itertools

import pytest

from mtproxy.api import LabelMatcher, Rule, parse_pattern, rules_for
from mtproxy.proxy.policy import AccessPolicy
from mtproxy.proxy.selectors import (
    MAX_DISJOINT_PARTS,
    Restriction,
    forget_memos,
    quote_meta,
    restrict_selector,
    split_disjoint,
)


def _text(branch: tuple[LabelMatcher, ...]) -> str:
    return "{" + ",".join(str(m) for m in branch) + "}"


def _rules(patterns: list[str], namespace: str | None) -> tuple[Rule, ...]:
    return rules_for(patterns, label_selectors={}, isolation_namespace=namespace)


CASES = [
    pytest.param(
        "up",
        ["up", "http_.*"],
        "team-a",
        Restriction.RESTRICTED,
        ['{__name__="up",namespace="team-a"}'],
        id="step1-drops-contradicting-name-step4-adds-one-rule",
    ),
    pytest.param(
        "secret",
        ["up", "http_.*"],
        "team-a",
        Restriction.EMPTY,
        ['{__name__="secret",__name__!~"(?s:.*)"}'],
        id="step1-no-rule-left-selects-nothing",
    ),
    pytest.param(
        '{namespace="team-b"}',
        ["up"],
        "team-a",
        Restriction.EMPTY,
        ['{namespace="team-b",__name__!~"(?s:.*)"}'],
        id="conflicting-namespace-selects-nothing",
    ),
    pytest.param(
        'up{namespace!="team-a"}',
        ["up"],
        "team-a",
        Restriction.EMPTY,
        ['{__name__="up",namespace!="team-a",__name__!~"(?s:.*)"}'],
        id="namespace-not-equal-own-is-empty",
    ),
    pytest.param(
        'up{namespace=~".*"}',
        ["up"],
        "team-a",
        Restriction.RESTRICTED,
        ['{__name__="up",namespace=~".*",namespace="team-a"}'],
        id="namespace-regex-all-still-restricted",
    ),
    pytest.param(
        'up{namespace="team-a"}',
        ["up"],
        "team-a",
        Restriction.UNCHANGED,
        ['{__name__="up",namespace="team-a"}'],
        id="step2-entailed-selector-unchanged",
    ),
    pytest.param(
        "up",
        ["up", 'up{job="a"}'],
        "team-a",
        Restriction.RESTRICTED,
        ['{__name__="up",namespace="team-a"}'],
        id="step3-contained-rule-dropped",
    ),
    pytest.param(
        '{__name__=~".+"}',
        ["up", "node_cpu"],
        "team-a",
        Restriction.RESTRICTED,
        ['{__name__=~".+",namespace="team-a",__name__=~"node_cpu|up"}'],
        id="step5-merge-exact-names",
    ),
    pytest.param(
        '{__name__=~".+"}',
        ["up", "http_.*"],
        "team-a",
        Restriction.RESTRICTED,
        ['{__name__=~".+",namespace="team-a",__name__=~"(?:http_.*)|up"}'],
        id="step5-merge-name-and-regex",
    ),
    pytest.param(
        '{__name__=~".+"}',
        ['up{job="a"}', 'foo{env="b"}'],
        "team-a",
        Restriction.UNION,
        [
            '{__name__=~".+",__name__="up",job="a",namespace="team-a"}',
            '{__name__=~".+",__name__="foo",env="b",namespace="team-a"}',
        ],
        id="step6-union-when-rules-differ-twice",
    ),
    pytest.param(
        '{job="x"}',
        ["up", '{job="x"}'],
        "team-a",
        Restriction.RESTRICTED,
        ['{job="x",namespace="team-a"}'],
        id="selector-pattern-absorbs-narrower-rule",
    ),
    pytest.param("up", ["up"], None, Restriction.UNCHANGED, ['{__name__="up"}'], id="no-isolation-exact-name"),
    pytest.param("up", [".*"], None, Restriction.UNCHANGED, ['{__name__="up"}'], id="match-all-regex-entails"),
    pytest.param(
        '{__name__=~"a.b"}',
        ["a.b"],
        "team-a",
        Restriction.RESTRICTED,
        ['{__name__=~"a.b",namespace="team-a"}'],
        id="regex-pattern-is-not-an-exact-name",
    ),
    # Regex verdicts are used only where RE2 and the backend's Go regexp agree (api.regex.engines_agree):
    # U+1DF00 is a letter to RE2's Unicode tables, not to Go 1.19's (Prometheus 2.42).
    pytest.param(
        'regex_probe{v=~"\\\\PL"}',
        ['regex_probe{v!="\U0001df00"}'],
        None,
        Restriction.RESTRICTED,
        ['{__name__="regex_probe",v=~"\\\\PL",v!="\U0001df00"}'],
        id="unicode-class-never-proves-a-value-excluded",
    ),
    pytest.param(
        'regex_probe{v="\U0001df00"}',
        ['regex_probe{v=~"\\\\pL+"}'],
        None,
        Restriction.RESTRICTED,
        ['{__name__="regex_probe",v="\U0001df00",v=~"\\\\pL+"}'],
        id="unicode-class-never-proves-a-value-admitted",
    ),
    pytest.param(
        'regex_probe{v="1"}',
        ['regex_probe{v=~"\\\\pL+"}'],
        None,
        Restriction.RESTRICTED,
        ['{__name__="regex_probe",v="1",v=~"\\\\pL+"}'],
        id="unicode-class-never-proves-a-rule-contradicted",
    ),
    pytest.param(
        'regex_probe{v="\u2c5f"}',
        ['regex_probe{v=~"(?i)\u2c2f"}'],
        None,
        Restriction.RESTRICTED,
        ['{__name__="regex_probe",v="\u2c5f",v=~"(?i)\u2c2f"}'],
        id="case-folding-beyond-ascii-never-decides",
    ),
    pytest.param(
        'regex_probe{v="\U0001df00"}',
        ['regex_probe{v=~"[a-z]+"}'],
        None,
        Restriction.EMPTY,
        ['{__name__="regex_probe",v="\U0001df00",__name__!~"(?s:.*)"}'],
        id="ascii-regex-still-decides-on-any-value",
    ),
    pytest.param(
        'regex_probe{v="K"}',
        ['regex_probe{v=~"(?i)k"}'],
        None,
        Restriction.UNCHANGED,
        ['{__name__="regex_probe",v="K"}'],
        id="ascii-case-folding-decides",
    ),
    pytest.param(
        'regex_probe{v="\u00e9t\u00e9"}',
        ['regex_probe{v=~"\u00e9t\u00e9|x"}'],
        None,
        Restriction.UNCHANGED,
        ['{__name__="regex_probe",v="\u00e9t\u00e9"}'],
        id="non-ascii-literal-without-folding-decides",
    ),
]


@pytest.mark.parametrize(("selector", "patterns", "namespace", "kind", "branches"), CASES)
def test_restrict_selector(
    selector: str, patterns: list[str], namespace: str | None, kind: Restriction, branches: list[str]
) -> None:
    result = restrict_selector(parse_pattern(selector), _rules(patterns, namespace))
    assert result.kind is kind
    assert [_text(b) for b in result.branches] == branches


SERIES = [
    {"__name__": name, "namespace": ns, "job": job, "env": env}
    for name, ns, job, env in itertools.product(
        ["up", "secret", "http_requests_total", "my_http_x", "node_cpu", "foo", "a.b", "axb"],
        ["team-a", "team-b", ""],
        ["a", "x", ""],
        ["b", ""],
    )
]


@pytest.mark.parametrize(("selector", "patterns", "namespace", "kind", "branches"), CASES)
def test_restriction_selects_exactly_selector_and_policy(
    selector: str, patterns: list[str], namespace: str | None, kind: Restriction, branches: list[str]
) -> None:
    matchers = parse_pattern(selector)
    policy = AccessPolicy.of(namespace or "team-a", _rules(patterns, namespace))
    result = restrict_selector(matchers, policy.rules)
    for labels in SERIES:
        present = {k: v for k, v in labels.items() if v}
        wanted = Rule.of(matchers).matches(present) and policy.admits(present)
        got = any(Rule(matchers=b).matches(present) for b in result.branches)
        assert got == wanted, present


def test_quote_meta_escapes_like_go() -> None:
    assert quote_meta(r"a.b+c*d?e(f)g|h[i]j{k}l^m$n\o") == r"a\.b\+c\*d\?e\(f\)g\|h\[i\]j\{k\}l\^m\$n\\o"


def test_policy_digest_ignores_rule_order_and_duplicates() -> None:
    rules = _rules(["up", "http_.*"], "team-a")
    one = AccessPolicy.of("team-a", rules)
    two = AccessPolicy.of("team-a", tuple(reversed(rules)) + rules)
    assert one.digest == two.digest
    assert one.digest != AccessPolicy.of("team-b", rules).digest


def test_memos_never_carry_one_policy_outcome_to_another() -> None:
    """Outcomes are remembered per rule set: an equal selector under another policy is decided afresh."""
    selector = parse_pattern("up")
    team_a = _rules(["up"], "team-a")
    team_b = _rules(["up"], "team-b")
    for _ in range(2):  # the second round is served from the memos
        assert [_text(b) for b in restrict_selector(selector, team_a).branches] == [
            '{__name__="up",namespace="team-a"}'
        ]
        assert [_text(b) for b in restrict_selector(selector, team_b).branches] == [
            '{__name__="up",namespace="team-b"}'
        ]
    # a rule set rebuilt after the first is dropped (a policy update) gets its own index
    del team_a
    rebuilt = _rules(["http_.*"], "team-a")
    assert restrict_selector(selector, rebuilt).kind is Restriction.EMPTY


@pytest.mark.parametrize(("selector", "patterns", "namespace", "kind", "branches"), CASES)
def test_cold_and_warm_outcomes_agree(
    selector: str, patterns: list[str], namespace: str | None, kind: Restriction, branches: list[str]
) -> None:
    rules = _rules(patterns, namespace)
    forget_memos()
    cold = restrict_selector(parse_pattern(selector), rules)
    warm = restrict_selector(parse_pattern(selector), rules)
    assert cold == warm
    assert [_text(b) for b in warm.branches] == branches


def test_two_name_equalities_are_not_narrowed_by_the_name_index() -> None:
    """With two ``__name__`` equalities the per-name shortcut steps aside; the selector matches nothing."""
    result = restrict_selector(parse_pattern('{__name__="up",__name__="up"}'), _rules(["up"], "team-a"))
    assert result.kind is Restriction.RESTRICTED
    contradictory = restrict_selector(
        parse_pattern('{__name__="up",__name__="down"}'), _rules(["up", "down"], "team-a")
    )
    assert contradictory.kind is Restriction.EMPTY


def test_policy_admits_only_on_verdicts_the_backend_shares() -> None:
    """admits() gates what the proxy filters itself (alerts, rules): a verdict Go may not share admits nothing."""
    letters = AccessPolicy.of("team-a", _rules(['regex_probe{v=~"\\\\pL+"}', 'ascii{v=~"(?i)k+"}'], None))
    assert not letters.admits({"__name__": "regex_probe", "v": "\U0001df00"})  # a letter to RE2 only
    assert not letters.admits({"__name__": "regex_probe", "v": "abc"})  # \pL is never trusted
    assert letters.admits({"__name__": "ascii", "v": "k\u212a"})  # ASCII folding is (KELVIN SIGN folds to k)
    assert not letters.admits({"__name__": "ascii", "v": "x"})


DISJOINT_CASES = [
    pytest.param(
        '{__name__=~".+"}', ["up", "http_.*", '{job="a"}', 'node_cpu{env="b"}'], "team-a", id="names-and-a-selector"
    ),
    pytest.param("up", ['up{job="a"}', 'up{env="b"}'], "team-a", id="one-name-two-labels"),
    pytest.param('{__name__=~".+"}', ['{job="a"}', '{env="b"}', '{job=~"a|x",env!="b"}'], None, id="selectors-overlap"),
    pytest.param(
        '{__name__=~".+",job!="x"}', ['{job=~"a|x"}', 'up{env="b"}', "secret"], "team-a", id="regex-rule-minus-others"
    ),
]


@pytest.mark.parametrize(("selector", "patterns", "namespace"), DISJOINT_CASES)
def test_split_disjoint_parts_select_each_series_of_the_union_once(
    selector: str, patterns: list[str], namespace: str | None
) -> None:
    restricted = restrict_selector(parse_pattern(selector), _rules(patterns, namespace))
    assert restricted.kind is Restriction.UNION
    parts = split_disjoint(restricted.branches)
    assert parts is not None
    for labels in SERIES:
        present = {k: v for k, v in labels.items() if v}
        wanted = any(Rule(matchers=b).matches(present) for b in restricted.branches)
        assert sum(Rule(matchers=p).matches(present) for p in parts) == int(wanted), present


def test_split_disjoint_gives_up_past_its_limit() -> None:
    """Overlapping rules of two matchers each double the parts of every later rule."""
    patterns = [f'{{l{n}="x",m{n}="y"}}' for n in range(8)]
    restricted = restrict_selector(parse_pattern('{__name__=~".+"}'), _rules(patterns, None))
    assert split_disjoint(restricted.branches) is None
    assert split_disjoint(restricted.branches[:3]) is not None
    assert MAX_DISJOINT_PARTS < 2**7
