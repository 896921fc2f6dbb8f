"""Tests for api/promql_guard.py: deep or huge text never reaches the native parser, and the
parser is called through the guard only."""

from __future__ import annotations

import ast
import json
import pathlib

import pytest
from survival import assert_no_signal, run_python, signal_name

from mtproxy.api.promql_guard import (
    MAX_NESTING,
    MAX_TEXT_CHARS,
    ParserInputRefused,
    ParserSyntaxError,
    check_parser_input,
    parse_guarded,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRODUCTION = ("api", "controller", "reconcilers", "proxy", "remotewrite", "cmd", "apidouble", "bench")

# The red team's crashers and their relatives: each overflows the parser's native stack in
# the main thread of a process with an 8 MiB stack.
CRASHERS = [
    pytest.param("-" * 9000 + "up", id="unary-chain-9000"),
    pytest.param("^".join(["up"] * 5000), id="power-chain-5000"),
    pytest.param(" or ".join(["up"] * 5000), id="or-chain-5000"),
    pytest.param("(" * 10_000 + "up" + ")" * 10_000, id="parentheses-10000"),
    pytest.param("abs(" * 9000 + "up" + ")" * 9000, id="calls-9000"),
    pytest.param("{a=~`" + "(" * 9000 + "`}", id="brackets-inside-a-raw-string"),
    pytest.param('# "\n' + "-" * 9000 + "up", id="behind-a-comment-with-a-quote"),
]


def _at_the_limit() -> dict[str, str]:
    """One text per shape with exactly MAX_NESTING counted tokens; binary chains cost the most stack per token."""
    n = MAX_NESTING
    return {
        "power-chain": "^".join(["up"] * (n + 1)),
        "comparison-chain": " > bool ".join(["up"] * (n + 1)),
        "or-chain": " or ".join(["up"] * (n + 1)),
        "unary-chain": "-" * n + "up",
        "parentheses": "(" * n + "up" + ")" * n,
        "calls": "abs(" * n + "up" + ")" * n,
        "power-of-negations": "up" + "^-up" * (n // 2),
    }


@pytest.mark.parametrize("text", CRASHERS)
def test_deep_text_is_refused_before_the_parser_sees_it(text: str) -> None:
    with pytest.raises(ParserInputRefused, match=f"more than the {MAX_NESTING} allowed") as refusal:
        check_parser_input(text, what="query")
    assert refusal.value.construct == "query"


def test_one_token_over_the_limit_is_refused_and_the_limit_itself_passes() -> None:
    check_parser_input("-" * MAX_NESTING + "up", what="query")
    with pytest.raises(ParserInputRefused, match=f"has {MAX_NESTING + 1} operators"):
        check_parser_input("-" * (MAX_NESTING + 1) + "up", what="query")


def test_text_longer_than_the_callers_limit_is_refused_by_name() -> None:
    with pytest.raises(ParserInputRefused, match="is 17 characters long, more than the 16 allowed") as refusal:
        parse_guarded('up{job="aaaaaa"}x', what="match[]", max_chars=16)
    assert refusal.value.construct == "match[]"


def test_no_caller_can_raise_the_ceiling() -> None:
    with pytest.raises(ParserInputRefused, match=f"more than the {MAX_TEXT_CHARS} allowed"):
        check_parser_input('"' + "a" * MAX_TEXT_CHARS + '"', what="query", max_chars=10 * MAX_TEXT_CHARS)


@pytest.mark.parametrize(
    ("text", "construct"),
    [
        pytest.param('x{a="\\xff"}', "\\xff", id="hex-escape-high-byte"),
        pytest.param('x{a="\\377"}', "\\377", id="octal-escape-high-byte"),
        pytest.param("x{a=`\\`}", "\\`", id="backslash-before-backtick"),
    ],
)
def test_escape_that_prometheus_reads_as_another_value_is_refused(text: str, construct: str) -> None:
    with pytest.raises(ParserInputRefused) as refusal:
        parse_guarded(text, what="selector")
    assert refusal.value.construct == construct


def test_what_the_parser_cannot_read_is_a_syntax_error() -> None:
    with pytest.raises(ParserSyntaxError):
        parse_guarded("sum(", what="query")


def test_every_shape_at_the_limit_parses_in_a_thread_with_glibcs_smallest_default_stack() -> None:
    """glibc gives a thread 2 MiB when the stack rlimit is unlimited; worker threads (trio.to_thread)
    get at least that, so what the guard passes must parse there with room to spare."""
    code = (
        "import json, sys, threading\n"
        "from mtproxy.api.promql_guard import parse_guarded\n"
        "texts = json.loads(sys.stdin.read())\n"
        "threading.stack_size(2 * 1024 * 1024)\n"
        "def parse_all():\n"
        "    for name, text in texts.items():\n"
        "        parse_guarded(text, what=name)\n"
        "        print('parsed', name, flush=True)\n"
        "worker = threading.Thread(target=parse_all)\n"
        "worker.start()\n"
        "worker.join()\n"
    )
    texts = _at_the_limit()
    completed = run_python(code, stdin=json.dumps(texts))
    assert_no_signal(completed, what="parsing at the nesting limit")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.count("parsed") == len(texts)


def test_deep_text_really_crashes_the_bare_parser() -> None:
    """The premise of the guard, kept honest: unguarded, deep text ends the process. (A small
    thread stack makes the crash quick; in a main thread, 9000 levels take seconds to crash.)"""
    code = (
        "import threading, promql_parser\n"
        "threading.stack_size(256 * 1024)\n"
        "worker = threading.Thread(target=promql_parser.parse, args=('-' * 2000 + 'up',))\n"
        "worker.start()\n"
        "worker.join()\n"
    )
    assert signal_name(run_python(code).returncode) == "SIGSEGV"


def _parse_calls(path: pathlib.Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = []
    imported_parse = False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "promql_parser":
            imported_parse = imported_parse or any(alias.name == "parse" for alias in node.names)
            if imported_parse:
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "parse"
            and isinstance(node.value, ast.Name)
            and node.value.id == "promql_parser"
        ):
            lines.append(node.lineno)
    return lines


def test_only_the_guard_calls_the_native_parser() -> None:
    guard = ROOT / "api" / "promql_guard.py"
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in PRODUCTION
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != guard
        for line in _parse_calls(path)
    ]
    assert offenders == []
    assert _parse_calls(guard), "the guard no longer calls the parser: this test checks nothing"


def test_operators_inside_strings_do_not_count_towards_the_depth() -> None:
    pods = "|".join(f"app-{i}-x" for i in range(2000))  # 4000 '-' and a Grafana-sized alternation
    for text in (f'up{{pod=~"{pods}"}}', f"up{{pod=~'{pods}'}}", 'up{a="(((("} # ((((((\n'):
        check_parser_input(text, what="query")
    parse_guarded(f'sum(rate(http_requests_total{{pod=~"{pods}"}}[5m]))', what="query")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("`" + "-" * 600 + "`", id="backtick-strings-count-everything"),
        pytest.param('"' + "-" * 600, id="unterminated-string-counts-everything"),
        pytest.param('"\\"' + "-" * 600 + "up", id="escaped-quote-does-not-end-the-string"),
        pytest.param('# "\n' + "-" * 600 + 'up # "', id="quote-in-a-comment-opens-no-string"),
        pytest.param('"a\n' + "-" * 600 + 'up"', id="a-newline-in-a-string-counts-everything"),
    ],
)
def test_no_string_spelling_hides_an_operator(text: str) -> None:
    with pytest.raises(ParserInputRefused, match="operators and brackets"):
        check_parser_input(text, what="query")
