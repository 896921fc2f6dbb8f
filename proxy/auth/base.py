"""The authentication interface: a request in, a ``Tenant`` out, and the rules every plugin shares.

An ``Authenticator`` answers one question: which tenant namespace may this request read?
It returns a ``Tenant`` or raises one of three errors:

- ``Unauthenticated`` (401): no credential, or one that is not valid;
- ``Forbidden`` (403): a valid credential that does not grant the namespace asked for;
- ``BadRequest`` (400): the request is ambiguous or malformed (a namespace that is not a
  DNS label, or no namespace when the credential grants several).

Every plugin chooses the namespace the same way, through ``requested_namespace`` and
``select_namespace``, so a client can switch ``auth.type`` without changing how it asks:

1. the ``X-Tenant-Namespace`` header, then the ``namespace`` query or form parameter (the
   original's order: a gateway that sets the header therefore wins over the client's own
   parameter); an empty value counts as absent, as Go's ``Header.Get`` reads it;
2. the requested namespace must be a DNS-1123 label, as Kubernetes namespace names are;
3. with no namespace requested, a credential granting exactly one namespace selects that one;
   one granting several is a 400 asking for ``X-Tenant-Namespace``.

``AccessReviewer`` is the port the Kubernetes plugin talks through: the composition root
implements it with the Kubernetes client, so this package never imports that client.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mtproxy.proxy.errors import BadRequest, Forbidden, Unauthenticated
from mtproxy.proxy.params import RequestParams

__all__ = [
    "NAMESPACE_HEADER",
    "NAMESPACE_PARAM",
    "AccessReviewer",
    "AuthRequest",
    "Authenticator",
    "ReviewedUser",
    "Tenant",
    "bearer_token",
    "requested_namespace",
    "select_namespace",
    "validate_namespace",
]

NAMESPACE_HEADER = "x-tenant-namespace"
"""The header naming the tenant namespace, lower-cased as ``AuthRequest.headers`` keys are."""
NAMESPACE_PARAM = "namespace"
"""The query or form parameter read when the header is absent."""

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthRequest:
    """What a plugin may look at: the request line, its headers and its parsed parameters."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Header names lower-cased; one value per name (the server joins repeated ones)."""
    params: RequestParams


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant:
    """Who is asking, once authenticated."""

    namespace: str
    """The tenant namespace whose access policy applies to this request."""
    subject: str
    """Who presented the credential, for logs only; never a token, key or secret."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReviewedUser:
    """The user a Kubernetes TokenReview found behind a token (``status.user``)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class Authenticator(Protocol):
    """Decides which tenant a request belongs to; one implementation per ``auth.type``."""

    async def authenticate(self, request: AuthRequest) -> Tenant:
        """The request's tenant.

        Raises:
            Unauthenticated: no credential, or an invalid one.
            Forbidden: a valid credential that does not grant the requested namespace.
            BadRequest: an invalid namespace name, or none where one is needed.
            Unavailable: the credential cannot be checked right now (e.g. the API server is down).
        """
        ...


class AccessReviewer(Protocol):
    """TokenReview and SubjectAccessReview, implemented by the composition root."""

    async def review_token(self, token: str) -> ReviewedUser | None:
        """The user behind ``token``, or None when the API server does not authenticate it.

        Raises anything on failure to ask (network, 5xx); the caller never caches that.
        """
        ...

    async def can_access(self, user: ReviewedUser, *, namespace: str, verb: str, group: str, resource: str) -> bool:
        """Whether ``user`` may ``verb`` ``resource``.``group`` in ``namespace``."""
        ...


def validate_namespace(name: str) -> str:
    """``name`` if it is a DNS-1123 label (a valid namespace name).

    Raises:
        BadRequest: it is not.
    """
    if _DNS_LABEL.fullmatch(name) is None:
        raise BadRequest(
            f"tenant namespace {name[:80]!r} is not a valid namespace name "
            "(lower-case letters, digits and '-', at most 63 characters)"
        )
    return name


def requested_namespace(request: AuthRequest) -> str | None:
    """The namespace the request asks for: ``X-Tenant-Namespace``, else ``namespace=``; validated.

    Raises:
        BadRequest: the name is not a DNS label, or the parameter is given twice.
    """
    name = request.headers.get(NAMESPACE_HEADER) or request.params.single(NAMESPACE_PARAM)
    if not name:
        return None
    return validate_namespace(name)


def select_namespace(request: AuthRequest, granted: Collection[str]) -> str:
    """The namespace this request reads, given the namespaces its credential grants.

    Raises:
        Forbidden: the requested namespace is not granted, or nothing is.
        BadRequest: nothing is requested and several namespaces are granted.
    """
    requested = requested_namespace(request)
    if requested is not None:
        if requested not in granted:
            raise Forbidden(f"the credential does not grant access to namespace {requested!r}")
        return requested
    if not granted:
        raise Forbidden("the credential grants access to no namespace")
    if len(granted) > 1:
        raise BadRequest(
            f"the credential grants {len(granted)} namespaces; "
            "set the X-Tenant-Namespace header to the one this request is for"
        )
    (only,) = granted
    return validate_namespace(only)


def bearer_token(request: AuthRequest) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive).

    Raises:
        Unauthenticated: the header is missing, uses another scheme, or carries no token.
    """
    value = request.headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("a bearer token is required: send 'Authorization: Bearer <token>'")
    return token
