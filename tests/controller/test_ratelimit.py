"""Tests for controller/ratelimit.py: each limiter's delays, memory and argument checks."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
import trio.testing

from mtproxy.controller import ratelimit
from mtproxy.controller.ratelimit import (
    BucketRateLimiter,
    ItemExponentialRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)


def test_all_lists_public_names() -> None:
    defined_here = {
        name
        for name, value in vars(ratelimit).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == ratelimit.__name__
    }
    assert sorted(ratelimit.__all__) == sorted(defined_here)


def test_backoff_doubles_from_5ms_to_1000s() -> None:
    limiter = ItemExponentialRateLimiter[str]()
    delays = [limiter.when("a") for _ in range(21)]
    # 5 ms * 2**17 = 655.36 s is the last step under the cap; 2**18 would be 1310.72 s.
    assert delays[:18] == pytest.approx([0.005 * 2**n for n in range(18)])
    assert delays[18:] == [1000.0, 1000.0, 1000.0]


def test_backoff_is_per_key() -> None:
    limiter = ItemExponentialRateLimiter[str](base_delay_s=1.0, max_delay_s=60.0)
    assert [limiter.when("a") for _ in range(3)] == [1.0, 2.0, 4.0]
    assert limiter.when("b") == 1.0
    assert (limiter.retries("a"), limiter.retries("b")) == (3, 1)


def test_forget_resets_backoff_and_retries() -> None:
    limiter = ItemExponentialRateLimiter[str](base_delay_s=1.0, max_delay_s=60.0)
    for _ in range(4):
        limiter.when("a")
    limiter.forget("a")
    assert limiter.retries("a") == 0
    assert limiter.when("a") == 1.0
    limiter.forget("never-seen")


def test_backoff_stays_at_cap_after_huge_failure_counts() -> None:
    limiter = ItemExponentialRateLimiter[str](base_delay_s=0.005, max_delay_s=1000.0)
    delays = [limiter.when("a") for _ in range(5000)]
    assert delays[-1] == 1000.0
    assert limiter.retries("a") == 5000


async def test_bucket_allows_burst_then_qps(mock_clock: trio.testing.MockClock) -> None:
    limiter = BucketRateLimiter(qps=10.0, burst=100)
    assert [limiter.when(i) for i in range(100)] == [0.0] * 100
    assert [limiter.when(i) for i in range(3)] == pytest.approx([0.1, 0.2, 0.3])


async def test_bucket_refills_with_time_up_to_burst(mock_clock: trio.testing.MockClock) -> None:
    limiter = BucketRateLimiter(qps=2.0, burst=3)
    assert [limiter.when("k") for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.5])
    mock_clock.jump(2.5)  # repays the debt of one token and refills four, capped at three
    assert [limiter.when("k") for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.5])


async def test_bucket_tracks_no_keys(mock_clock: trio.testing.MockClock) -> None:
    limiter = BucketRateLimiter(qps=1.0, burst=1)
    limiter.when("a")
    assert limiter.when("a") == pytest.approx(1.0)
    limiter.forget("a")
    assert limiter.retries("a") == 0
    assert limiter.when("b") == pytest.approx(2.0)


async def test_max_of_waits_longest_and_every_limiter_records(mock_clock: trio.testing.MockClock) -> None:
    slow = ItemExponentialRateLimiter[str](base_delay_s=1.0, max_delay_s=100.0)
    fast = ItemExponentialRateLimiter[str](base_delay_s=0.5, max_delay_s=100.0)
    limiter = MaxOfRateLimiter(fast, slow)
    assert [limiter.when("a") for _ in range(3)] == [1.0, 2.0, 4.0]
    assert (slow.retries("a"), fast.retries("a"), limiter.retries("a")) == (3, 3, 3)
    limiter.forget("a")
    assert (slow.retries("a"), fast.retries("a")) == (0, 0)


async def test_default_controller_rate_limiter_is_max_of_exponential_and_bucket(
    mock_clock: trio.testing.MockClock,
) -> None:
    limiter: RateLimiter[str] = default_controller_rate_limiter()
    assert limiter.when("a") == pytest.approx(0.005)
    assert limiter.when("a") == pytest.approx(0.010)
    # Burst of 100 spent (2 above + 98 here): the bucket's 10 qps now dominates a fresh key.
    for i in range(98):
        limiter.when(f"k{i}")
    assert limiter.when("fresh") == pytest.approx(0.1)
    assert limiter.retries("a") == 2


@pytest.mark.parametrize(
    ("make", "parameter"),
    [
        pytest.param(lambda: ItemExponentialRateLimiter(base_delay_s=0.0), "base_delay_s", id="zero-base"),
        pytest.param(lambda: ItemExponentialRateLimiter(base_delay_s=float("nan")), "base_delay_s", id="nan-base"),
        pytest.param(
            lambda: ItemExponentialRateLimiter(base_delay_s=2.0, max_delay_s=1.0),
            "max_delay_s",
            id="max-below-base",
        ),
        pytest.param(lambda: ItemExponentialRateLimiter(max_delay_s=float("inf")), "max_delay_s", id="infinite-max"),
        pytest.param(lambda: BucketRateLimiter(qps=0.0), "qps", id="zero-qps"),
        pytest.param(lambda: BucketRateLimiter(qps=float("inf")), "qps", id="infinite-qps"),
        pytest.param(lambda: BucketRateLimiter(burst=0), "burst", id="zero-burst"),
        pytest.param(lambda: BucketRateLimiter(burst=2.5), "burst", id="fractional-burst"),  # type: ignore[arg-type]
        pytest.param(lambda: MaxOfRateLimiter(), "limiters", id="max-of-nothing"),
    ],
)
def test_constructor_rejects_bad_argument_naming_it(make: Callable[[], object], parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        make()
