"""What an endpoint policy decides: a request to send to the backend, or an answer without one.

Both are plain values, so the decision (pure, tested without a network) is separate from
sending (the server's job). A ``BackendRequest`` is built from parsed, enforced
parameters only; nothing of the incoming request's raw query string or body is in it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["BackendRequest", "ImmediateAnswer", "ResultCheck"]


class ResultCheck(enum.Enum):
    """Which defence-in-depth check the server runs on the backend's answer."""

    NONE = "none"
    VECTOR_OR_MATRIX = "vector_or_matrix"
    """``data.result[].metric`` of query, query_range."""
    SERIES = "series"
    """``data[]`` label sets of /api/v1/series."""
    EXEMPLARS = "exemplars"
    """``data[].seriesLabels`` of /api/v1/query_exemplars."""
    FEDERATE = "federate"
    """Text exposition lines of /federate."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendRequest:
    """One request for a backend: ``params`` go in the URL for GET and in a form body for POST."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...]
    result_check: ResultCheck = ResultCheck.NONE
    cacheable: bool = False
    """True only when the answer cannot change (an explicit time/end in the past)."""
    form: bytes | None = field(default=None, compare=False, repr=False)
    """``params`` already form-encoded, or None. A large request is encoded in the worker
    process that enforced it: percent-encoding megabytes is pure Python, which would hold
    the event loop (or, in a thread, make its every step wait for a turn of the GIL)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImmediateAnswer:
    """An answer the proxy gives itself, e.g. an empty list when no rule can match."""

    status: int
    content_type: str
    body: bytes
