"""Waiting for a condition in a test: poll with short trio sleeps, fail after a deadline."""

from __future__ import annotations

from collections.abc import Callable

import trio

__all__ = ["wait_until"]


async def wait_until(predicate: Callable[[], bool], *, timeout_s: float = 10.0, interval_s: float = 0.005) -> None:
    """Return once ``predicate()`` is true.

    Raises:
        AssertionError: it did not become true within ``timeout_s``.
    """
    with trio.move_on_after(timeout_s):
        while not predicate():
            await trio.sleep(interval_s)
        return
    raise AssertionError(f"condition not met within {timeout_s} s")
