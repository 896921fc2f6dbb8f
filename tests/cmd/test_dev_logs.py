"""The console's log tail: warnings and errors of the last minute, as short lines."""

from __future__ import annotations

import logging

from mtproxy.cmd.devlogs import LogTail


def _log(tail: LogTail, level: int, message: str, created: float, **fields: object) -> None:
    """As a logger calls its handlers: only at or above the handler's level."""
    record = logging.LogRecord("mtproxy.x", level, __file__, 1, message, None, None)
    record.created = created
    record.__dict__.update(fields)
    if level >= tail.level:
        tail.handle(record)


def test_keeps_warnings_with_their_fields_and_drops_what_is_older_than_a_minute() -> None:
    now = [1_767_225_600.0]
    tail = LogTail(keep=3, max_age_s=60, clock=lambda: now[0])
    _log(tail, logging.INFO, "not kept", now[0])
    _log(tail, logging.WARNING, "dev server exited", now[0] - 120, server="pushgateway")
    _log(tail, logging.ERROR, "dev server failed to start", now[0] - 5, server="x", error="bad\nsecond line")
    assert tail.lines() == ("23:59:55 error: dev server failed to start server=x error=bad",)


def test_only_the_newest_are_kept() -> None:
    tail = LogTail(keep=2, clock=lambda: 1000.0)
    for index in range(4):
        _log(tail, logging.WARNING, f"w{index}", 999.0)
    assert [line.split(" ", 1)[1] for line in tail.lines()] == ["warning: w2", "warning: w3"]
