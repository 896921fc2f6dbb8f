"""``auth.type: jwt``: a signed JWT bearer token whose claim lists the tenant's namespaces.

The token's signature is checked with exactly one key source, chosen in the config:

- ``secret_key``: a shared HMAC secret (``SharedSecret``; HS256, HS384, HS512);
- ``jwks_file``: a JWKS document on disk, re-read when the file changes (``JWKSFile``);
- ``jwks_url``: a JWKS document fetched over HTTP (``JWKSUrl``), reused for 5 minutes, and
  refetched at once when a token names a ``kid`` the set does not have (how issuers
  announce a rotated key), but never more than once per 10 s, so a flood of made-up
  ``kid`` values cannot turn the proxy against the issuer.

Each source carries its own algorithm allowlist, and key sets keep only RSA and EC keys, so
there is no algorithm confusion: ``none`` is never accepted, an HS* token is never checked
against a public key, and an RS*/ES* token is never checked against a shared secret.

Claims: ``exp`` is required, and ``exp``, ``nbf`` and ``iat`` are checked against the wall
clock with 30 s of leeway; ``iss`` and ``aud`` must match when ``issuer``/``audience`` are
configured. The namespaces come from ``namespaces_claim`` (a string or a list of strings).
An invalid, expired or untrusted token is a 401; a valid one that does not grant the
requested namespace is a 403. Key-source outages are 503, and a source that has loaded
keys once keeps serving them (with a warning) while its file or URL is broken.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import pathlib
import time
import warnings
from collections.abc import Collection
from typing import Any, Protocol

import httpx
import trio
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError, SecurityWarning
from joserfc.jwk import Key, KeySet, OctKey
from joserfc.jws import JWSRegistry

from mtproxy.proxy.auth.base import AuthRequest, Tenant, bearer_token, select_namespace
from mtproxy.proxy.errors import Forbidden, Unauthenticated, Unavailable

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "SYMMETRIC_ALGORITHMS",
    "JWKSFile",
    "JWKSUrl",
    "JWTAuthenticator",
    "JWTKeySource",
    "SharedSecret",
    "parse_jwks",
]

logger = logging.getLogger(__name__)

SYMMETRIC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
"""Accepted with a shared secret, and only then."""
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
"""Accepted with a JWKS, and only then."""
_JWKS_KEY_TYPES = frozenset({"RSA", "EC"})
_MIN_SECRET_BYTES = 32


class JWTKeySource(Protocol):
    """Where the verification keys come from, and which algorithms they may verify."""

    @property
    def algorithms(self) -> frozenset[str]:
        """The ``alg`` values accepted with these keys."""
        ...

    async def keys_for(self, kid: str | None) -> Key | KeySet:
        """The keys to verify a token whose header names ``kid``.

        Raises:
            Unavailable: no keys could be loaded yet.
        """
        ...


class SharedSecret:
    """An HMAC secret shared with the token issuer (``auth.jwt.secret_key``)."""

    def __init__(self, secret: str) -> None:
        """
        Raises:
            ValueError: the secret is empty.
        """
        if not secret:
            raise ValueError("secret must not be empty")
        encoded = secret.encode("utf-8")
        if len(encoded) < _MIN_SECRET_BYTES:
            # RFC 7518 §3.2 wants at least the hash size; refusing would break configs the original took.
            logger.warning("jwt secret key is short", extra={"bytes": len(encoded), "recommended": _MIN_SECRET_BYTES})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            self._key = OctKey.import_key(encoded)

    @property
    def algorithms(self) -> frozenset[str]:
        return SYMMETRIC_ALGORITHMS

    async def keys_for(self, kid: str | None) -> Key | KeySet:
        return self._key


def parse_jwks(data: bytes | str) -> KeySet:
    """The RSA and EC keys of a JWKS document; any other key type (``oct`` above all) is dropped.

    Raises:
        ValueError: not JSON, not a JWKS, or no usable key.
    """
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS: no 'keys' list")
    entries = [entry for entry in document["keys"] if isinstance(entry, dict) and entry.get("kty") in _JWKS_KEY_TYPES]
    if not entries:
        raise ValueError("no RSA or EC key in the set")
    try:
        key_set = KeySet.import_key_set({"keys": entries})
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"a key cannot be imported: {exc}") from None
    if not key_set.keys:
        raise ValueError("no RSA or EC key in the set")
    return key_set


class JWKSFile:
    """A JWKS document on disk (``auth.jwt.jwks_file``), re-read whenever the file changes.

    A change is seen from ``stat`` (modification time, size and inode, so a Secret volume's
    symlink swap counts), checked on every request: a ``stat`` of a local file is cheaper
    than the request's own parsing. The read itself runs in a worker thread.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Loads the file now, so a bad file stops start-up rather than every request.

        Raises:
            ValueError: the file cannot be read or holds no usable key.
        """
        self._path = pathlib.Path(path)
        try:
            self._signature = _file_signature(self._path)
            self._keys = parse_jwks(self._path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ValueError(f"JWKS file {str(self._path)!r}: {exc}") from None

    @property
    def algorithms(self) -> frozenset[str]:
        return ASYMMETRIC_ALGORITHMS

    async def keys_for(self, kid: str | None) -> Key | KeySet:
        try:
            signature = _file_signature(self._path)
        except OSError as exc:
            logger.warning(
                "jwks file unreadable, keeping previous keys", extra={"path": str(self._path), "error": str(exc)}
            )
            return self._keys
        if signature != self._signature:
            self._signature = signature
            try:
                self._keys = parse_jwks(await trio.to_thread.run_sync(self._path.read_bytes))
            except (OSError, ValueError) as exc:
                logger.warning(
                    "jwks file invalid, keeping previous keys", extra={"path": str(self._path), "error": str(exc)}
                )
            else:
                logger.info("jwks file reloaded", extra={"path": str(self._path), "keys": len(self._keys.keys)})
        return self._keys


class JWKSUrl:
    """A JWKS document fetched over HTTP (``auth.jwt.jwks_url``), cached and refreshed lazily.

    The keys are refetched on the first request after they are ``max_age_s`` old, or at once
    for a token naming an unknown ``kid``; attempts (successful or not) are at least
    ``min_refresh_interval_s`` apart. Concurrent requests share one fetch.
    """

    def __init__(
        self,
        url: str,
        *,
        http: httpx.AsyncClient,
        max_age_s: float = 300.0,
        min_refresh_interval_s: float = 10.0,
        fetch_timeout_s: float = 10.0,
    ) -> None:
        """
        Raises:
            ValueError: the URL is not http(s), or an interval is not positive.
        """
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"url must be an http(s) URL, got {url!r}")
        for name, value in (
            ("max_age_s", max_age_s),
            ("min_refresh_interval_s", min_refresh_interval_s),
            ("fetch_timeout_s", fetch_timeout_s),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self._url = url
        self._http = http
        self._max_age_s = max_age_s
        self._min_refresh_interval_s = min_refresh_interval_s
        self._fetch_timeout_s = fetch_timeout_s
        self._keys: KeySet | None = None
        self._kids: frozenset[str] = frozenset()
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._refreshing: trio.Event | None = None

    @property
    def algorithms(self) -> frozenset[str]:
        return ASYMMETRIC_ALGORITHMS

    async def keys_for(self, kid: str | None) -> Key | KeySet:
        now = trio.current_time()
        stale = now - self._fetched_at >= self._max_age_s
        unknown_kid = kid is not None and kid not in self._kids
        if (stale or unknown_kid) and (
            self._refreshing is not None or now - self._attempted_at >= self._min_refresh_interval_s
        ):
            await self._refresh()
        if self._keys is None:
            raise Unavailable("cannot verify the bearer token now: the token issuer's keys could not be fetched")
        return self._keys

    async def _refresh(self) -> None:
        if self._refreshing is not None:
            await self._refreshing.wait()
            return
        self._refreshing = done = trio.Event()
        self._attempted_at = trio.current_time()
        try:
            keys = await self._fetch()
            if keys is not None:
                self._keys = keys
                self._kids = frozenset(key.kid for key in keys.keys if key.kid is not None)
                self._fetched_at = trio.current_time()
        finally:
            self._refreshing = None
            done.set()

    async def _fetch(self) -> KeySet | None:
        """The key set at the URL, or None (logged) when it cannot be had."""
        response: httpx.Response | None = None
        with trio.move_on_after(self._fetch_timeout_s):
            try:
                response = await self._http.get(self._url, headers={"Accept": "application/json"})
            except httpx.HTTPError as exc:
                logger.warning("jwks fetch failed", extra={"url": self._url, "error_type": type(exc).__name__})
                return None
        if response is None:
            logger.warning("jwks fetch timed out", extra={"url": self._url, "timeout_s": self._fetch_timeout_s})
            return None
        if response.status_code != 200:
            logger.warning("jwks fetch failed", extra={"url": self._url, "status": response.status_code})
            return None
        try:
            keys = parse_jwks(response.content)
        except ValueError as exc:
            logger.warning("jwks document invalid", extra={"url": self._url, "error": str(exc)[:256]})
            return None
        logger.info("jwks fetched", extra={"url": self._url, "keys": len(keys.keys)})
        return keys


class JWTAuthenticator:
    """Authenticates JWT bearer tokens and reads the granted namespaces from a claim."""

    def __init__(
        self,
        keys: JWTKeySource,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        namespaces_claim: str = "namespaces",
        leeway_s: int = 30,
    ) -> None:
        """
        Args:
            keys: the verification keys and the algorithms they accept.
            issuer: when set, the ``iss`` claim must equal it.
            audience: when set, the ``aud`` claim must be it or contain it.
            namespaces_claim: the claim holding the granted namespace(s).
            leeway_s: clock skew tolerated for ``exp``, ``nbf`` and ``iat``.

        Raises:
            ValueError: an empty claim name or a negative leeway.
        """
        if not namespaces_claim:
            raise ValueError("namespaces_claim must not be empty")
        if leeway_s < 0:
            raise ValueError(f"leeway_s must not be negative, got {leeway_s}")
        self._keys = keys
        self._algorithms = keys.algorithms - {"none"}
        self._registry = JWSRegistry(algorithms=sorted(self._algorithms), strict_check_header=False)
        options: dict[str, Any] = {"exp": {"essential": True}}
        if issuer is not None:
            options["iss"] = {"essential": True, "value": issuer}
        if audience is not None:
            options["aud"] = {"essential": True, "value": audience}
        # Token times are wall-clock times, so "now" is too (not trio's clock).
        self._claims = jwt.JWTClaimsRegistry(now=lambda: int(time.time()), leeway=leeway_s, **options)
        self._namespaces_claim = namespaces_claim

    async def authenticate(self, request: AuthRequest) -> Tenant:
        """The tenant for a request with a valid JWT granting the requested namespace.

        Raises:
            Unauthenticated: no token, a malformed one, a bad signature, an untrusted key,
                an unaccepted algorithm, or a failed claim check (expired, wrong iss/aud).
            Forbidden: the token does not grant the requested namespace.
            BadRequest: several namespaces granted and none requested; an invalid name.
            Unavailable: the key source has no keys yet.
        """
        token = bearer_token(request)
        header = _unverified_header(token)
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise Unauthenticated(
                f"the bearer token's algorithm {str(algorithm)[:16]!r} is not accepted; "
                f"accepted: {', '.join(sorted(self._algorithms))}"
            )
        kid = header.get("kid")
        keys = await self._keys.keys_for(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(token, keys, registry=self._registry).claims
        except (JoseError, ValueError) as exc:
            logger.debug("jwt rejected", extra={"reason": type(exc).__name__})
            raise Unauthenticated("the bearer token is not signed by a trusted key") from None
        self._check_claims(claims)
        namespace = select_namespace(request, self._granted_namespaces(claims))
        subject = claims.get("sub")
        return Tenant(namespace=namespace, subject=subject[:256] if isinstance(subject, str) and subject else "jwt")

    def _check_claims(self, claims: dict[str, Any]) -> None:
        try:
            self._claims.validate(claims)
        except ExpiredTokenError:
            raise Unauthenticated("the bearer token has expired") from None
        except ClaimError as exc:
            raise Unauthenticated(f"the bearer token's {exc.claim!r} claim is missing or not valid") from None

    def _granted_namespaces(self, claims: dict[str, Any]) -> Collection[str]:
        value = claims.get(self._namespaces_claim)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise Forbidden(f"the bearer token's {self._namespaces_claim!r} claim must be a string or a list of strings")


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, read before any check to pick the key and algorithm."""
    segments = token.split(".")
    if len(segments) != 3:
        raise Unauthenticated("the bearer token is not a JWT")
    encoded = segments[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError):
        raise Unauthenticated("the bearer token is not a JWT: its header cannot be decoded") from None
    if not isinstance(header, dict):
        raise Unauthenticated("the bearer token is not a JWT: its header is not an object")
    return header


def _file_signature(path: pathlib.Path) -> tuple[int, int, int]:
    status = path.stat()
    return (status.st_mtime_ns, status.st_size, status.st_ino)
