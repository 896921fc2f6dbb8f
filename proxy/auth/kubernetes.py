"""``auth.type: kubernetes``: a bearer token checked by TokenReview, then SubjectAccessReview.

A request carries ``Authorization: Bearer <token>``, usually a service account token. The
API server says who the token belongs to (TokenReview), then whether that user may
``verb`` ``resource``.``group`` (by default ``get metricaccesses.observability.ethos.io``)
in the requested namespace (SubjectAccessReview). Tenants are therefore granted access
with ordinary RBAC, and revoking a RoleBinding revokes access within ``cache_ttl``.

Guarantees:

- **Decisions are cached for ``cache_ttl``** (default 10 s), keyed by a SHA-256 of the token
  (plus the namespace for access decisions); the token itself is never stored or logged.
  TTLs use trio's clock.
- **Failures are never cached.** An exception from the reviewer becomes a 503
  (``Unavailable``) for this request only; the next request asks again. Its message is not
  logged either: a TokenReview error body can echo the token back.
- **One lookup per key at a time.** Concurrent requests with the same token (and namespace)
  wait for the one review in flight and share its answer, so a burst from a dashboard costs
  one API call, not one per panel. If the task doing the lookup is cancelled, a waiter
  takes over.
- **The caches are bounded LRUs, and negative answers live in their own small one**, so a
  flood of invalid tokens evicts only other invalid tokens, never a valid one.
- With no namespace requested, a service account (``system:serviceaccount:<ns>:<name>``)
  reads its own namespace, still subject to the SubjectAccessReview; any other user must
  name one.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

from mtproxy.proxy.auth.base import (
    AccessReviewer,
    AuthRequest,
    ReviewedUser,
    Tenant,
    bearer_token,
    requested_namespace,
    validate_namespace,
)
from mtproxy.proxy.errors import BadRequest, Forbidden, ProxyError, Unauthenticated, Unavailable

__all__ = ["KubernetesAuthStatistics", "KubernetesAuthenticator"]

logger = logging.getLogger(__name__)

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")
_SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


class _ExpiringLRU(Generic[_K, _V]):
    """At most ``max_entries`` values, each forgotten ``ttl_s`` after it was put."""

    def __init__(self, *, max_entries: int, ttl_s: float) -> None:
        self._entries: OrderedDict[_K, tuple[float, _V]] = OrderedDict()
        self._max_entries = max_entries
        self._ttl_s = ttl_s

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: _K, *, now: float) -> tuple[bool, _V | None]:
        """``(True, value)`` for a live entry, ``(False, None)`` otherwise."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires_at, value = entry
        if now >= expires_at:
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, value

    def put(self, key: _K, value: _V, *, now: float) -> None:
        self._entries[key] = (now + self._ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


class _Flight(Generic[_V]):
    """One lookup in progress; waiters read its result once ``done`` is set."""

    __slots__ = ("done", "error", "finished", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.finished = False
        self.value: _V | None = None
        self.error: ProxyError | None = None


class _SingleFlight(Generic[_K, _V]):
    """Runs at most one lookup per key at a time and shares its outcome with concurrent callers."""

    def __init__(self) -> None:
        self._flights: dict[_K, _Flight[_V]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: _K, lookup: Callable[[], Awaitable[_V]]) -> _V:
        while (flight := self._flights.get(key)) is not None:
            await flight.done.wait()
            if flight.error is not None:
                error = flight.error
                raise type(error)(error.message, status=error.status, retry_after_s=error.retry_after_s) from error
            if flight.finished:
                return flight.value  # type: ignore[return-value]  # finished implies value was set
            # The leader was cancelled before it had an answer: take over.
        flight = _Flight[_V]()
        self._flights[key] = flight
        try:
            value = await lookup()
        except ProxyError as exc:
            flight.error = exc
            raise
        else:
            flight.value = value
            flight.finished = True
            return value
        finally:
            del self._flights[key]
            flight.done.set()


@dataclass(frozen=True, slots=True, kw_only=True)
class KubernetesAuthStatistics:
    """A snapshot of the plugin's caches and its calls to the API server."""

    cached_users: int
    cached_invalid_tokens: int
    cached_grants: int
    cached_denials: int
    lookups_in_flight: int
    token_reviews: int
    access_reviews: int
    review_failures: int


class KubernetesAuthenticator:
    """Authenticates bearer tokens with TokenReview and authorizes with SubjectAccessReview."""

    def __init__(
        self,
        reviewer: AccessReviewer,
        *,
        verb: str = "get",
        group: str = "observability.ethos.io",
        resource: str = "metricaccesses",
        cache_ttl_s: float = 10.0,
        max_entries: int = 10_000,
        max_negative_entries: int = 1_000,
    ) -> None:
        """
        Args:
            reviewer: asks the API server; implemented by the composition root.
            verb, group, resource: the permission a tenant needs in its namespace.
            cache_ttl_s: how long an answer (positive or negative) is reused; 0 disables caching.
            max_entries: bound of each positive cache (valid tokens, granted namespaces).
            max_negative_entries: bound of each negative cache (invalid tokens, denied namespaces).

        Raises:
            ValueError: a negative TTL, or a bound below 1.
        """
        if cache_ttl_s < 0:
            raise ValueError(f"cache_ttl_s must not be negative, got {cache_ttl_s}")
        for name, bound in (("max_entries", max_entries), ("max_negative_entries", max_negative_entries)):
            if bound < 1:
                raise ValueError(f"{name} must be at least 1, got {bound}")
        self._reviewer = reviewer
        self._verb = verb
        self._group = group
        self._resource = resource
        self._users: _ExpiringLRU[bytes, ReviewedUser] = _ExpiringLRU(max_entries=max_entries, ttl_s=cache_ttl_s)
        self._invalid_tokens: _ExpiringLRU[bytes, None] = _ExpiringLRU(
            max_entries=max_negative_entries, ttl_s=cache_ttl_s
        )
        self._grants: _ExpiringLRU[tuple[bytes, str], None] = _ExpiringLRU(max_entries=max_entries, ttl_s=cache_ttl_s)
        self._denials: _ExpiringLRU[tuple[bytes, str], None] = _ExpiringLRU(
            max_entries=max_negative_entries, ttl_s=cache_ttl_s
        )
        self._user_flights: _SingleFlight[bytes, ReviewedUser | None] = _SingleFlight()
        self._access_flights: _SingleFlight[tuple[bytes, str], bool] = _SingleFlight()
        self._token_reviews = 0
        self._access_reviews = 0
        self._review_failures = 0

    async def authenticate(self, request: AuthRequest) -> Tenant:
        """The tenant for a request whose bearer token may read the requested namespace.

        Raises:
            Unauthenticated: no bearer token, or TokenReview does not authenticate it.
            Forbidden: SubjectAccessReview denies the permission in the namespace.
            BadRequest: no namespace requested and none implied, or an invalid name.
            Unavailable: the API server could not be asked.
        """
        token = bearer_token(request)
        requested = requested_namespace(request)
        token_key = hashlib.sha256(token.encode("utf-8")).digest()
        user = await self._user_for(token, token_key)
        if user is None:
            raise Unauthenticated("the bearer token is not valid: the Kubernetes API server did not authenticate it")
        namespace = requested or _service_account_namespace(user)
        if namespace is None:
            raise BadRequest("set the X-Tenant-Namespace header to the namespace this request is for")
        if not await self._may_access(user, token_key, namespace):
            logger.debug("tenant access denied", extra={"subject": user.username, "namespace": namespace})
            raise Forbidden(
                f"{user.username} may not {self._verb} {self._resource}.{self._group} in namespace {namespace!r}"
            )
        return Tenant(namespace=namespace, subject=user.username)

    def statistics(self) -> KubernetesAuthStatistics:
        """A snapshot of cache sizes and API calls so far."""
        return KubernetesAuthStatistics(
            cached_users=len(self._users),
            cached_invalid_tokens=len(self._invalid_tokens),
            cached_grants=len(self._grants),
            cached_denials=len(self._denials),
            lookups_in_flight=len(self._user_flights) + len(self._access_flights),
            token_reviews=self._token_reviews,
            access_reviews=self._access_reviews,
            review_failures=self._review_failures,
        )

    async def _user_for(self, token: str, token_key: bytes) -> ReviewedUser | None:
        now = trio.current_time()
        found, user = self._users.get(token_key, now=now)
        if found:
            return user
        found, _ = self._invalid_tokens.get(token_key, now=now)
        if found:
            return None

        async def review() -> ReviewedUser | None:
            self._token_reviews += 1
            reviewed = await self._ask(lambda: self._reviewer.review_token(token))
            if reviewed is None:
                self._invalid_tokens.put(token_key, None, now=trio.current_time())
            else:
                self._users.put(token_key, reviewed, now=trio.current_time())
            return reviewed

        return await self._user_flights.run(token_key, review)

    async def _may_access(self, user: ReviewedUser, token_key: bytes, namespace: str) -> bool:
        key = (token_key, namespace)
        now = trio.current_time()
        if self._grants.get(key, now=now)[0]:
            return True
        if self._denials.get(key, now=now)[0]:
            return False

        async def review() -> bool:
            self._access_reviews += 1
            allowed = await self._ask(
                lambda: self._reviewer.can_access(
                    user, namespace=namespace, verb=self._verb, group=self._group, resource=self._resource
                )
            )
            (self._grants if allowed else self._denials).put(key, None, now=trio.current_time())
            return allowed

        return await self._access_flights.run(key, review)

    async def _ask(self, call: Callable[[], Awaitable[_V]]) -> _V:
        """``call()``, with any failure turned into a 503 that is neither cached nor logged in detail."""
        try:
            return await call()
        except ProxyError:
            self._review_failures += 1
            raise
        except Exception as exc:
            self._review_failures += 1
            logger.warning("kubernetes access review failed", extra={"error_type": type(exc).__name__})
            raise Unavailable("cannot check the bearer token now: the Kubernetes API server is unavailable") from exc


def _service_account_namespace(user: ReviewedUser) -> str | None:
    """The namespace of a service account user, or None for any other user."""
    if not user.username.startswith(_SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, _, name = user.username.removeprefix(_SERVICE_ACCOUNT_PREFIX).partition(":")
    if not name:
        return None
    return validate_namespace(namespace)
