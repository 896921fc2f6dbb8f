"""Run code in a child Python process, where a crash in native code is an exit signal, not a lost test run.

A stack overflow in the native PromQL parser is a SIGSEGV: no ``except`` clause catches it,
and in-process it would end pytest itself. Tests that feed hostile text to an entry point
therefore run it here and check how the child ended. :func:`hostile_texts` generates the
text: the red team's crashers, oversized text, and seeded random nestings of every construct
that nests.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from mtproxy.api.promql_guard import MAX_NESTING, MAX_TEXT_CHARS

__all__ = ["HostileText", "assert_no_signal", "hostile_texts", "run_command", "run_python", "signal_name"]


def run_python(
    code: str, *args: str, timeout_s: float = 120.0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with the interpreter running the tests (``-P``: the tree is not on the path)."""
    return run_command([sys.executable, "-P", "-c", code, *args], timeout_s=timeout_s, stdin=stdin)


def run_command(
    argv: Sequence[str], *, timeout_s: float = 120.0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to its end, capturing text output."""
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, input=stdin, check=False)


def signal_name(returncode: int) -> str | None:
    """``SIGSEGV`` for a child killed by that signal, None for a normal exit."""
    if returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def assert_no_signal(completed: subprocess.CompletedProcess[str], *, what: str) -> None:
    """Fail, naming the signal and the child's last words, when the child was killed by one."""
    name = signal_name(completed.returncode)
    assert name is None, f"{what} was killed by {name}; stderr tail:\n{completed.stderr[-2000:]}"


@dataclass(frozen=True, slots=True)
class HostileText:
    """One generated input: ``refused`` when no entry point may accept it (too deep or too large)."""

    name: str
    text: str
    refused: bool


# Every construct that nests, as (before, after) around an inner expression.
_WRAPPERS = (
    ("-", ""),
    ("(", ")"),
    ("abs(", ")"),
    ("sum(", ")"),
    ("sum by (job) (", ")"),
    ("-(", ")"),
    ("", " ^ up"),
    ("up or ", ""),
    ("", " > bool up"),
    ("", " and on (job) up"),
    ("label_replace(", ', "a", "b", "c", "d")'),
    ("(", ")[5m:1m]"),
    ("max_over_time((", ")[5m:])"),
)


def hostile_texts(*, seed: int = 15, random_count: int = 12) -> list[HostileText]:
    """The red team's crashers, oversized text, ``random_count`` seeded random deep nestings,
    and a few texts exactly at the nesting limit (which must be served, not refused)."""
    texts = [
        HostileText("unary-9000", "-" * 9000 + "up", True),
        HostileText("power-chain-5000", "^".join(["up"] * 5000), True),
        HostileText("selector-behind-unary-9000", "-" * 9000 + 'up{job="a"}', True),
        HostileText("deep-regex-in-a-label-value", '{job=~"' + "(" * 9000 + ")" * 9000 + '"}', True),
        HostileText("label-value-beyond-the-ceiling", 'up{job="' + "a" * MAX_TEXT_CHARS + '"}', True),
        HostileText("many-matchers", "up{" + ",".join(f'l{i}="v"' for i in range(20_000)) + "}", True),
    ]
    rng = random.Random(seed)
    for index in range(random_count):
        depth = rng.randint(MAX_NESTING + 1, 9000)
        before, after = [], []
        for _ in range(depth):
            opening, closing = rng.choice(_WRAPPERS)
            before.append(opening)
            after.append(closing)
        text = "".join(before) + 'up{job="a"}' + "".join(reversed(after))
        texts.append(HostileText(f"random-{seed}-{index}-depth-{depth}", text, True))
    texts.extend(
        [
            HostileText("power-chain-at-the-limit", "^".join(["up"] * (MAX_NESTING + 1)), False),
            HostileText("unary-at-the-limit", "-" * MAX_NESTING + "up", False),
            HostileText("calls-at-the-limit", "abs(" * MAX_NESTING + "up" + ")" * MAX_NESTING, False),
        ]
    )
    return texts
