"""Run code in a child Python process, where a crash in native code is an exit signal, not a lost test run.

A stack overflow in the native PromQL parser is a SIGSEGV: no ``except`` clause catches it,
and in-process it would end pytest itself. Tests that feed hostile text to an entry point
therefore run it here and check how the child ended.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence

__all__ = ["assert_no_signal", "run_python", "signal_name"]


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
