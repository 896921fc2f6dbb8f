"""Rate limiters that decide how long a work-queue key waits before its next try.

A limiter answers three questions about a key: how long to wait before retrying it
now (``when``, which also records the attempt), how many attempts it has recorded
(``retries``), and to stop tracking it (``forget``, called once the key succeeds).
They are small, sync and composable, as client-go's ``default_rate_limiters.go``:

* ``ItemExponentialRateLimiter`` backs off one key: ``base * 2**failures``, capped.
* ``BucketRateLimiter`` is one token bucket shared by every key, so a storm of
  failures across many keys cannot exceed ``qps`` retries per second after ``burst``.
* ``MaxOfRateLimiter`` asks every limiter and waits the longest answer.

``default_controller_rate_limiter()`` is client-go's ``DefaultControllerRateLimiter``:
the max of exponential (5 ms to 1000 s) and bucket (10 qps, burst 100).

The bucket reads ``trio.current_time()``, so its ``when`` must be called inside a trio
run; no limiter ever blocks: the queue does the waiting.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

import trio

__all__ = [
    "BucketRateLimiter",
    "ItemExponentialRateLimiter",
    "MaxOfRateLimiter",
    "RateLimiter",
    "default_controller_rate_limiter",
]

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class RateLimiter(Protocol[K_contra]):
    """How long a key waits before its next try; what a ``WorkQueue`` is given."""

    def when(self, item: K_contra) -> float:
        """Record one more attempt for ``item`` and return the seconds to wait before it."""
        ...

    def forget(self, item: K_contra) -> None:
        """Stop tracking ``item``: its next ``when`` starts from scratch."""
        ...

    def retries(self, item: K_contra) -> int:
        """How many attempts ``when`` has recorded for ``item`` since it was last forgotten."""
        ...


class ItemExponentialRateLimiter(Generic[K]):
    """Per-key exponential backoff: ``base_delay_s * 2**n`` for the n-th retry, at most ``max_delay_s``."""

    def __init__(self, *, base_delay_s: float = 0.005, max_delay_s: float = 1000.0) -> None:
        """Args:
            base_delay_s: the first delay; must be positive and finite.
            max_delay_s: the cap; must be finite and at least ``base_delay_s``.

        Raises:
            ValueError: naming the bad parameter.
        """
        if not (0 < base_delay_s < math.inf):
            raise ValueError(f"base_delay_s must be positive and finite, got {base_delay_s!r}")
        if not (base_delay_s <= max_delay_s < math.inf):
            raise ValueError(f"max_delay_s must be finite and at least base_delay_s, got {max_delay_s!r}")
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._failures: dict[K, int] = {}

    def when(self, item: K) -> float:
        failures = self._failures.get(item, 0)
        self._failures[item] = failures + 1
        # 2.0**1024 overflows; long before that the cap applies, so clamp the exponent.
        backoff = self.base_delay_s * 2.0 ** min(failures, 1023)
        return min(backoff, self.max_delay_s)

    def forget(self, item: K) -> None:
        self._failures.pop(item, None)

    def retries(self, item: K) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """One token bucket for all keys: ``burst`` tries at once, then ``qps`` tries per second.

    The bucket starts full. Each ``when`` takes a token, going into debt if none is
    left, and returns how long until that debt is repaid (golang.org/x/time/rate's
    ``Reserve().Delay()``). It tracks no keys, so ``forget`` does nothing and
    ``retries`` is always 0.
    """

    def __init__(self, *, qps: float = 10.0, burst: int = 100) -> None:
        """Args:
            qps: tokens added per second; must be positive and finite.
            burst: bucket size; must be at least 1.

        Raises:
            ValueError: naming the bad parameter.
        """
        if not (0 < qps < math.inf):
            raise ValueError(f"qps must be positive and finite, got {qps!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an integer of at least 1, got {burst!r}")
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def when(self, item: Hashable) -> float:
        now = trio.current_time()
        if self._last is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return max(0.0, -self._tokens / self.qps)

    def forget(self, item: Hashable) -> None:
        pass

    def retries(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter(Generic[K]):
    """Asks every limiter and waits the longest; ``retries`` is the largest count any of them holds."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        """Raises:
        ValueError: if ``limiters`` is empty.
        """
        if not limiters:
            raise ValueError("limiters must name at least one rate limiter")
        self.limiters: tuple[RateLimiter[K], ...] = limiters

    def when(self, item: K) -> float:
        # Every limiter must record the attempt, so no short-circuiting max() over a generator.
        return max([limiter.when(item) for limiter in self.limiters])

    def forget(self, item: K) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def retries(self, item: K) -> int:
        return max(limiter.retries(item) for limiter in self.limiters)


def default_controller_rate_limiter() -> MaxOfRateLimiter[K]:
    """client-go's default: per-key exponential 5 ms..1000 s, and 10 qps with a burst of 100 overall."""
    return MaxOfRateLimiter(
        ItemExponentialRateLimiter(base_delay_s=0.005, max_delay_s=1000.0),
        BucketRateLimiter(qps=10.0, burst=100),
    )
