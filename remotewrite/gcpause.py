"""Pausing CPython's cyclic garbage collector around bulk work that makes no reference cycles.

Reading 100,000 series makes hundreds of thousands of small containers (sample tuples,
label dicts) in a burst. Each 700 of them trigger a young collection, and those that
survive are traversed again by the older generations, so an answer's parse took twice as
long with the collector running (bench/bench_remote_write.py). None of these objects can
form a cycle, so nothing is lost by not looking for cycles among them: the transient ones
are freed by reference counting as usual, and the survivors are traversed once, by the
first collection after the pause (which also stops tracking the tuples among them).

The pause is meant for synchronous stretches only (no ``await`` inside): it holds for the
whole process, and a pause across I/O would let other tasks' garbage cycles pile up.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block (restored as it was, exception or not)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
