"""Endpoint policies of the ``match[]`` endpoints: series, labels, label values, federate.

These endpoints take a list of series selectors whose union defines the series asked
about, which is exactly how a policy's union is expressed: each given selector S becomes
the branches of S ∧ (R1 or … or Rk) (``restrict_selector``), one ``match[]`` each; with no
``match[]``, the rules themselves are sent. Selectors no rule is compatible with are
dropped; when nothing is left, the proxy answers an empty result itself instead of
sending a query that can only return nothing.

Prometheus 2.42 serves ``/api/v1/label/<name>/values`` and ``/federate`` on GET only,
and ``series``/``labels`` on GET and POST; the backend request uses POST where it can,
so long ``match[]`` lists do not hit URL length limits.
"""

from __future__ import annotations

import json

from mtproxy.api import LABEL_NAME_RE, LabelMatcher, PatternError, Rule, parse_selector
from mtproxy.proxy.errors import BadRequest
from mtproxy.proxy.outcomes import BackendRequest, ImmediateAnswer, ResultCheck
from mtproxy.proxy.params import RequestParams
from mtproxy.proxy.policy import AccessPolicy
from mtproxy.proxy.selectors import Restriction, restrict_selector

__all__ = ["enforced_matches", "federate_request", "label_values_request", "labels_request", "series_request"]

_EMPTY_LIST = ImmediateAnswer(
    status=200, content_type="application/json", body=json.dumps({"status": "success", "data": []}).encode()
)


def _selector_text(matchers: tuple[LabelMatcher, ...]) -> str:
    return Rule(matchers=matchers).selector()


def enforced_matches(policy: AccessPolicy, given: tuple[str, ...]) -> tuple[str, ...]:
    """The ``match[]`` list to send: the given selectors restricted to the policy.

    Raises:
        BadRequest: a given selector does not parse.
    """
    if not given:
        return tuple(rule.selector() for rule in policy.rules)
    out: dict[str, None] = {}
    for index, text in enumerate(given):
        try:
            matchers = parse_selector(text)
        except PatternError as exc:
            raise BadRequest(f"match[] #{index + 1} {text!r}: {exc}") from None
        restricted = restrict_selector(matchers, policy.rules)
        if restricted.kind is Restriction.EMPTY:
            continue
        for branch in restricted.branches:
            out.setdefault(_selector_text(branch))
    return tuple(out)


def _time_range(params: RequestParams) -> list[tuple[str, str]]:
    pairs = []
    for name in ("start", "end"):
        value = params.single(name)
        if value is not None:
            pairs.append((name, value))
    return pairs


def series_request(policy: AccessPolicy, params: RequestParams) -> BackendRequest | ImmediateAnswer:
    """``/api/v1/series``."""
    matches = enforced_matches(policy, params.multi("match[]"))
    if not matches:
        return _EMPTY_LIST
    pairs = [("match[]", m) for m in matches] + _time_range(params)
    return BackendRequest(method="POST", path="/api/v1/series", params=tuple(pairs), result_check=ResultCheck.SERIES)


def labels_request(policy: AccessPolicy, params: RequestParams) -> BackendRequest | ImmediateAnswer:
    """``/api/v1/labels``: label names of visible series only."""
    matches = enforced_matches(policy, params.multi("match[]"))
    if not matches:
        return _EMPTY_LIST
    pairs = [("match[]", m) for m in matches] + _time_range(params)
    return BackendRequest(method="POST", path="/api/v1/labels", params=tuple(pairs))


def label_values_request(
    policy: AccessPolicy, params: RequestParams, *, label: str
) -> BackendRequest | ImmediateAnswer:
    """``/api/v1/label/<label>/values``: values of one label on visible series only."""
    if not LABEL_NAME_RE.match(label):
        raise BadRequest(f"invalid label name: {label!r}")
    matches = enforced_matches(policy, params.multi("match[]"))
    if not matches:
        return _EMPTY_LIST
    pairs = [("match[]", m) for m in matches] + _time_range(params)
    return BackendRequest(method="GET", path=f"/api/v1/label/{label}/values", params=tuple(pairs))


def federate_request(policy: AccessPolicy, params: RequestParams) -> BackendRequest | ImmediateAnswer:
    """``/federate``: the newest sample of visible series, in text exposition."""
    matches = enforced_matches(policy, params.multi("match[]"))
    if not matches:
        return ImmediateAnswer(status=200, content_type="text/plain; version=0.0.4; charset=utf-8", body=b"")
    return BackendRequest(
        method="GET",
        path="/federate",
        params=tuple(("match[]", m) for m in matches),
        result_check=ResultCheck.FEDERATE,
    )
