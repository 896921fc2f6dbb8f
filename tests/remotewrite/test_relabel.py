"""Tests for remotewrite/relabel.py and relabel_expand.py: Prometheus' relabel.go, case by case.

The table runs every case on both label-set representations (tuple and dict) and on both
ways of calling RE2 (google-re2's low-level ``Match`` and its public API). Expected
values come from Prometheus' ``model/relabel/relabel_test.go`` where it has them, and
otherwise from reading ``relabel.go``, ``labels.Builder`` and Go's ``regexp.Expand``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import struct
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mtproxy.api.regex import compile_relabel_regex
from mtproxy.api.relabel import RelabelAction, RelabelConfig, relabel_problems
from mtproxy.remotewrite import relabel, relabel_expand
from mtproxy.remotewrite.relabel import CompiledRules, LabelSet, apply, compile_rules
from mtproxy.remotewrite.relabel_expand import compile_go_regex, parse_template

C = RelabelConfig
A = RelabelAction


def _labels(labels: Mapping[str, str]) -> LabelSet:
    return tuple(sorted(labels.items()))


def _prometheus_hashmod(text: str, modulus: int) -> str:
    """Written from relabel.go's description, separately from the module: MD5, bytes 8..15, big-endian."""
    (low_half,) = struct.unpack(">Q", hashlib.md5(text.encode("utf-8")).digest()[8:16])
    return str(low_half % modulus)


@pytest.mark.parametrize("module", [relabel, relabel_expand], ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_all_lists_public_names(module: ModuleType) -> None:
    defined_here = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module.__name__
    }
    assert set(module.__all__) - {"LabelSet"} == defined_here


# --- The table ------------------------------------------------------------------------

DROPPED = None

TABLE = [
    # replace
    pytest.param([C(source_labels=("a",), target_label="b")], {"a": "x"}, {"a": "x", "b": "x"},
                 id="replace-defaults-copy-source-to-target"),
    pytest.param([C(source_labels=("a",), regex="f(.*)", target_label="d", replacement="ch${1}-ch${1}")],
                 {"a": "foo", "b": "bar", "c": "baz"}, {"a": "foo", "b": "bar", "c": "baz", "d": "choo-choo"},
                 id="replace-prometheus-choo-choo"),
    pytest.param([C(source_labels=("a", "b"), regex="f(.*);(.*)r", target_label="a", replacement="b${1}${2}m"),
                  C(source_labels=("c", "a"), regex="(b).*b(.*)ba(.*)", target_label="d", replacement="$1$2$2$3")],
                 {"a": "foo", "b": "bar", "c": "baz"}, {"a": "boobam", "b": "bar", "c": "baz", "d": "boooom"},
                 id="replace-prometheus-boobam-then-boooom"),
    pytest.param([C(source_labels=("a",), regex="f", target_label="b", replacement="bar")],
                 {"a": "boo"}, {"a": "boo"}, id="replace-no-match-changes-nothing"),
    pytest.param([C(source_labels=("a",), regex="foo", target_label="m", replacement="yes")],
                 {"a": "foobar"}, {"a": "foobar"}, id="replace-regex-foo-does-not-match-foobar"),
    pytest.param([C(source_labels=("a",), regex="foo", target_label="m", replacement="yes")],
                 {"a": "foo"}, {"a": "foo", "m": "yes"}, id="replace-regex-foo-matches-foo"),
    pytest.param([C(source_labels=("a",), regex="foo", target_label="m", replacement="yes")],
                 {"a": "foo\n"}, {"a": "foo\n"}, id="replace-dollar-anchor-is-end-of-text-not-before-newline"),
    pytest.param([C(source_labels=("a",), regex="line1.*line2", target_label="d", replacement="match${1}")],
                 {"a": "line1\nline2"}, {"a": "line1\nline2", "d": "match"}, id="replace-dot-matches-newline"),
    pytest.param([C(source_labels=("a",), regex="some-([^-]+)-([^,]+)", target_label="${1}", replacement="${2}")],
                 {"a": "some-name-value"}, {"a": "some-name-value", "name": "value"},
                 id="replace-target-from-group"),
    pytest.param([C(source_labels=("a",), regex="some-([^-]+)-([^,]+)", target_label="${3}", replacement="${1}")],
                 {"a": "some-name-0"}, {"a": "some-name-0"}, id="replace-target-expanding-to-empty-changes-nothing"),
    pytest.param([C(source_labels=("a",), target_label="$1", replacement="x")],
                 {"a": "not-a-name"}, {"a": "not-a-name"},
                 id="replace-target-expanding-to-invalid-name-changes-nothing"),
    pytest.param([C(source_labels=("a",), regex="(f).*", target_label="$1", replacement="$2")],
                 {"a": "foo", "f": "baz"}, {"a": "foo"}, id="replace-prometheus-empty-result-deletes-target"),
    pytest.param([C(source_labels=("a",), target_label="t", replacement="$1x")],
                 {"a": "v", "t": "old"}, {"a": "v"}, id="replace-dollar-1x-is-group-named-1x"),
    pytest.param([C(source_labels=("a",), target_label="t", replacement="${1}x")],
                 {"a": "v"}, {"a": "v", "t": "vx"}, id="replace-braced-1-then-x"),
    pytest.param([C(source_labels=("a",), target_label="t", replacement="$$1 $${1}")],
                 {"a": "v"}, {"a": "v", "t": "$1 ${1}"}, id="replace-double-dollar-is-literal-dollar"),
    pytest.param([C(source_labels=("a",), target_label="t", replacement="a$-b ${1 ${} $")],
                 {"a": "v"}, {"a": "v", "t": "a$-b ${1 ${} $"}, id="replace-malformed-dollar-stays-literal"),
    pytest.param([C(source_labels=("instance",), regex="(?P<host>[^:]+):(?P<port>\\d+)", target_label="by_$host",
                    replacement="${host}/$port")],
                 {"instance": "node1:9100"}, {"instance": "node1:9100", "by_node1": "node1/9100"},
                 id="replace-named-groups-in-target-and-replacement"),
    pytest.param([C(source_labels=("a",), regex="(line1).*(?<second>line2)", target_label="label2_$1",
                    replacement="val_$second")],
                 {"a": "line1\nline2"}, {"a": "line1\nline2", "label2_line1": "val_line2"},
                 id="replace-prometheus-angle-named-group"),
    pytest.param([C(source_labels=("s",), regex="(a)|(b)", target_label="t", replacement="[$1][$2]")],
                 {"s": "b"}, {"s": "b", "t": "[][b]"}, id="replace-group-that-took-no-part-is-empty"),
    pytest.param([C(source_labels=("s",), regex="(x)", target_label="t", replacement="<$01|$1>")],
                 {"s": "x"}, {"s": "x", "t": "<|x>"}, id="replace-leading-zero-is-a-name-not-a-number"),
    pytest.param([C(source_labels=("s",), regex="a(b)c", target_label="t", replacement="$0-$1")],
                 {"s": "abc"}, {"s": "abc", "t": "abc-b"}, id="replace-dollar-0-is-whole-match"),
    pytest.param([C(source_labels=("s",), regex="(x)", target_label="t", replacement="<$9>")],
                 {"s": "x"}, {"s": "x", "t": "<>"}, id="replace-number-past-last-group-is-empty"),
    pytest.param([C(target_label="cluster", replacement="dev-1")],
                 {"a": "x"}, {"a": "x", "cluster": "dev-1"}, id="replace-static-value-without-source"),
    pytest.param([C(source_labels=("missing",), target_label="a", replacement="")],
                 {"a": "x", "b": "y"}, {"b": "y"}, id="replace-static-empty-replacement-deletes"),
    pytest.param([C(source_labels=("missing",), regex="", target_label="t", replacement="absent")],
                 {"a": "x"}, {"a": "x", "t": "absent"}, id="replace-missing-source-reads-empty"),
    pytest.param([C(source_labels=("missing",), regex=".+", target_label="t", replacement="x")],
                 {"a": "x"}, {"a": "x"}, id="replace-missing-source-fails-non-empty-regex"),
    pytest.param([C(source_labels=("a", "b"), separator="/", regex="(.*)/(.*)", target_label="t",
                    replacement="$2-$1")],
                 {"a": "x", "b": "y"}, {"a": "x", "b": "y", "t": "y-x"},
                 id="replace-joins-sources-with-custom-separator"),
    pytest.param([C(source_labels=("a", "missing", "b"), target_label="t")],
                 {"a": "x", "b": "y"}, {"a": "x", "b": "y", "t": "x;;y"},
                 id="replace-join-reads-missing-label-as-empty"),
    pytest.param([C(source_labels=("__name__",), regex="(.*)_total", target_label="__name__",
                    replacement="${1}_count")],
                 {"__name__": "http_requests_total", "job": "a"}, {"__name__": "http_requests_count", "job": "a"},
                 id="replace-renames-metric"),
    pytest.param([C(source_labels=("e",), regex="", target_label="was_empty", replacement="yes")],
                 {"a": "x", "e": ""}, {"a": "x", "was_empty": "yes"}, id="replace-input-label-valued-empty-is-absent"),
    pytest.param([C(source_labels=("s",), regex="(.)(.*)", target_label="t", replacement="$2$1")],
                 {"s": "ärger日本"}, {"s": "ärger日本", "t": "rger日本ä"}, id="replace-non-ascii-groups"),
    # keep, drop
    pytest.param([C(source_labels=("a",), regex="f.*", action=A.KEEP)], {"a": "foo"}, {"a": "foo"},
                 id="keep-matching-series-kept"),
    pytest.param([C(source_labels=("a",), regex="no-match", action=A.KEEP)], {"a": "foo"}, DROPPED,
                 id="keep-non-matching-series-dropped"),
    pytest.param([C(source_labels=("a",), regex=".*o.*", action=A.DROP)], {"a": "foo", "b": "bar"}, DROPPED,
                 id="drop-matching-series-dropped"),
    pytest.param([C(source_labels=("a",), regex="no-match", action=A.DROP)], {"a": "foo"}, {"a": "foo"},
                 id="drop-non-matching-series-kept"),
    pytest.param([C(source_labels=("a",), regex="f|o", action=A.DROP)], {"a": "foo"}, {"a": "foo"},
                 id="drop-regex-is-anchored"),
    pytest.param([C(source_labels=("missing",), regex="", action=A.KEEP)], {"a": "x"}, {"a": "x"},
                 id="keep-missing-label-matches-empty-regex"),
    pytest.param([C(source_labels=("a", "b"), separator="", regex="xy", action=A.KEEP)], {"a": "x", "b": "y"},
                 {"a": "x", "b": "y"}, id="keep-joins-with-empty-separator"),
    pytest.param([C(source_labels=("a",), regex=".*o.*", action=A.DROP),
                  C(source_labels=("a",), regex="f(.*)", target_label="d", replacement="ch$1-ch$1")],
                 {"a": "foo"}, DROPPED, id="drop-stops-processing"),
    pytest.param([C(source_labels=("a",), target_label="b", replacement="x"),
                  C(source_labels=("b",), regex="x", action=A.DROP)],
                 {"a": "1"}, DROPPED, id="rules-run-in-order-drop-sees-earlier-replace"),
    pytest.param([C(source_labels=("b",), regex="x", action=A.DROP),
                  C(source_labels=("a",), target_label="b", replacement="x")],
                 {"a": "1"}, {"a": "1", "b": "x"}, id="rules-run-in-order-drop-before-replace"),
    pytest.param([C(source_labels=("__tmp_port",), target_label="__port1", action=A.KEEPEQUAL)],
                 {"__tmp_port": "1234", "__port1": "1234"}, {"__tmp_port": "1234", "__port1": "1234"},
                 id="keepequal-equal-values-kept"),
    pytest.param([C(source_labels=("__tmp_port",), target_label="__port2", action=A.KEEPEQUAL)],
                 {"__tmp_port": "1234", "__port2": "5678"}, DROPPED, id="keepequal-different-values-dropped"),
    pytest.param([C(source_labels=("__tmp_port",), target_label="__port1", action=A.DROPEQUAL)],
                 {"__tmp_port": "1234", "__port1": "1234"}, DROPPED, id="dropequal-equal-values-dropped"),
    pytest.param([C(source_labels=("__tmp_port",), target_label="__port2", action=A.DROPEQUAL)],
                 {"__tmp_port": "1234", "__port2": "5678"}, {"__tmp_port": "1234", "__port2": "5678"},
                 id="dropequal-different-values-kept"),
    pytest.param([C(source_labels=("m1",), target_label="m2", action=A.KEEPEQUAL)], {"a": "x"}, {"a": "x"},
                 id="keepequal-two-missing-labels-are-equal"),
    # hashmod
    pytest.param([C(source_labels=("c",), target_label="d", action=A.HASHMOD, modulus=1000)],
                 {"a": "foo", "b": "bar", "c": "baz"}, {"a": "foo", "b": "bar", "c": "baz", "d": "976"},
                 id="hashmod-prometheus-baz-mod-1000-is-976"),
    pytest.param([C(source_labels=("a",), target_label="b", action=A.HASHMOD, modulus=1000)],
                 {"a": "foo\nbar"}, {"a": "foo\nbar", "b": "734"}, id="hashmod-prometheus-foo-newline-bar-is-734"),
    pytest.param([C(source_labels=("a", "b"), separator="/", target_label="h", action=A.HASHMOD, modulus=16)],
                 {"a": "a", "b": "b"}, {"a": "a", "b": "b", "h": _prometheus_hashmod("a/b", 16)},
                 id="hashmod-joined-sources-with-separator"),
    pytest.param([C(source_labels=("missing",), target_label="h", action=A.HASHMOD, modulus=10)],
                 {"a": "x"}, {"a": "x", "h": _prometheus_hashmod("", 10)}, id="hashmod-missing-source-hashes-empty"),
    pytest.param([C(source_labels=("a",), target_label="h", action=A.HASHMOD, modulus=2**64 - 1)],
                 {"a": "ä"}, {"a": "ä", "h": _prometheus_hashmod("ä", 2**64 - 1)}, id="hashmod-utf8-largest-modulus"),
    pytest.param([C(source_labels=("__address__",), target_label="__address__", action=A.HASHMOD, modulus=3)],
                 {"__address__": "10.132.183.40:80"}, {"__address__": _prometheus_hashmod("10.132.183.40:80", 3)},
                 id="hashmod-overwrites-its-own-source"),
    # labelmap
    pytest.param([C(regex="(b.*)", replacement="bar_${1}", action=A.LABELMAP)],
                 {"a": "foo", "b1": "bar", "b2": "baz"},
                 {"a": "foo", "b1": "bar", "b2": "baz", "bar_b1": "bar", "bar_b2": "baz"},
                 id="labelmap-prometheus-bar-prefix"),
    pytest.param([C(regex="__meta_(.+)", replacement="$1", action=A.LABELMAP)],
                 {"a": "foo", "__meta_my_bar": "aaa", "__meta_other": "ccc"},
                 {"a": "foo", "__meta_my_bar": "aaa", "__meta_other": "ccc", "my_bar": "aaa", "other": "ccc"},
                 id="labelmap-dollar-1"),
    pytest.param([C(regex="(.*)_src", replacement="${1}_x", action=A.LABELMAP)],
                 {"a_src": "1", "b": "2"}, {"a_src": "1", "a_x": "1", "b": "2"}, id="labelmap-braced-1-with-suffix"),
    pytest.param([C(regex="(.*)_src", replacement="$1_x", action=A.LABELMAP)],
                 {"a_src": "1"}, {"a_src": "1", "": "1"}, id="labelmap-dollar-1_x-is-group-1_x-so-empty-name"),
    pytest.param([C(regex="x(.*)", replacement="xx$1", action=A.LABELMAP)],
                 {"xa": "1"}, {"xa": "1", "xxa": "1"}, id="labelmap-sees-labels-before-the-rule"),
    pytest.param([C(regex="(.)_x", replacement="y", action=A.LABELMAP)],
                 {"b_x": "2", "a_x": "1"}, {"a_x": "1", "b_x": "2", "y": "2"},
                 id="labelmap-collision-last-sorted-name-wins"),
    pytest.param([C(source_labels=("a_x",), target_label="a_x", replacement="3"),
                  C(regex="(.)_x", replacement="y", action=A.LABELMAP)],
                 {"a_x": "1", "b_x": "2"}, {"a_x": "3", "b_x": "2", "y": "3"},
                 id="labelmap-collision-follows-builder-range-order"),
    pytest.param([C(regex="__name__", replacement="metric", action=A.LABELMAP)],
                 {"__name__": "up"}, {"__name__": "up", "metric": "up"}, id="labelmap-copies-__name__"),
    # labeldrop, labelkeep
    pytest.param([C(regex="(b.*)", action=A.LABELDROP)], {"a": "foo", "b1": "bar", "b2": "baz"}, {"a": "foo"},
                 id="labeldrop-prometheus-b-prefix"),
    pytest.param([C(regex="(b.*)", action=A.LABELKEEP)], {"a": "foo", "b1": "bar", "b2": "baz"},
                 {"b1": "bar", "b2": "baz"}, id="labelkeep-prometheus-b-prefix"),
    pytest.param([C(regex="__name__", action=A.LABELDROP)], {"__name__": "up", "job": "a"}, {"job": "a"},
                 id="labeldrop-drops-__name__-too"),
    pytest.param([C(regex="job", action=A.LABELKEEP)], {"__name__": "up", "job": "a"}, {"job": "a"},
                 id="labelkeep-does-not-keep-__name__"),
    pytest.param([C(regex="b", action=A.LABELDROP)], {"b": "1", "b1": "2"}, {"b1": "2"},
                 id="labeldrop-regex-is-anchored"),
    # lowercase, uppercase
    pytest.param([C(source_labels=("foo",), target_label="foo_uppercase", action=A.UPPERCASE),
                  C(source_labels=("foo",), target_label="foo_lowercase", action=A.LOWERCASE)],
                 {"foo": "bAr123Foo"}, {"foo": "bAr123Foo", "foo_lowercase": "bar123foo", "foo_uppercase": "BAR123FOO"},
                 id="lowercase-uppercase-prometheus"),
    pytest.param([C(source_labels=("s",), target_label="t", action=A.UPPERCASE)], {"s": "straße"},
                 {"s": "straße", "t": "STRAßE"}, id="uppercase-sharp-s-stays-as-in-go"),
    pytest.param([C(source_labels=("s",), target_label="t", action=A.LOWERCASE)], {"s": "İSTANBUL"},
                 {"s": "İSTANBUL", "t": "istanbul"}, id="lowercase-dotted-capital-i-is-plain-i"),
    pytest.param([C(source_labels=("s",), target_label="t", action=A.LOWERCASE)], {"s": "ΟΔΟΣ"},
                 {"s": "ΟΔΟΣ", "t": "οδοσ"}, id="lowercase-final-sigma-is-plain-sigma"),
    pytest.param([C(source_labels=("s",), target_label="t", action=A.UPPERCASE)], {"s": "ᾳﬀ"},
                 {"s": "ᾳﬀ", "t": "ᾼﬀ"}, id="uppercase-iota-subscript-and-ligature-as-in-go"),
    pytest.param([C(source_labels=("missing",), target_label="t", action=A.LOWERCASE)], {"t": "x", "a": "y"},
                 {"a": "y"}, id="lowercase-empty-source-deletes-target"),
    pytest.param([], {"b": "2", "a": "1"}, {"a": "1", "b": "2"}, id="no-rules-change-nothing"),
]


@pytest.fixture(params=["re2-low-level-match", "re2-public-api"])
def regex_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "re2-public-api":
        monkeypatch.setattr(relabel, "compile_go_regex", functools.partial(compile_go_regex, low_level=False))
    return str(request.param)


@pytest.mark.parametrize("as_tuple", [True, False], ids=["tuple", "dict"])
@pytest.mark.parametrize(("rules", "given", "expected"), TABLE)
def test_relabel_table(
    rules: list[RelabelConfig],
    given: dict[str, str],
    expected: dict[str, str] | None,
    as_tuple: bool,
    regex_engine: str,
) -> None:
    compiled = compile_rules(rules)
    if as_tuple:
        result: Any = apply(compiled, _labels(given))
        assert result == (None if expected is None else _labels(expected))
    else:
        result = apply(compiled, dict(given))
        assert result == expected


def test_low_level_match_is_in_use_with_this_google_re2() -> None:
    assert compile_go_regex("a(b)").raw is not None


# --- Representation, identity, purity ------------------------------------------------


def test_unchanged_tuple_is_returned_itself() -> None:
    given = _labels({"__name__": "up", "job": "a"})
    assert apply(compile_rules([C(source_labels=("job",), regex="a", action=A.KEEP)]), given) is given


def test_changed_tuple_comes_back_sorted() -> None:
    result = apply(compile_rules([C(target_label="aaa", replacement="1")]), _labels({"b": "2", "z": "3"}))
    assert result == (("aaa", "1"), ("b", "2"), ("z", "3"))


def test_dict_comes_back_as_a_new_dict_and_the_input_is_untouched() -> None:
    given = {"a": "x", "b": "y"}
    result = apply(compile_rules([C(regex="a", action=A.LABELDROP)]), given)
    assert result == {"b": "y"}
    assert given == {"a": "x", "b": "y"}
    unchanged = apply(compile_rules([]), given)
    assert unchanged == given
    assert unchanged is not given


def test_lone_surrogates_are_read_as_replacement_characters() -> None:
    compiled = compile_rules([C(source_labels=("a",), regex="x(.)", target_label="t")])
    assert apply(compiled, (("a", "x\ud800"),)) == (("a", "x\ufffd"), ("t", "\ufffd"))
    assert apply(compiled, {"a": "x\udfff"}) == {"a": "x\ufffd", "t": "\ufffd"}
    hashed = compile_rules([C(source_labels=("a",), target_label="h", action=A.HASHMOD, modulus=7)])
    assert apply(hashed, {"a": "\ud800"}) == {"a": "\ufffd", "h": _prometheus_hashmod("\ufffd", 7)}


def test_drop_stops_processing_the_remaining_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[RelabelAction] = []
    real = relabel._run_step

    def counting(step: Any, builder: Any) -> bool:
        calls.append(step.action)
        return real(step, builder)

    monkeypatch.setattr(relabel, "_run_step", counting)
    compiled = compile_rules([
        C(source_labels=("a",), regex=".*", action=A.KEEP),
        C(source_labels=("a",), regex="x", action=A.DROP),
        C(target_label="never", replacement="set"),
    ])
    assert apply(compiled, {"a": "x"}) is None
    assert calls == [A.KEEP, A.DROP]


def test_memo_stays_bounded_and_results_stay_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relabel, "_MEMO_LIMIT", 4)
    compiled = compile_rules([C(source_labels=("a",), regex="v(.*)", target_label="n")])
    for round_ in range(2):
        for i in range(20):
            assert apply(compiled, {"a": f"v{i}"}) == {"a": f"v{i}", "n": str(i)}, round_
    assert all(len(step.replace_memo) <= 4 for step in compiled._steps)


# --- Compilation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        pytest.param([C(target_label="t"), C(action=A.HASHMOD, target_label="h")], "rules[1].modulus",
                     id="hashmod-without-modulus"),
        pytest.param([C(regex="(", target_label="t")], "rules[0].regex", id="invalid-regex"),
        pytest.param([C(target_label="1abc")], "rules[0].targetLabel", id="invalid-target-label"),
        pytest.param([C(action=A.LABELDROP, target_label="t")], "rules[0].action", id="labeldrop-with-target"),
        pytest.param([C(action=A.LABELMAP, replacement="-bad")], "rules[0].replacement", id="labelmap-bad-replacement"),
        pytest.param([C(source_labels=("a",), target_label="t", action=A.LOWERCASE, replacement="x")],
                     "rules[0].replacement", id="lowercase-with-replacement"),
        pytest.param([C(source_labels=("bad-name",), target_label="t")], "rules[0].sourceLabels[0]",
                     id="invalid-source-label"),
        pytest.param(["not a rule"], "rules[0]: expected a RelabelConfig", id="not-a-relabel-config"),
        pytest.param([C(target_label="t", action="replace")],  # type: ignore[arg-type]
                     "rules[0].action", id="action-not-an-enum"),
    ],
)
def test_compile_rules_names_the_bad_rule_and_field(rules: list[Any], fragment: str) -> None:
    with pytest.raises(ValueError, match="invalid relabel rules") as caught:
        compile_rules(rules)
    assert fragment in str(caught.value)


def test_each_regex_and_template_is_compiled_once_not_per_series(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled_patterns: list[str] = []
    parsed_templates: list[str] = []

    def spy(real: Callable[..., Any], log: list[str]) -> Callable[..., Any]:
        def wrapper(text: str, *args: Any, **kwargs: Any) -> Any:
            log.append(text)
            return real(text, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        relabel_expand, "compile_relabel_regex", spy(compile_relabel_regex, compiled_patterns)
    )
    monkeypatch.setattr(relabel_expand, "parse_template", spy(relabel_expand.parse_template, parsed_templates))
    compiled = compile_rules([
        C(source_labels=("__name__",), regex="go_.*", action=A.DROP),
        C(source_labels=("instance",), regex="(.*):\\d+", target_label="host"),
        C(regex="pod_.*", action=A.LABELDROP),
    ])
    assert compiled_patterns == ["go_.*", "(.*):\\d+", "pod_.*"]
    assert parsed_templates == ["host", "$1"]
    for i in range(500):
        apply(compiled, {"__name__": f"m{i % 7}", "instance": f"h{i}:80", "pod_hash": str(i)})
    assert len(compiled_patterns) == 3
    assert len(parsed_templates) == 2


def test_compiled_rules_are_equal_when_their_configs_are() -> None:
    rules = [C(source_labels=("a",), target_label="b"), C(regex="x", action=A.LABELDROP)]
    first, second = compile_rules(rules), compile_rules(list(rules))
    assert first == second
    assert hash(first) == hash(second)
    assert first != compile_rules(rules[:1])
    assert isinstance(first, CompiledRules)
    assert first.configs == tuple(rules)


# --- Go's template expansion, directly -----------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("$1", "one", id="number"),
        pytest.param("${1}", "one", id="braced-number"),
        pytest.param("$1x", "", id="number-then-letters-is-a-name"),
        pytest.param("${1}x", "onex", id="braced-number-then-letters"),
        pytest.param("$10", "ten", id="two-digit-number"),
        pytest.param("$name", "two", id="name"),
        pytest.param("${name}s", "twos", id="braced-name"),
        pytest.param("$names", "", id="longest-name-wins"),
        pytest.param("$$", "$", id="double-dollar"),
        pytest.param("$", "$", id="trailing-dollar"),
        pytest.param("${", "${", id="open-brace-only"),
        pytest.param("${}", "${}", id="empty-braces"),
        pytest.param("$-1", "$-1", id="dollar-then-punctuation"),
        pytest.param("$0", "whole", id="group-zero"),
        pytest.param("$11", "", id="number-past-last-group"),
        pytest.param("$000000001", "", id="leading-zeros-make-a-name"),
        pytest.param("$01", "two", id="leading-zero-name-can-exist"),
        pytest.param("$123456789", "", id="nine-digits-are-a-number"),
        pytest.param("$1234567890", "one", id="ten-digits-are-a-name"),
        pytest.param("$é", "", id="unicode-letters-form-a-name"),
        pytest.param("a-$1-b", "a-one-b", id="literal-around"),
        pytest.param("no refs", "no refs", id="constant"),
    ],
)
def test_go_template_expansion(template: str, expected: str) -> None:
    groups = ["whole", "one", "two", "", "", "", "", "", "", "", "ten"]
    names = {"name": 2, "01": 2, "123456789": 1, "1234567890": 1}  # RE2 accepts digit-only group names
    parsed = parse_template(template, group_count=10, group_names=names)
    assert parsed.expand(groups) == expected


def test_template_without_references_is_a_constant() -> None:
    assert parse_template("a$$b${", group_count=1, group_names={}).constant == "a$b${"
    assert parse_template("a$1", group_count=1, group_names={}).constant is None


# --- Go's case mapping ----------------------------------------------------------------


def _all_characters() -> str:
    return "".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)


def test_case_mapping_is_one_character_to_one_over_all_of_unicode() -> None:
    text = _all_characters()
    upper, lower = relabel._go_upper(text), relabel._go_lower(text)
    assert len(upper) == len(text)
    assert len(lower) == len(text)
    upper_differs = {c for c, u in zip(text, upper, strict=True) if c.upper() != u}
    lower_differs = {c for c, lo in zip(text, lower, strict=True) if c.lower() != lo}
    # Only where Python's full mapping is several characters (or the final sigma) may Go differ.
    assert upper_differs == {c for c in text if len(c.upper()) > 1}
    assert lower_differs == {c for c in text if len(c.lower()) > 1}
    assert relabel._go_upper("\u1f80\u1fb3\u1ff3\u00df\u0149\ufb01") == "\u1f88\u1fbc\u1ffc\u00df\u0149\ufb01"
    assert relabel._go_lower("\u0130") == "i"


@given(st.text())
def test_case_mapping_is_per_character(text: str) -> None:
    assert relabel._go_upper(text) == "".join(relabel._go_upper(c) for c in text)
    assert relabel._go_lower(text) == "".join(relabel._go_lower(c) for c in text)


# --- Properties -----------------------------------------------------------------------

REGEXES = ["(.*)", "", ".*", "a.*", "(?P<x>.)(.*)", "(a)|(b)", ".*_total", "(.+?)(\\:\\d+)?;(\\d+)", "é+", "(\\w+)",
           "[^;]*;(.*)", "(?i)A(.)", "x*", "(?s).+"]
RULE_NAMES = ["a", "b", "job", "__name__", "missing", "a_x", "t"]
anything = st.text(st.characters(exclude_categories=()), max_size=10)
with_surrogates = st.one_of(anything, st.sampled_from(["\ud800", "a\udfffb", "x\ud83d"]))
label_sets = st.dictionaries(st.one_of(st.sampled_from([*RULE_NAMES, "", "é", "a b"]), with_surrogates),
                             with_surrogates, max_size=8)


@st.composite
def valid_rules(draw: st.DrawFn) -> RelabelConfig:
    action = draw(st.sampled_from(list(RelabelAction)))
    sources = draw(st.one_of(st.none(), st.lists(st.sampled_from(RULE_NAMES), max_size=3).map(tuple)))
    separator = draw(st.one_of(st.just(";"), anything))
    regex = draw(st.sampled_from(REGEXES))
    target = draw(st.sampled_from([*RULE_NAMES[:-2], "t"]))
    rule: RelabelConfig
    if action in (A.LABELDROP, A.LABELKEEP):
        rule = C(regex=regex, action=action)
    elif action in (A.KEEPEQUAL, A.DROPEQUAL):
        rule = C(source_labels=sources, target_label=target, action=action)
    elif action in (A.LOWERCASE, A.UPPERCASE):
        rule = C(source_labels=sources, separator=separator, target_label=target, action=action)
    elif action is A.HASHMOD:
        modulus = draw(st.integers(1, 2**64 - 1))
        rule = C(source_labels=sources, separator=separator, target_label=target, modulus=modulus, action=action)
    elif action is A.LABELMAP:
        replacement = draw(st.sampled_from(["$1", "${1}_x", "x_$1", "copy_${x}", "$1_x", "y", "$0"]))
        rule = C(regex=regex, replacement=replacement, action=action)
    elif action is A.REPLACE:
        target = draw(st.sampled_from([target, "$1", "${1}_x", "l_$x", "${2}", "$0x"]))
        replacement = draw(st.one_of(st.sampled_from(["$1", "${1}_x", "$$", "$x", "${2}-$1", "", "$0"]), anything))
        rule = C(source_labels=sources, separator=separator, regex=regex, target_label=target, replacement=replacement)
    else:
        rule = C(source_labels=sources, separator=separator, regex=regex, action=action)
    assume(not relabel_problems(rule))
    return rule


def _is_label_set(result: LabelSet) -> bool:
    names = [name for name, _ in result]
    return names == sorted(set(names)) and all(value for _, value in result)


@settings(deadline=None, max_examples=300)
@given(rules=st.lists(valid_rules(), max_size=4), labels=label_sets)
def test_valid_rules_never_raise_on_any_labels(rules: list[RelabelConfig], labels: dict[str, str]) -> None:
    compiled = compile_rules(rules)
    from_tuple = apply(compiled, _labels(labels))
    from_dict = apply(compiled, labels)
    if from_tuple is None:
        assert from_dict is None
        return
    assert _is_label_set(from_tuple)
    assert from_dict is not None
    assert dict(from_tuple) == from_dict


@settings(deadline=None)
@given(labels=st.dictionaries(st.sampled_from(RULE_NAMES), st.text(max_size=6)), regex=st.sampled_from(REGEXES),
       sources=st.lists(st.sampled_from(RULE_NAMES), min_size=1, max_size=3), separator=st.text(max_size=2))
def test_keep_and_drop_with_one_regex_partition_the_input(
    labels: dict[str, str], regex: str, sources: list[str], separator: str
) -> None:
    given_ = _labels({name: value for name, value in labels.items() if value})
    kept, dropped = (
        apply(compile_rules([C(source_labels=tuple(sources), separator=separator, regex=regex, action=action)]), given_)
        for action in (A.KEEP, A.DROP)
    )
    assert (kept is None) != (dropped is None)
    assert (kept if kept is not None else dropped) is given_


@settings(deadline=None)
@given(regex=st.sampled_from(REGEXES), text=st.one_of(st.text(max_size=12), st.sampled_from(["a", "ab", "x;1", "é"])))
def test_low_level_and_public_api_agree(regex: str, text: str) -> None:
    fast, portable = compile_go_regex(regex), compile_go_regex(regex, low_level=False)
    assert fast.raw is not None
    assert fast.matches(text) == portable.matches(text)
    assert fast.submatches(text) == portable.submatches(text)
