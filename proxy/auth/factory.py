"""Builds the ``Authenticator`` that ``auth.type`` names, from the ``auth`` config section.

The composition root calls ``build_authenticator`` once at start-up and hands in what the
plugins cannot make themselves: the Kubernetes ``AccessReviewer`` (``proxy/`` never imports
the Kubernetes client) and the shared ``httpx.AsyncClient`` for a JWKS URL. Anything
missing or invalid is a ``ValueError`` naming the config key, raised before the proxy
serves a single request: key files are read here too.
"""

from __future__ import annotations

import httpx

from mtproxy.api import AuthConfig, AuthType, JWTAuthConfig, parse_duration_ms
from mtproxy.proxy.auth.apikey import ApiKeyAuthenticator
from mtproxy.proxy.auth.base import AccessReviewer, Authenticator
from mtproxy.proxy.auth.header import HeaderAuthenticator
from mtproxy.proxy.auth.jwt import JWKSFile, JWKSUrl, JWTAuthenticator, JWTKeySource, SharedSecret
from mtproxy.proxy.auth.kubernetes import KubernetesAuthenticator

__all__ = ["build_authenticator"]


def build_authenticator(
    config: AuthConfig, *, reviewer: AccessReviewer | None, http: httpx.AsyncClient | None
) -> Authenticator:
    """The authenticator for ``config.type``.

    Args:
        config: the ``auth`` section.
        reviewer: TokenReview/SubjectAccessReview, required for ``kubernetes``.
        http: the client that fetches ``auth.jwt.jwks_url``, required for it.

    Raises:
        ValueError: a required setting or collaborator is missing or invalid; the message
            names the config key.
    """
    if config.type is AuthType.NONE:
        return HeaderAuthenticator()
    if config.type is AuthType.KUBERNETES:
        if reviewer is None:
            raise ValueError("auth.type kubernetes needs an access reviewer (reviewer=), which the caller must supply")
        settings = config.kubernetes
        try:
            cache_ttl_s = parse_duration_ms(settings.cache_ttl) / 1000
        except ValueError as exc:
            raise ValueError(f"auth.kubernetes.cache_ttl: {exc}") from None
        for name in ("verb", "resource"):
            if not getattr(settings, name):
                raise ValueError(f"auth.kubernetes.{name} must not be empty")
        return KubernetesAuthenticator(
            reviewer,
            verb=settings.verb,
            group=settings.group,
            resource=settings.resource,
            cache_ttl_s=cache_ttl_s,
        )
    if config.type is AuthType.JWT:
        settings_jwt = config.jwt
        return JWTAuthenticator(
            _jwt_key_source(settings_jwt, http=http),
            issuer=settings_jwt.issuer or None,
            audience=settings_jwt.audience or None,
            namespaces_claim=_required(settings_jwt.namespaces_claim, "auth.jwt.namespaces_claim"),
        )
    if config.type is AuthType.APIKEY:
        settings_apikey = config.apikey
        if not settings_apikey.static_keys and not settings_apikey.keys_file:
            raise ValueError("auth.type apikey needs auth.apikey.static_keys or auth.apikey.keys_file")
        header_name = _required(settings_apikey.header_name, "auth.apikey.header_name")
        try:
            return ApiKeyAuthenticator(
                header_name=header_name,
                static_keys=settings_apikey.static_keys,
                keys_file=settings_apikey.keys_file or None,
            )
        except ValueError as exc:
            key = "auth.apikey.keys_file" if "keys file" in str(exc) else "auth.apikey.static_keys"
            raise ValueError(f"{key}: {exc}") from None
    raise ValueError(f"auth.type {config.type!r} is not supported")


def _jwt_key_source(settings: JWTAuthConfig, *, http: httpx.AsyncClient | None) -> JWTKeySource:
    given = [name for name in ("secret_key", "jwks_file", "jwks_url") if getattr(settings, name)]
    if len(given) != 1:
        found = ", ".join(f"auth.jwt.{name}" for name in given) or "none"
        raise ValueError(
            "auth.type jwt needs exactly one of auth.jwt.secret_key, auth.jwt.jwks_file, auth.jwt.jwks_url "
            f"(set: {found})"
        )
    try:
        if settings.secret_key:
            return SharedSecret(settings.secret_key)
        if settings.jwks_file:
            return JWKSFile(settings.jwks_file)
        assert settings.jwks_url  # exactly one source is set
        if http is None:
            raise ValueError("an HTTP client (http=) is required to fetch it")
        return JWKSUrl(settings.jwks_url, http=http)
    except ValueError as exc:
        raise ValueError(f"auth.jwt.{given[0]}: {exc}") from None


def _required(value: str, key: str) -> str:
    if not value:
        raise ValueError(f"{key} must not be empty")
    return value
