"""The dev console's request buffer reads the proxy's ``request served`` records, and nothing else."""

from __future__ import annotations

import logging

import pytest

from mtproxy.cmd.devrequests import PROXY_REQUEST_LOGGER, RecentRequests


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _served(handler: RecentRequests, tenant: str, status: int, *, endpoint: str = "/api/v1/query") -> None:
    record = logging.LogRecord(PROXY_REQUEST_LOGGER, logging.INFO, __file__, 1, "request served", None, None)
    record.__dict__.update(tenant=tenant, endpoint=endpoint, method="GET", status=status, duration_ms=2.5)
    handler.handle(record)


def test_counts_per_tenant_rejections_and_errors() -> None:
    clock = _Clock()
    buffer = RecentRequests(clock=clock)
    clock.now += 10
    for status in (200, 200, 403, 503):
        _served(buffer, "team-a", status)
    _served(buffer, "team-c", 403)
    stats = buffer.statistics()
    team_a = stats.tenants["team-a"]
    assert (team_a.requests, team_a.rejected, team_a.errors) == (4, 1, 1)
    assert team_a.per_second == pytest.approx(0.4)
    assert stats.total == 5
    assert [r.tenant for r in stats.recent] == ["team-c", "team-a", "team-a", "team-a", "team-a"]


def test_the_rate_is_over_the_window_only() -> None:
    clock = _Clock()
    buffer = RecentRequests(clock=clock, window_s=60)
    _served(buffer, "team-a", 200)
    clock.now += 120
    _served(buffer, "team-a", 200)
    assert buffer.statistics().tenants["team-a"].per_second == pytest.approx(1 / 60)


def test_other_records_and_malformed_fields_are_ignored() -> None:
    buffer = RecentRequests()
    other = logging.LogRecord(PROXY_REQUEST_LOGGER, logging.INFO, __file__, 1, "proxy listening", None, None)
    buffer.handle(other)
    bad = logging.LogRecord(PROXY_REQUEST_LOGGER, logging.INFO, __file__, 1, "request served", None, None)
    bad.__dict__.update(status="not a number")
    buffer.handle(bad)
    assert buffer.statistics().total == 0


def test_only_the_newest_are_kept() -> None:
    buffer = RecentRequests(keep=3)
    for index in range(5):
        _served(buffer, f"t{index}", 200)
    assert [r.tenant for r in buffer.statistics(newest=10).recent] == ["t4", "t3", "t2"]


def test_keep_and_window_are_validated() -> None:
    with pytest.raises(ValueError, match=r"^keep: "):
        RecentRequests(keep=0)
    with pytest.raises(ValueError, match=r"^window_s: "):
        RecentRequests(window_s=0)
