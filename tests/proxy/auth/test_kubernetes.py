"""``auth.type: kubernetes``: TokenReview + SubjectAccessReview, through a fake reviewer and a real server.

Each sentence of the module's contract has a test here: caching within the TTL (on
trio's virtual clock), no caching of failures, one lookup per token at a time, and
negative answers that cannot evict positive ones.

The tests at the end (marked ``kube_apiserver``) run the reviewer the service wires
(``mtproxy.cmd.reviewer.KubernetesReviewer``) against a real kube-apiserver: real
service-account tokens from the TokenRequest API, static-token users, and RBAC Roles and
RoleBindings, so TokenReview and SubjectAccessReview give the answers a cluster gives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import trio
import trio.testing

from mtproxy.cmd.reviewer import KubernetesReviewer
from mtproxy.proxy.auth.base import AuthRequest, ReviewedUser, Tenant
from mtproxy.proxy.auth.kubernetes import KubernetesAuthenticator
from mtproxy.proxy.errors import BadRequest, Forbidden, Unauthenticated, Unavailable

from .conftest import ClusterTenant

RequestFactory = Callable[..., AuthRequest]

ALICE = ReviewedUser(username="alice", uid="u-1", groups=("devs",))
GRAFANA = ReviewedUser(username="system:serviceaccount:team-a:grafana", uid="u-2")


class FakeReviewer:
    """Answers from tables and counts calls; ``failing`` makes every call raise."""

    def __init__(self) -> None:
        self.users: dict[str, ReviewedUser] = {"alice-token": ALICE, "grafana-token": GRAFANA}
        self.grants: set[tuple[str, str]] = {("alice", "team-a"), ("alice", "team-b"), (GRAFANA.username, "team-a")}
        self.review_calls = 0
        self.access_calls = 0
        self.permissions: list[tuple[str, str, str]] = []
        self.failing = False
        self.delay_s = 0.0

    async def review_token(self, token: str) -> ReviewedUser | None:
        self.review_calls += 1
        if self.delay_s:
            await trio.sleep(self.delay_s)
        if self.failing:
            raise RuntimeError(f"TokenReview failed: 500, body echoes spec.token={token}")
        return self.users.get(token)

    async def can_access(self, user: ReviewedUser, *, namespace: str, verb: str, group: str, resource: str) -> bool:
        self.access_calls += 1
        self.permissions.append((verb, group, resource))
        if self.delay_s:
            await trio.sleep(self.delay_s)
        if self.failing:
            raise RuntimeError("SubjectAccessReview failed")
        return (user.username, namespace) in self.grants


def _request(make_request: RequestFactory, token: str | None, namespace: str | None = "team-a") -> AuthRequest:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if namespace is not None:
        headers["X-Tenant-Namespace"] = namespace
    return make_request(headers)


@pytest.fixture
def reviewer() -> FakeReviewer:
    return FakeReviewer()


@pytest.fixture
def authenticator(reviewer: FakeReviewer) -> KubernetesAuthenticator:
    return KubernetesAuthenticator(reviewer, cache_ttl_s=10.0)


async def test_valid_token_with_permission_gets_the_requested_namespace(
    make_request: RequestFactory, authenticator: KubernetesAuthenticator
) -> None:
    tenant = await authenticator.authenticate(_request(make_request, "alice-token", "team-b"))
    assert tenant == Tenant(namespace="team-b", subject="alice")


async def test_namespace_parameter_is_read_when_no_header(
    make_request: RequestFactory, authenticator: KubernetesAuthenticator
) -> None:
    request = make_request({"Authorization": "Bearer alice-token"}, {"namespace": "team-b"})
    assert (await authenticator.authenticate(request)).namespace == "team-b"


async def test_service_account_without_namespace_reads_its_own_namespace(
    make_request: RequestFactory, authenticator: KubernetesAuthenticator, reviewer: FakeReviewer
) -> None:
    tenant = await authenticator.authenticate(_request(make_request, "grafana-token", None))
    assert tenant == Tenant(namespace="team-a", subject=GRAFANA.username)
    assert reviewer.access_calls == 1, "its own namespace is still checked with a SubjectAccessReview"


async def test_user_without_namespace_is_bad_request_asking_for_the_header(
    make_request: RequestFactory, authenticator: KubernetesAuthenticator
) -> None:
    with pytest.raises(BadRequest, match="X-Tenant-Namespace"):
        await authenticator.authenticate(_request(make_request, "alice-token", None))


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param("Basic YWxpY2U6cHc=", id="basic"),
        pytest.param("Bearer ", id="empty-bearer"),
    ],
)
async def test_missing_bearer_token_is_401_without_asking_the_api_server(
    make_request: RequestFactory,
    authenticator: KubernetesAuthenticator,
    reviewer: FakeReviewer,
    authorization: str | None,
) -> None:
    headers = {"X-Tenant-Namespace": "team-a"}
    if authorization is not None:
        headers["Authorization"] = authorization
    with pytest.raises(Unauthenticated, match="Bearer"):
        await authenticator.authenticate(make_request(headers))
    assert reviewer.review_calls == 0


async def test_token_the_api_server_does_not_authenticate_is_401(
    make_request: RequestFactory, authenticator: KubernetesAuthenticator, reviewer: FakeReviewer
) -> None:
    with pytest.raises(Unauthenticated, match="not valid"):
        await authenticator.authenticate(_request(make_request, "stolen-token"))
    assert reviewer.access_calls == 0


async def test_denied_namespace_is_403_naming_namespace_and_permission(
    make_request: RequestFactory, authenticator: KubernetesAuthenticator
) -> None:
    with pytest.raises(Forbidden) as caught:
        await authenticator.authenticate(_request(make_request, "alice-token", "team-c"))
    assert "team-c" in caught.value.message
    assert "get metricaccesses.observability.ethos.io" in caught.value.message


async def test_invalid_namespace_is_bad_request_before_any_review(
    make_request: RequestFactory, authenticator: KubernetesAuthenticator, reviewer: FakeReviewer
) -> None:
    with pytest.raises(BadRequest):
        await authenticator.authenticate(_request(make_request, "alice-token", "Team_A"))
    assert reviewer.review_calls == 0


async def test_access_review_asks_for_the_configured_permission(
    make_request: RequestFactory, reviewer: FakeReviewer
) -> None:
    authenticator = KubernetesAuthenticator(reviewer, verb="list", group="monitoring.example.com", resource="metrics")
    await authenticator.authenticate(_request(make_request, "alice-token"))
    assert reviewer.permissions == [("list", "monitoring.example.com", "metrics")]


async def test_decisions_are_reused_within_the_ttl_and_asked_again_after(
    make_request: RequestFactory,
    authenticator: KubernetesAuthenticator,
    reviewer: FakeReviewer,
    autojump_clock: trio.testing.MockClock,
) -> None:
    request = _request(make_request, "alice-token")
    await authenticator.authenticate(request)
    await trio.sleep(9)
    await authenticator.authenticate(request)
    assert (reviewer.review_calls, reviewer.access_calls) == (1, 1)
    await trio.sleep(2)
    await authenticator.authenticate(request)
    assert (reviewer.review_calls, reviewer.access_calls) == (2, 2)


async def test_access_decisions_are_cached_per_namespace(
    make_request: RequestFactory, authenticator: KubernetesAuthenticator, reviewer: FakeReviewer
) -> None:
    await authenticator.authenticate(_request(make_request, "alice-token", "team-a"))
    await authenticator.authenticate(_request(make_request, "alice-token", "team-b"))
    await authenticator.authenticate(_request(make_request, "alice-token", "team-a"))
    assert (reviewer.review_calls, reviewer.access_calls) == (1, 2)


async def test_negative_answers_are_cached_within_the_ttl(
    make_request: RequestFactory,
    authenticator: KubernetesAuthenticator,
    reviewer: FakeReviewer,
    autojump_clock: trio.testing.MockClock,
) -> None:
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await authenticator.authenticate(_request(make_request, "stolen-token"))
        with pytest.raises(Forbidden):
            await authenticator.authenticate(_request(make_request, "alice-token", "team-c"))
    assert (reviewer.review_calls, reviewer.access_calls) == (2, 1)
    await trio.sleep(11)
    reviewer.grants.add(("alice", "team-c"))
    assert (await authenticator.authenticate(_request(make_request, "alice-token", "team-c"))).namespace == "team-c"


async def test_zero_ttl_disables_caching(make_request: RequestFactory, reviewer: FakeReviewer) -> None:
    authenticator = KubernetesAuthenticator(reviewer, cache_ttl_s=0)
    for _ in range(3):
        await authenticator.authenticate(_request(make_request, "alice-token"))
    assert (reviewer.review_calls, reviewer.access_calls) == (3, 3)


@pytest.mark.parametrize("failing_call", ["review_token", "can_access"])
async def test_reviewer_failures_are_503_and_never_cached(
    make_request: RequestFactory, authenticator: KubernetesAuthenticator, reviewer: FakeReviewer, failing_call: str
) -> None:
    request = _request(make_request, "alice-token")
    if failing_call == "can_access":
        warm = await authenticator.authenticate(_request(make_request, "alice-token", "team-b"))
        assert warm.namespace == "team-b"
    reviewer.failing = True
    for _ in range(2):
        with pytest.raises(Unavailable) as caught:
            await authenticator.authenticate(request)
        assert caught.value.status == 503
    calls = reviewer.review_calls if failing_call == "review_token" else reviewer.access_calls - 1
    assert calls == 2, "each failing request asked again"
    reviewer.failing = False
    assert (await authenticator.authenticate(request)).namespace == "team-a"
    assert authenticator.statistics().review_failures == 2


async def test_reviewer_failure_logs_neither_token_nor_error_text(
    make_request: RequestFactory,
    authenticator: KubernetesAuthenticator,
    reviewer: FakeReviewer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mtproxy.proxy.auth")
    reviewer.failing = True
    with pytest.raises(Unavailable) as caught:
        await authenticator.authenticate(_request(make_request, "alice-token"))
    assert "alice-token" not in caught.value.message
    assert caplog.records, "the failure is logged"
    for record in caplog.records:
        assert "alice-token" not in record.getMessage()
        assert "alice-token" not in repr(vars(record))


async def test_concurrent_lookups_for_one_token_make_one_review(
    make_request: RequestFactory,
    authenticator: KubernetesAuthenticator,
    reviewer: FakeReviewer,
    autojump_clock: trio.testing.MockClock,
) -> None:
    reviewer.delay_s = 1.0
    tenants: list[Tenant] = []

    async def one() -> None:
        tenants.append(await authenticator.authenticate(_request(make_request, "alice-token")))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(one)
    assert len(tenants) == 20
    assert {tenant.namespace for tenant in tenants} == {"team-a"}
    assert (reviewer.review_calls, reviewer.access_calls) == (1, 1)
    assert authenticator.statistics().lookups_in_flight == 0


async def test_concurrent_lookups_share_a_failure_without_caching_it(
    make_request: RequestFactory,
    authenticator: KubernetesAuthenticator,
    reviewer: FakeReviewer,
    autojump_clock: trio.testing.MockClock,
) -> None:
    reviewer.delay_s = 1.0
    reviewer.failing = True
    errors: list[Exception] = []

    async def one() -> None:
        try:
            await authenticator.authenticate(_request(make_request, "alice-token"))
        except Unavailable as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(one)
    assert len(errors) == 5
    assert reviewer.review_calls == 1
    reviewer.failing = False
    await authenticator.authenticate(_request(make_request, "alice-token"))
    assert reviewer.review_calls == 2


async def test_cancelled_lookup_lets_a_waiter_take_over(
    make_request: RequestFactory,
    authenticator: KubernetesAuthenticator,
    reviewer: FakeReviewer,
    autojump_clock: trio.testing.MockClock,
) -> None:
    reviewer.delay_s = 5.0
    results: list[Tenant] = []

    async def waiter() -> None:
        results.append(await authenticator.authenticate(_request(make_request, "alice-token")))

    async with trio.open_nursery() as nursery:
        leader_scope = trio.CancelScope()

        async def leader() -> None:
            with leader_scope:
                await authenticator.authenticate(_request(make_request, "alice-token"))

        nursery.start_soon(leader)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        leader_scope.cancel()
    assert len(results) == 1
    assert reviewer.review_calls == 2


async def test_flood_of_bad_tokens_does_not_evict_a_cached_good_token(
    make_request: RequestFactory, authenticator: KubernetesAuthenticator, reviewer: FakeReviewer
) -> None:
    good = _request(make_request, "alice-token")
    await authenticator.authenticate(good)
    for number in range(10_000):
        with pytest.raises(Unauthenticated):
            await authenticator.authenticate(_request(make_request, f"bad-token-{number}"))
    await authenticator.authenticate(good)
    assert reviewer.review_calls == 1 + 10_000, "the good token was answered from the cache"
    statistics = authenticator.statistics()
    assert statistics.cached_users == 1
    assert statistics.cached_invalid_tokens == 1_000


async def test_positive_cache_is_bounded_least_recently_used_first(
    make_request: RequestFactory, reviewer: FakeReviewer
) -> None:
    authenticator = KubernetesAuthenticator(reviewer, max_entries=2)
    reviewer.users.update({"t1": ALICE, "t2": ALICE, "t3": ALICE})
    for token in ("t1", "t2", "t1", "t3"):
        await authenticator.authenticate(_request(make_request, token))
    assert authenticator.statistics().cached_users == 2
    reviews = reviewer.review_calls
    await authenticator.authenticate(_request(make_request, "t1"))
    assert reviewer.review_calls == reviews, "t1 was used recently and is kept"
    await authenticator.authenticate(_request(make_request, "t2"))
    assert reviewer.review_calls == reviews + 1, "t2 was the least recently used and was evicted"


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        pytest.param({"cache_ttl_s": -1}, "cache_ttl_s", id="negative-ttl"),
        pytest.param({"max_entries": 0}, "max_entries", id="no-entries"),
        pytest.param({"max_negative_entries": 0}, "max_negative_entries", id="no-negative-entries"),
    ],
)
def test_invalid_settings_are_refused_naming_the_parameter(
    reviewer: FakeReviewer, arguments: dict[str, float], name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        KubernetesAuthenticator(reviewer, **arguments)  # type: ignore[arg-type]


# -- on a real kube-apiserver --------------------------------------------------------------------

METRICACCESSES_RULE = {"verbs": ["get"], "api_groups": ["observability.ethos.io"], "resources": ["metricaccesses"]}


async def test_real_service_account_token_reviews_as_its_service_account(
    kube_reviewer: KubernetesReviewer, cluster_tenant: ClusterTenant
) -> None:
    user = await kube_reviewer.review_token(cluster_tenant.token)
    assert user is not None
    assert user.username == f"system:serviceaccount:{cluster_tenant.namespace}:grafana"
    assert {"system:serviceaccounts", f"system:serviceaccounts:{cluster_tenant.namespace}",
            "system:authenticated"} <= set(user.groups)
    assert user.uid, "a bound token names its service account's uid"


@pytest.mark.parametrize(
    "token",
    [pytest.param("not-a-token", id="garbage"), pytest.param("eyJhbGciOiJub25lIn0.e30.", id="unsigned-jwt")],
)
async def test_real_server_does_not_authenticate_an_unknown_token(kube_reviewer: KubernetesReviewer,
                                                                  token: str) -> None:
    assert await kube_reviewer.review_token(token) is None


async def test_token_minted_for_another_audience_is_not_authenticated(
    kube_reviewer: KubernetesReviewer, cluster_tenant: ClusterTenant
) -> None:
    assert await kube_reviewer.review_token(cluster_tenant.other_audience_token) is None


async def test_token_of_a_deleted_service_account_stops_authenticating(
    kube_reviewer: KubernetesReviewer, cluster_tenant: ClusterTenant
) -> None:
    """kube-apiserver caches a successful token authentication for 10 s, so it may take that long."""
    assert await kube_reviewer.review_token(cluster_tenant.token) is not None
    await trio.to_thread.run_sync(cluster_tenant.delete_service_account)
    with trio.fail_after(20):
        while await kube_reviewer.review_token(cluster_tenant.token) is not None:
            await trio.sleep(0.5)


async def test_rbac_role_binding_decides_the_access_review(
    kube_reviewer: KubernetesReviewer, cluster_tenant: ClusterTenant
) -> None:
    user = await kube_reviewer.review_token(cluster_tenant.token)
    assert user is not None
    ask = {"verb": "get", "group": "observability.ethos.io", "resource": "metricaccesses"}
    assert not await kube_reviewer.can_access(user, namespace=cluster_tenant.namespace, **ask)
    await trio.to_thread.run_sync(cluster_tenant.grant_service_account)
    assert await kube_reviewer.can_access(user, namespace=cluster_tenant.namespace, **ask)
    assert not await kube_reviewer.can_access(user, namespace=cluster_tenant.other_namespace, **ask)
    assert not await kube_reviewer.can_access(user, namespace=cluster_tenant.namespace, **{**ask, "verb": "delete"})


async def test_authenticator_on_a_real_server_grants_exactly_what_rbac_grants(
    make_request: RequestFactory, kube_reviewer: KubernetesReviewer, cluster_tenant: ClusterTenant
) -> None:
    authenticator = KubernetesAuthenticator(kube_reviewer, cache_ttl_s=0)
    own = cluster_tenant.namespace
    with pytest.raises(Forbidden, match=own):
        await authenticator.authenticate(_request(make_request, cluster_tenant.token, None))
    await trio.to_thread.run_sync(cluster_tenant.grant_service_account)
    tenant = await authenticator.authenticate(_request(make_request, cluster_tenant.token, None))
    assert tenant == Tenant(namespace=own, subject=f"system:serviceaccount:{own}:grafana")
    with pytest.raises(Forbidden, match=cluster_tenant.other_namespace):
        await authenticator.authenticate(_request(make_request, cluster_tenant.token, cluster_tenant.other_namespace))
    with pytest.raises(Unauthenticated):
        await authenticator.authenticate(_request(make_request, "stolen-token", own))


async def test_static_user_in_a_granted_group_reads_the_namespace(
    make_request: RequestFactory, kube_reviewer: KubernetesReviewer, cluster_tenant: ClusterTenant
) -> None:
    authenticator = KubernetesAuthenticator(kube_reviewer, cache_ttl_s=0)
    own = cluster_tenant.namespace
    with pytest.raises(Forbidden):
        await authenticator.authenticate(_request(make_request, cluster_tenant.alice_token, own))
    await trio.to_thread.run_sync(cluster_tenant.grant_group, "tenants")
    tenant = await authenticator.authenticate(_request(make_request, cluster_tenant.alice_token, own))
    assert tenant == Tenant(namespace=own, subject="alice")
    with pytest.raises(BadRequest, match="X-Tenant-Namespace"):
        await authenticator.authenticate(_request(make_request, cluster_tenant.alice_token, None))
