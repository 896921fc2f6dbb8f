"""What a reconcile function is given and what it answers, as controller-runtime defines it.

A reconcile is *level-based*: it is handed only a key, reads the current state from the
stores, and never trusts the event that woke it. It answers a ``Result``:

- ``Result()``: done; the key's backoff is forgotten;
- ``Result(requeue_after_s=x)``: done for now, look again after x seconds (backoff forgotten);
- ``Result(requeue=True)``: again soon, with the key's rate-limited backoff;
- raising ``TerminalError``: logged and counted, not retried until the key changes;
- raising anything else: logged with the key and retried with backoff.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Reconciler", "Request", "Result", "TerminalError"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """The key of the object to reconcile."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """How the controller should treat the key after a successful reconcile."""

    requeue: bool = False
    requeue_after_s: float | None = None

    def __post_init__(self) -> None:
        if self.requeue_after_s is not None and self.requeue_after_s < 0:
            raise ValueError(f"requeue_after_s: must not be negative, got {self.requeue_after_s}")


class TerminalError(Exception):
    """A failure retrying cannot fix (e.g. an invalid object): log, count, do not requeue."""


Reconciler = Callable[[Request], Awaitable[Result]]
