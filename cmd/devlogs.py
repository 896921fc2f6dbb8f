"""Where ``mtproxy dev``'s log records go: stderr, or a file plus the console's notes.

- Plain mode (``--no-console``, or stdout not a terminal): JSON lines on stderr at
  ``--log-level``, as the service logs (:func:`mtproxy.cmd.logsetup.configure_logging`).
- Console mode: the terminal belongs to the console, so JSON lines go to a log file
  (``.dev/dev.log``, kept after the run for reading), and warnings and errors of the last
  minute are also kept by a :class:`LogTail`, whose lines the console shows as notes.

Either way the proxy's ``request served`` records feed :class:`RecentRequests` even when
``--log-level`` is above info: the root logger lets info records be made, and the output
handlers keep their own level.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mtproxy.cmd.devrequests import PROXY_REQUEST_LOGGER, RecentRequests
from mtproxy.cmd.logsetup import LEVELS, JSONFormatter, configure_logging, quiet_third_party

__all__ = ["LogTail", "configure_dev_logging"]


class LogTail(logging.Handler):
    """Keeps the ``keep`` newest records at WARNING or above as short lines, for ``max_age_s``."""

    def __init__(self, *, keep: int = 5, max_age_s: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        super().__init__(level=logging.WARNING)
        self._lines: collections.deque[tuple[float, str]] = collections.deque(maxlen=keep)
        self._max_age_s = max_age_s
        self._clock = clock
        self._mutex = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        detail = {k: v for k, v in vars(record).items() if k in ("server", "error", "problem", "key", "reason")}
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if detail:
            text += " " + " ".join(f"{k}={str(v).splitlines()[0][:160]}" for k, v in detail.items())
        stamp = dt.datetime.fromtimestamp(record.created, tz=dt.UTC).strftime("%H:%M:%S")
        with self._mutex:
            self._lines.append((record.created, f"{stamp} {text}"))

    def lines(self) -> tuple[str, ...]:
        """The newest lines not older than ``max_age_s``, oldest first."""
        oldest = self._clock() - self._max_age_s
        with self._mutex:
            return tuple(line for created, line in self._lines if created >= oldest)


def configure_dev_logging(level: str, *, requests: RecentRequests, log_file: Path | None) -> LogTail | None:
    """Set up logging for ``mtproxy dev``; return the console's tail (None in plain mode).

    Args:
        level: ``--log-level``.
        requests: fed the proxy's request records.
        log_file: console mode: where JSON lines go; None: plain mode (stderr).

    Raises:
        ValueError: ``level`` is not a logrus level name.
    """
    configure_logging(level)
    root = logging.getLogger()
    threshold = LEVELS[level.lower()]
    tail: LogTail | None = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(log_file, mode="w", encoding="utf-8")
        to_file.setFormatter(JSONFormatter())
        tail = LogTail()
        root.handlers[:] = [to_file, tail]
    for output in root.handlers:
        if output is not tail:
            output.setLevel(threshold)
    root.setLevel(min(threshold, logging.INFO))
    quiet_third_party(level)
    request_logger = logging.getLogger(PROXY_REQUEST_LOGGER)
    request_logger.addHandler(requests)
    return tail
