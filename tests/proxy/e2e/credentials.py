"""One credential per tenant in each ``auth.type``, and the ``auth`` config section that accepts them.

Every mode knows the same three tenants (``team-a``, ``team-b``, and ``team-c`` whose
namespace has no MetricAccess), so one test body runs unchanged in every mode:

- ``none``: the ``X-Tenant-Namespace`` header alone;
- ``kubernetes``: a bearer token the API double's TokenReview maps to a user (alice, bob,
  carol), whose SubjectAccessReview grants ``get metricaccesses`` in that user's namespace
  only; the request names the namespace in ``X-Tenant-Namespace``;
- ``jwt``: an RS256 token whose ``namespaces`` claim lists one namespace, checked against a
  JWKS served on loopback; the namespace is implied by the token (no header);
- ``apikey``: a static ``X-API-Key`` granting one namespace (no header either).

``spoofed`` builds a valid credential for one namespace that asks for another.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from mtproxy.apidouble import AccessRule, ReviewRules, UserInfo

__all__ = [
    "API_KEYS",
    "AUTH_MODES",
    "KUBE_TOKENS",
    "AuthMode",
    "JWTIssuer",
    "apikey_mode",
    "jwt_mode",
    "kubernetes_mode",
    "none_mode",
    "review_rules",
]

AUTH_MODES = ("none", "kubernetes", "jwt", "apikey")
NAMESPACE_HEADER = "X-Tenant-Namespace"
KUBE_TOKENS = {"team-a": "token-alice", "team-b": "token-bob", "team-c": "token-carol"}
_KUBE_USERS = {"team-a": "alice", "team-b": "bob", "team-c": "carol"}
API_KEYS = {"team-a": "key-team-a-0123456789", "team-b": "key-team-b-0123456789", "team-c": "key-team-c-0123456789"}


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthMode:
    """How a client of one ``auth.type`` authenticates as a tenant."""

    name: str
    auth: Mapping[str, Any]
    """The config's ``auth`` section."""
    headers_for: Callable[[str], dict[str, str]]
    """The request headers of ``namespace``'s tenant."""
    spoofed: Callable[[str, str], dict[str, str]]
    """A valid credential of the first namespace, asking for the second in ``X-Tenant-Namespace``."""
    kubeconfig: str = ""
    extras: Mapping[str, Any] = field(default_factory=dict)


def none_mode() -> AuthMode:
    return AuthMode(
        name="none",
        auth={"type": "none"},
        headers_for=lambda ns: {NAMESPACE_HEADER: ns},
        spoofed=lambda own, other: {NAMESPACE_HEADER: other},
    )


def review_rules() -> ReviewRules:
    """alice may read team-a, bob team-b, carol team-c (which has no MetricAccess)."""
    return ReviewRules(
        tokens={KUBE_TOKENS[ns]: UserInfo(username=user, uid=f"uid-{user}") for ns, user in _KUBE_USERS.items()},
        access=tuple(
            AccessRule(
                users=(user,),
                verbs=("get",),
                api_groups=("observability.ethos.io",),
                resources=("metricaccesses",),
                namespaces=(ns,),
            )
            for ns, user in _KUBE_USERS.items()
        ),
    )


def kubernetes_mode(kubeconfig: str) -> AuthMode:
    def headers(ns: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {KUBE_TOKENS[ns]}", NAMESPACE_HEADER: ns}

    return AuthMode(
        name="kubernetes",
        auth={"type": "kubernetes", "kubernetes": {"cache_ttl": "10s"}},
        headers_for=headers,
        spoofed=lambda own, other: {"Authorization": f"Bearer {KUBE_TOKENS[own]}", NAMESPACE_HEADER: other},
        kubeconfig=kubeconfig,
    )


class JWTIssuer:
    """An RSA signing key and the tokens it issues."""

    KID = "e2e-key-1"

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": self.KID, "use": "sig", "alg": "RS256"}, private=True)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def token(self, namespaces: list[str], *, lifetime_s: int = 3600) -> str:
        now = int(time.time())
        claims = {"sub": f"e2e:{','.join(namespaces)}", "namespaces": namespaces, "iat": now, "exp": now + lifetime_s}
        return jwt.encode({"alg": "RS256", "kid": self.KID}, claims, self.key)


def jwt_mode(issuer: JWTIssuer, jwks_url: str) -> AuthMode:
    tokens = {ns: issuer.token([ns]) for ns in ("team-a", "team-b", "team-c")}
    return AuthMode(
        name="jwt",
        auth={"type": "jwt", "jwt": {"jwks_url": jwks_url}},
        headers_for=lambda ns: {"Authorization": f"Bearer {tokens[ns]}"},
        spoofed=lambda own, other: {"Authorization": f"Bearer {tokens[own]}", NAMESPACE_HEADER: other},
    )


def apikey_mode() -> AuthMode:
    return AuthMode(
        name="apikey",
        auth={"type": "apikey", "apikey": {"static_keys": {key: [ns] for ns, key in API_KEYS.items()}}},
        headers_for=lambda ns: {"X-API-Key": API_KEYS[ns]},
        spoofed=lambda own, other: {"X-API-Key": API_KEYS[own], NAMESPACE_HEADER: other},
    )
