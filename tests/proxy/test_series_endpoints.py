"""match[] endpoint policies: what reaches the backend is the given selectors ∧ the policy."""

from __future__ import annotations

import re

import pytest

from mtproxy.api import parse_selector, rules_for
from mtproxy.proxy.errors import BadRequest
from mtproxy.proxy.outcomes import BackendRequest, ImmediateAnswer
from mtproxy.proxy.params import RequestParams
from mtproxy.proxy.policy import AccessPolicy
from mtproxy.proxy.series_endpoints import (
    enforced_matches,
    federate_request,
    label_values_request,
    labels_request,
    series_request,
)

POLICY = AccessPolicy.of(
    "team-a", rules_for(["up", 'http_requests_total{method="GET"}'], label_selectors={}, isolation_namespace="team-a")
)


def _params(**values: tuple[str, ...]) -> RequestParams:
    return RequestParams(values={k.replace("match", "match[]"): v for k, v in values.items()})


def test_no_match_sends_one_match_per_rule() -> None:
    assert set(enforced_matches(POLICY, ())) == {r.selector() for r in POLICY.rules}


def test_given_selector_is_restricted_not_replaced() -> None:
    assert enforced_matches(POLICY, ('up{job="x"}',)) == ('{__name__="up",job="x",namespace="team-a"}',)


def test_all_names_selector_becomes_one_match_per_visible_rule() -> None:
    matches = enforced_matches(POLICY, ('{__name__=~".+"}',))
    for match in matches:
        matchers = parse_selector(match)
        assert any(str(m) == 'namespace="team-a"' for m in matchers)
    assert len(matches) == 2


def test_foreign_namespace_selector_answers_empty_without_backend() -> None:
    answer = series_request(POLICY, _params(match=('up{namespace="team-b"}',)))
    assert isinstance(answer, ImmediateAnswer)
    assert answer.body == b'{"status": "success", "data": []}'


def test_unparsable_match_is_bad_request_naming_it() -> None:
    with pytest.raises(BadRequest, match=re.escape("match[] #1 'http_.*'")):
        labels_request(POLICY, _params(match=("http_.*",)))


def test_series_keeps_time_range_and_drops_unknown_parameters() -> None:
    request = series_request(
        POLICY, RequestParams(values={"start": ("1",), "end": ("2",), "limit": ("5",), "query": ("secret",)})
    )
    assert isinstance(request, BackendRequest)
    names = [name for name, _ in request.params]
    assert set(names) == {"match[]", "start", "end"}


def test_label_values_rejects_invalid_label_names() -> None:
    with pytest.raises(BadRequest, match="invalid label name"):
        label_values_request(POLICY, _params(), label="a/../b")


def test_federate_is_get_with_enforced_matches() -> None:
    request = federate_request(POLICY, _params(match=('{__name__=~".+"}',)))
    assert isinstance(request, BackendRequest)
    assert request.method == "GET"
    assert all('namespace="team-a"' in value for _, value in request.params)
