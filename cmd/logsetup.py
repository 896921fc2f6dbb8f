"""Structured JSON logging, configured once for the whole process.

Every record becomes one JSON object with ``level``, ``time`` (RFC 3339, UTC), ``msg``
(constant text), ``logger`` and the record's ``extra`` fields, the shape the original's
logrus JSONFormatter produced, so log pipelines built for it keep working.

Third-party libraries log at their own pace: httpx and httpcore one line per HTTP call
(the API server, backends, remote-write destinations), hypercorn one per request served,
watchfiles one per batch of file changes. Below ``debug`` they are held at WARNING
(:data:`QUIET_LOGGERS`), so the service's own lines are what an operator reads; with
``--log-level=debug`` they speak again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

__all__ = ["LEVELS", "QUIET_LOGGERS", "JSONFormatter", "configure_logging", "quiet_third_party"]

LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "panic": logging.CRITICAL,
}
"""logrus level names, as the original's ``--log-level`` took them."""

QUIET_LOGGERS = ("httpx", "httpcore", "hypercorn.access", "hypercorn.error", "watchfiles", "kubernetes")
"""Libraries' loggers held at WARNING unless the level is ``debug`` (or ``trace``)."""

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JSONFormatter(logging.Formatter):
    """Format a record as one line of JSON; values that JSON cannot hold become strings."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "level": _level_name(record.levelno),
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "msg": record.getMessage(),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def _level_name(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "fatal"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def configure_logging(level: str, *, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr) as JSON at ``level`` or above.

    Raises:
        ValueError: ``level`` is not a logrus level name.
    """
    if level.lower() not in LEVELS:
        raise ValueError(f"--log-level: unknown level {level!r}; one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level.lower()])
    quiet_third_party(level)


def quiet_third_party(level: str) -> None:
    """Hold :data:`QUIET_LOGGERS` at WARNING, unless ``level`` is ``debug`` or finer (then unset)."""
    verbose = LEVELS.get(level.lower(), logging.INFO) <= logging.DEBUG
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
