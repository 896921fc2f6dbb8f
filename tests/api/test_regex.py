"""api/regex.py and api/regex_text.py: which regexes RE2 may decide for Go, and ``\\Q…\\E`` spelled out.

The verdicts of these tables are checked against a real Prometheus 2.42 (Go 1.19's regexp) in
``tests/proxy/test_regex_parity_prometheus.py``; here they pin the classification and the
rewriting themselves.
"""

from __future__ import annotations

import pytest

from mtproxy.api import LabelMatcher, MatchOp, Rule, expand_literal_spans_in_promql
from mtproxy.api.regex import compile_anchored, engines_agree, expand_literal_spans


@pytest.mark.parametrize(
    ("pattern", "agree"),
    [
        pytest.param("up|down", True, id="literals"),
        pytest.param("team-(a|b)/.*", True, id="groups-and-dot"),
        pytest.param("[^a-z0-9]+", True, id="negated-class"),
        pytest.param("\\d+\\.\\w*\\s?\\b", True, id="perl-classes-are-ascii"),
        pytest.param("[[:alpha:]][[:^digit:]]", True, id="posix-classes-are-ascii"),
        pytest.param("(?i)kelvin|s", True, id="ascii-case-folding"),
        pytest.param("caf\u00e9 \u2615", True, id="non-ascii-literal-without-folding"),
        pytest.param("[\u00e0-\u00ff]", True, id="non-ascii-range-without-folding"),
        pytest.param("\\x{1DF00}", True, id="code-point-escape-without-folding"),
        pytest.param("\\Qa.b\\E", True, id="quoted-ascii-literal"),
        pytest.param("\\\\pL", True, id="escaped-backslash-then-letters"),
        pytest.param("\\pL", False, id="unicode-class"),
        pytest.param("\\PL", False, id="negated-unicode-class"),
        pytest.param("\\p{Greek}+", False, id="unicode-script"),
        pytest.param("[\\p{Lu}x]", False, id="unicode-class-in-brackets"),
        pytest.param("(?i)caf\u00e9", False, id="folding-beyond-ascii"),
        pytest.param("(?i:a)\u00e9", False, id="folding-group-beside-non-ascii"),
        pytest.param("(?i)\\x{2C2F}", False, id="folding-of-code-point-escape"),
        pytest.param("(?i)\\Q\u00e9\\E", False, id="folding-of-quoted-non-ascii"),
        pytest.param("\\C", False, id="escape-go-does-not-know"),
    ],
)
def test_engines_agree_only_where_go_and_re2_cannot_differ(pattern: str, agree: bool) -> None:
    compile_anchored(pattern)  # every row is valid RE2
    assert engines_agree(pattern) is agree


@pytest.mark.parametrize(
    ("pattern", "expanded"),
    [
        pytest.param("\\Qa.b\\E", "a\\.b", id="metacharacters-escaped"),
        pytest.param("x\\Q(*)|\\E+", "x\\(\\*\\)\\|+", id="repetition-binds-last-character"),
        pytest.param("\\Qa.b", "\\Qa.b", id="no-end-left-for-the-compiler-to-refuse"),
        pytest.param("a\\Q\\E*", "a*", id="empty-span"),
        pytest.param("\\Qa\\\\E", "a\\\\", id="first-end-closes"),
        pytest.param("\\Q\u00e9 \\d\\E", "\u00e9 \\\\d", id="escapes-inside-are-literal"),
        pytest.param("\\Qa\\E\\Qb", "\\Qa\\E\\Qb", id="any-span-without-end-leaves-all"),
        pytest.param("\\\\Qa", "\\\\Qa", id="escaped-backslash-is-no-span"),
        pytest.param("[\\Q]", "[\\Q]", id="inside-brackets-left-for-the-compiler-to-refuse"),
        pytest.param("[]\\Q]", "[]\\Q]", id="bracket-first-in-class-is-a-member"),
        pytest.param("[[:alpha:]]\\Qx.\\E", "[[:alpha:]]x\\.", id="after-posix-class"),
        pytest.param("no spans", "no spans", id="unchanged"),
    ],
)
def test_literal_spans_are_spelled_out_as_go_reads_them(pattern: str, expanded: str) -> None:
    assert expand_literal_spans(pattern) == expanded


def test_spelled_out_spans_match_what_re2_matches_with_them() -> None:
    """RE2 knows \\Q…\\E too (it is only the parser library's engine that does not): same verdicts."""
    values = ["a.b", "axb", "x(*)|", "x(*)||", "a", "a\\", "\u00e9 \\d", "\u00e9 7"]
    for pattern in ["\\Qa.b\\E", "x\\Q(*)|\\E+", "\\Qa\\\\E", "\\Q\u00e9 \\d\\E", "(?i)\\QA.B\\E"]:
        for value in values:
            assert (compile_anchored(pattern).fullmatch(value) is None) == (
                compile_anchored(expand_literal_spans(pattern)).fullmatch(value) is None
            ), (pattern, value)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param('up{job=~"\\\\Qa.b\\\\E"}', 'up{job=~"a\\\\.b"}', id="double-quoted"),
        pytest.param("up{job!~'\\\\Q(x)\\\\E'}", 'up{job!~"\\\\(x\\\\)"}', id="single-quoted-not-regex"),
        pytest.param("up{job=~`\\Qa.b\\E`}", 'up{job=~"a\\\\.b"}', id="raw-string"),
        pytest.param('up{job=~ # note\n "\\\\Qa.\\\\E"}', 'up{job=~ # note\n "a\\\\."}', id="comment-before-string"),
        pytest.param('up{job=~"\\\\Qa\\"b\\\\E"}', 'up{job=~"a\\"b"}', id="escaped-quote-inside"),
        pytest.param('up{job=~"\\\\Q\\u00e9\\\\E"}', 'up{job=~"\u00e9"}', id="unicode-escape-decoded"),
        pytest.param('up{job="\\\\Qa.b\\\\E"}', 'up{job="\\\\Qa.b\\\\E"}', id="equality-value-untouched"),
        pytest.param(
            'label_replace(up, "a", "$1", "b", "\\\\Qx.\\\\E")',
            'label_replace(up, "a", "$1", "b", "\\\\Qx.\\\\E")',
            id="label-replace-regex-left-to-prometheus",
        ),
        pytest.param('up{job=~"\\\\Q\\xff"}', 'up{job=~"\\\\Q\\xff"}', id="raw-byte-escape-left-for-the-guard"),
        pytest.param('up{job=~"\\\\Q\\q"}', 'up{job=~"\\\\Q\\q"}', id="unknown-escape-left-for-the-parser"),
        pytest.param('up{job=~"\\\\Qa', 'up{job=~"\\\\Qa', id="unterminated-left-for-the-parser"),
        pytest.param('up # "=~ \\\\Q" \n{a=~"\\\\Qb\\\\E"}', 'up # "=~ \\\\Q" \n{a=~"b"}', id="comment-hides-quotes"),
    ],
)
def test_regex_strings_of_matchers_lose_their_literal_spans(query: str, expected: str) -> None:
    assert expand_literal_spans_in_promql(query) == expected


def test_verdicts_are_withheld_only_for_untrusted_regexes() -> None:
    letters = LabelMatcher(name="v", op=MatchOp.REGEX, value="\\pL+")
    assert letters.matches("\U0001df00")  # RE2's later Unicode: a letter
    assert letters.verdict("\U0001df00") is None  # Go 1.19 does not know the character
    assert LabelMatcher(name="v", op=MatchOp.NOT_REGEX, value="[a-z]+").verdict("\U0001df00") is True
    assert LabelMatcher(name="v", op=MatchOp.NOT_EQUAL, value="x").verdict("y") is True
    rule = Rule.of([LabelMatcher(name="v", op=MatchOp.EQUAL, value="a"), letters])
    assert rule.verdict({"v": "b"}) is False  # one certain failure decides
    assert rule.verdict({"v": "a"}) is None
