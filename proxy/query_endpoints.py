"""Endpoint policies of the PromQL endpoints: query, query_range, query_exemplars, format_query.

The ``query`` parameter is enforced (``mtproxy.proxy.enforce``); the other parameters
each endpoint knows are passed through as values (never the raw request), everything
else is dropped. An answer is cacheable only when it cannot change: an explicit
``time``/``end`` at least ``settle_s`` in the past (never a stale "now").
"""

from __future__ import annotations

import datetime as dt
import time

from mtproxy.proxy.enforce import enforce, normalize_query
from mtproxy.proxy.errors import NotFound
from mtproxy.proxy.outcomes import BackendRequest, ResultCheck
from mtproxy.proxy.params import RequestParams
from mtproxy.proxy.policy import AccessPolicy

__all__ = ["QUERY_PARAMETERS", "query_request"]

QUERY_PARAMETERS: dict[str, tuple[str, ...]] = {
    "query": ("time", "timeout", "stats"),
    "query_range": ("start", "end", "step", "timeout", "stats"),
    "query_exemplars": ("start", "end"),
    "format_query": (),
}
"""The parameters (besides ``query``) each endpoint forwards."""

_SETTLE_S = 300.0


def _timestamp(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _cacheable(kind: str, params: RequestParams) -> bool:
    name = {"query": "time", "query_range": "end", "query_exemplars": "end"}.get(kind)
    value = params.single(name) if name else None
    if value is None:
        return False
    when = _timestamp(value)
    return when is not None and when < time.time() - _SETTLE_S


def query_request(kind: str, policy: AccessPolicy, params: RequestParams) -> BackendRequest:
    """The backend request of a PromQL endpoint, with the query enforced.

    Raises:
        BadRequest: no query, or an unparsable one.
        Forbidden: the policy cannot be expressed for a selector of the query.
    """
    if kind not in QUERY_PARAMETERS:
        raise NotFound(f"no such endpoint: {kind}")
    query = params.single("query", required=True)
    assert query is not None
    writes_labels = False
    if kind == "format_query":
        text = normalize_query(query)
    else:
        enforced = enforce(query, policy)
        text, writes_labels = enforced.text, enforced.writes_labels
    pairs = [("query", text)]
    for name in QUERY_PARAMETERS[kind]:
        value = params.single(name)
        if value is not None:
            pairs.append((name, value))
    check = {
        "query": ResultCheck.VECTOR_OR_MATRIX,
        "query_range": ResultCheck.VECTOR_OR_MATRIX,
        "query_exemplars": ResultCheck.EXEMPLARS,
    }.get(kind, ResultCheck.NONE)
    if writes_labels:
        check = ResultCheck.NONE  # the query writes labels itself; see mtproxy.proxy.resultcheck
    return BackendRequest(
        method="POST",
        path=f"/api/v1/{kind}",
        params=tuple(pairs),
        result_check=check,
        cacheable=_cacheable(kind, params),
    )
