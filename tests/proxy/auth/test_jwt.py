"""``auth.type: jwt``: signatures, claims, algorithm confusion, and the three key sources.

The JWKS URL tests serve the key set from a small HTTP/1.1 server on 127.0.0.1 in the test's
nursery, and move trio's mock clock by hand (``mock_clock``): autojump would also jump while
the client waits on the real socket.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import os
import pathlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OctKey, RSAKey

from mtproxy.proxy.auth.base import AuthRequest, Tenant
from mtproxy.proxy.auth.jwt import JWKSFile, JWKSUrl, JWTAuthenticator, SharedSecret, parse_jwks
from mtproxy.proxy.errors import BadRequest, Forbidden, Unauthenticated, Unavailable

from ..rawhttp import read_request

RequestFactory = Callable[..., AuthRequest]

SECRET = "a-shared-secret-of-at-least-32-bytes!"
NOW = int(time.time())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(claims: dict[str, Any], key: Key, *, alg: str, kid: str | None = None) -> str:
    header: dict[str, Any] = {"alg": alg}
    if kid is not None:
        header["kid"] = kid
    return jwt.encode(header, claims, key, algorithms=[alg])


def unsigned(claims: dict[str, Any]) -> str:
    """An ``alg: none`` token, built by hand as an attacker would."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def hs256_with(secret: bytes, claims: dict[str, Any], *, kid: str | None = None) -> str:
    """An HS256 token signed by hand, e.g. with a public key's PEM as the secret."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def claims(**overrides: Any) -> dict[str, Any]:
    # valid for a day: tokens are signed at collection, and the whole suite may run a while first
    base: dict[str, Any] = {"sub": "ci-bot", "exp": NOW + 86_400, "namespaces": ["team-a"]}
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def bearer(make_request: RequestFactory, token: str, namespace: str | None = None) -> AuthRequest:
    headers = {"Authorization": f"Bearer {token}"}
    if namespace is not None:
        headers["X-Tenant-Namespace"] = namespace
    return make_request(headers)


def jwks(*keys: Key) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


@pytest.fixture(scope="module")
def rsa_k1() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


@pytest.fixture(scope="module")
def rsa_k2() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k2"})


@pytest.fixture(scope="module")
def ec_e1() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "e1"})


@pytest.fixture
def shared_secret_auth() -> JWTAuthenticator:
    return JWTAuthenticator(SharedSecret(SECRET), issuer="https://issuer.example", audience="mtproxy")


# --- HS256 with a shared secret -------------------------------------------------------------

HS_KEY = OctKey.import_key(SECRET.encode())
OTHER_KEY = OctKey.import_key(b"another-secret-of-at-least-32-bytes!!")
GOOD = {"iss": "https://issuer.example", "aud": "mtproxy"}


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        pytest.param(sign(claims(**GOOD), HS_KEY, alg="HS256"), "team-a", id="valid"),
        pytest.param(sign(claims(**GOOD), HS_KEY, alg="HS512"), "team-a", id="valid-hs512"),
        pytest.param(
            sign(claims(iss=GOOD["iss"], aud=["other", "mtproxy"]), HS_KEY, alg="HS256"),
            "team-a",
            id="audience-in-list",
        ),
        # signed when the test runs: the 20 s margin to the leeway must not be spent on collection
        pytest.param(
            lambda: sign(claims(**GOOD, exp=int(time.time()) - 10), HS_KEY, alg="HS256"),
            "team-a",
            id="expired-within-leeway",
        ),
        pytest.param(sign(claims(**GOOD), OTHER_KEY, alg="HS256"), "not signed by a trusted key", id="bad-signature"),
        pytest.param(sign(claims(**GOOD, exp=NOW - 3600), HS_KEY, alg="HS256"), "expired", id="expired"),
        pytest.param(sign(claims(**GOOD, exp=None), HS_KEY, alg="HS256"), "'exp'", id="no-exp"),
        pytest.param(sign(claims(**GOOD, nbf=NOW + 3600), HS_KEY, alg="HS256"), "'nbf'", id="not-yet-valid"),
        pytest.param(sign(claims(**GOOD, iat=NOW + 3600), HS_KEY, alg="HS256"), "'iat'", id="issued-in-future"),
        pytest.param(sign(claims(iss=GOOD["iss"], aud="other"), HS_KEY, alg="HS256"), "'aud'", id="wrong-audience"),
        pytest.param(sign(claims(iss=GOOD["iss"]), HS_KEY, alg="HS256"), "'aud'", id="no-audience"),
        pytest.param(
            sign(claims(iss="https://evil.example", aud="mtproxy"), HS_KEY, alg="HS256"), "'iss'", id="wrong-iss"
        ),
        pytest.param(sign(claims(aud="mtproxy"), HS_KEY, alg="HS256"), "'iss'", id="no-iss"),
        pytest.param(unsigned(claims(**GOOD)), "algorithm 'none' is not accepted", id="alg-none"),
        pytest.param(
            sign(claims(**GOOD), HS_KEY, alg="HS256").rsplit(".", 1)[0] + ".",
            "not signed by a trusted key",
            id="signature-stripped",
        ),
        pytest.param("not-a-jwt", "not a JWT", id="garbage"),
        pytest.param("a.b.c", "not a JWT", id="undecodable-header"),
    ],
)
async def test_shared_secret_tokens(
    make_request: RequestFactory, shared_secret_auth: JWTAuthenticator, token: str | Callable[[], str], expected: str
) -> None:
    request = bearer(make_request, token() if callable(token) else token)
    if expected == "team-a":
        assert await shared_secret_auth.authenticate(request) == Tenant(namespace="team-a", subject="ci-bot")
    else:
        with pytest.raises(Unauthenticated, match=expected):
            await shared_secret_auth.authenticate(request)


async def test_missing_bearer_token_is_401(make_request: RequestFactory, shared_secret_auth: JWTAuthenticator) -> None:
    with pytest.raises(Unauthenticated, match="Authorization: Bearer"):
        await shared_secret_auth.authenticate(make_request({"X-Tenant-Namespace": "team-a"}))


async def test_rs256_token_is_refused_by_a_shared_secret(make_request: RequestFactory, rsa_k1: RSAKey) -> None:
    authenticator = JWTAuthenticator(SharedSecret(SECRET))
    with pytest.raises(Unauthenticated, match="algorithm 'RS256' is not accepted"):
        await authenticator.authenticate(bearer(make_request, sign(claims(), rsa_k1, alg="RS256")))


@pytest.mark.parametrize(
    ("token_claims", "namespace", "expected"),
    [
        pytest.param({"namespaces": "team-a"}, None, "team-a", id="string-claim"),
        pytest.param({"namespaces": ["team-a"]}, None, "team-a", id="one-in-list"),
        pytest.param({"namespaces": ["team-a", "team-b"]}, "team-b", "team-b", id="requested-in-list"),
        pytest.param({"namespaces": ["team-a", "team-b"]}, None, BadRequest, id="several-none-requested"),
        pytest.param({"namespaces": ["team-a"]}, "team-b", Forbidden, id="requested-not-granted"),
        pytest.param({"namespaces": None}, "team-a", Forbidden, id="claim-missing"),
        pytest.param({"namespaces": 7}, "team-a", Forbidden, id="claim-not-strings"),
        pytest.param({"namespaces": ["team-a", 7]}, "team-a", Forbidden, id="list-with-non-string"),
        pytest.param({"namespaces": []}, None, Forbidden, id="empty-list"),
    ],
)
async def test_namespaces_come_from_the_claim(
    make_request: RequestFactory,
    token_claims: dict[str, Any],
    namespace: str | None,
    expected: str | type[Exception],
) -> None:
    authenticator = JWTAuthenticator(SharedSecret(SECRET))
    request = bearer(make_request, sign(claims(**token_claims), HS_KEY, alg="HS256"), namespace)
    if isinstance(expected, str):
        assert (await authenticator.authenticate(request)).namespace == expected
    else:
        with pytest.raises(expected):
            await authenticator.authenticate(request)


async def test_namespaces_claim_name_is_configurable(make_request: RequestFactory) -> None:
    authenticator = JWTAuthenticator(SharedSecret(SECRET), namespaces_claim="k8s_namespaces")
    token = sign(claims(namespaces=None, k8s_namespaces=["team-z"]), HS_KEY, alg="HS256")
    assert (await authenticator.authenticate(bearer(make_request, token))).namespace == "team-z"


async def test_subject_is_jwt_when_the_token_has_no_sub(make_request: RequestFactory) -> None:
    authenticator = JWTAuthenticator(SharedSecret(SECRET))
    token = sign(claims(sub=None), HS_KEY, alg="HS256")
    assert (await authenticator.authenticate(bearer(make_request, token))).subject == "jwt"


async def test_rejections_never_log_the_token(
    make_request: RequestFactory, shared_secret_auth: JWTAuthenticator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mtproxy.proxy.auth")
    token = sign(claims(**GOOD), OTHER_KEY, alg="HS256")
    with pytest.raises(Unauthenticated) as caught:
        await shared_secret_auth.authenticate(bearer(make_request, token))
    assert token not in caught.value.message
    for record in caplog.records:
        assert token not in repr(vars(record))


# --- RS256 / ES256 with a JWKS file ---------------------------------------------------------


def write_jwks(path: pathlib.Path, document: dict[str, Any], *, mtime_ns: int) -> None:
    path.write_text(json.dumps(document))
    os.utime(path, ns=(mtime_ns, mtime_ns))


async def test_rs256_and_es256_tokens_verify_with_a_jwks_file(
    make_request: RequestFactory, tmp_path: pathlib.Path, rsa_k1: RSAKey, ec_e1: ECKey
) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, jwks(rsa_k1, ec_e1), mtime_ns=1_000_000_000)
    authenticator = JWTAuthenticator(JWKSFile(path))
    for token in (sign(claims(), rsa_k1, alg="RS256", kid="k1"), sign(claims(), ec_e1, alg="ES256", kid="e1")):
        assert (await authenticator.authenticate(bearer(make_request, token))).namespace == "team-a"


async def test_token_signed_by_an_unknown_key_is_401(
    make_request: RequestFactory, tmp_path: pathlib.Path, rsa_k1: RSAKey, rsa_k2: RSAKey
) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, jwks(rsa_k1), mtime_ns=1_000_000_000)
    authenticator = JWTAuthenticator(JWKSFile(path))
    for token in (
        sign(claims(), rsa_k2, alg="RS256", kid="k2"),
        sign(claims(), rsa_k2, alg="RS256", kid="k1"),
    ):
        with pytest.raises(Unauthenticated, match="not signed by a trusted key"):
            await authenticator.authenticate(bearer(make_request, token))


async def test_hs256_token_signed_with_the_public_key_is_refused_by_a_jwks(
    make_request: RequestFactory, tmp_path: pathlib.Path, rsa_k1: RSAKey
) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, jwks(rsa_k1), mtime_ns=1_000_000_000)
    authenticator = JWTAuthenticator(JWKSFile(path))
    token = hs256_with(rsa_k1.as_pem(private=False), claims(), kid="k1")
    with pytest.raises(Unauthenticated, match="algorithm 'HS256' is not accepted"):
        await authenticator.authenticate(bearer(make_request, token))


async def test_oct_keys_in_a_jwks_are_ignored(
    make_request: RequestFactory, tmp_path: pathlib.Path, rsa_k1: RSAKey
) -> None:
    oct_key = OctKey.import_key(SECRET.encode(), parameters={"kid": "shared"})
    document = {"keys": [rsa_k1.as_dict(private=False), oct_key.as_dict()]}
    assert [key.kid for key in parse_jwks(json.dumps(document)).keys] == ["k1"]
    with pytest.raises(ValueError, match="no RSA or EC key"):
        parse_jwks(json.dumps({"keys": [oct_key.as_dict()]}))


async def test_jwks_file_is_reread_when_it_changes(
    make_request: RequestFactory, tmp_path: pathlib.Path, rsa_k1: RSAKey, rsa_k2: RSAKey
) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, jwks(rsa_k1), mtime_ns=1_000_000_000)
    authenticator = JWTAuthenticator(JWKSFile(path))
    old = bearer(make_request, sign(claims(), rsa_k1, alg="RS256", kid="k1"))
    new = bearer(make_request, sign(claims(), rsa_k2, alg="RS256", kid="k2"))
    await authenticator.authenticate(old)
    with pytest.raises(Unauthenticated):
        await authenticator.authenticate(new)

    write_jwks(path, jwks(rsa_k2), mtime_ns=2_000_000_000)
    assert (await authenticator.authenticate(new)).namespace == "team-a"
    with pytest.raises(Unauthenticated):
        await authenticator.authenticate(old)


async def test_broken_jwks_file_keeps_the_previous_keys(
    make_request: RequestFactory, tmp_path: pathlib.Path, rsa_k1: RSAKey, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, jwks(rsa_k1), mtime_ns=1_000_000_000)
    authenticator = JWTAuthenticator(JWKSFile(path))
    request = bearer(make_request, sign(claims(), rsa_k1, alg="RS256", kid="k1"))
    path.write_text("{not json")
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert (await authenticator.authenticate(request)).namespace == "team-a"
    path.unlink()
    assert (await authenticator.authenticate(request)).namespace == "team-a"
    assert any("keeping previous keys" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "No such file", id="missing"),
        pytest.param("{not json", "not JSON", id="not-json"),
        pytest.param('{"kid": "x"}', "no 'keys' list", id="not-a-jwks"),
        pytest.param('{"keys": []}', "no RSA or EC key", id="empty"),
    ],
)
def test_bad_jwks_file_is_refused_at_construction(tmp_path: pathlib.Path, content: str | None, message: str) -> None:
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message):
        JWKSFile(path)


# --- RS256 with a JWKS URL ------------------------------------------------------------------


class JWKSServer:
    """Serves ``document`` (or ``status``) to every GET, one request per connection."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.status = 200
        self.hits = 0
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    async def serve(self, stream: trio.SocketStream) -> None:
        if await read_request(stream) is None:
            return
        self.hits += 1
        body = json.dumps(self.document).encode() if self.status == 200 else b"upstream error"
        head = (
            f"HTTP/1.1 {self.status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        await stream.send_all(head.encode() + body)
        await stream.aclose()


@pytest.fixture
async def jwks_server(nursery: trio.Nursery) -> JWKSServer:
    server = JWKSServer()
    listeners = await nursery.start(functools.partial(trio.serve_tcp, server.serve, 0, host="127.0.0.1"))
    server.port = listeners[0].socket.getsockname()[1]
    return server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


async def test_rs256_token_verifies_with_keys_from_a_jwks_url(
    make_request: RequestFactory,
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    rsa_k1: RSAKey,
    mock_clock: trio.testing.MockClock,
) -> None:
    jwks_server.document = jwks(rsa_k1)
    authenticator = JWTAuthenticator(JWKSUrl(jwks_server.url, http=http))
    request = bearer(make_request, sign(claims(), rsa_k1, alg="RS256", kid="k1"))
    assert (await authenticator.authenticate(request)).namespace == "team-a"
    assert (await authenticator.authenticate(request)).namespace == "team-a"
    assert jwks_server.hits == 1


async def test_jwks_url_keys_are_reused_for_five_minutes(
    make_request: RequestFactory,
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    rsa_k1: RSAKey,
    mock_clock: trio.testing.MockClock,
) -> None:
    jwks_server.document = jwks(rsa_k1)
    authenticator = JWTAuthenticator(JWKSUrl(jwks_server.url, http=http))
    request = bearer(make_request, sign(claims(), rsa_k1, alg="RS256", kid="k1"))
    await authenticator.authenticate(request)
    mock_clock.jump(299)
    await authenticator.authenticate(request)
    assert jwks_server.hits == 1
    mock_clock.jump(2)
    await authenticator.authenticate(request)
    assert jwks_server.hits == 2


async def test_rotated_key_is_accepted_after_an_immediate_refresh(
    make_request: RequestFactory,
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    rsa_k1: RSAKey,
    rsa_k2: RSAKey,
    mock_clock: trio.testing.MockClock,
) -> None:
    jwks_server.document = jwks(rsa_k1)
    authenticator = JWTAuthenticator(JWKSUrl(jwks_server.url, http=http))
    await authenticator.authenticate(bearer(make_request, sign(claims(), rsa_k1, alg="RS256", kid="k1")))
    mock_clock.jump(60)
    jwks_server.document = jwks(rsa_k1, rsa_k2)
    rotated = bearer(make_request, sign(claims(), rsa_k2, alg="RS256", kid="k2"))
    assert (await authenticator.authenticate(rotated)).namespace == "team-a"
    assert jwks_server.hits == 2


async def test_unknown_kids_refetch_at_most_once_per_ten_seconds(
    make_request: RequestFactory,
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    rsa_k1: RSAKey,
    rsa_k2: RSAKey,
    mock_clock: trio.testing.MockClock,
) -> None:
    jwks_server.document = jwks(rsa_k1)
    authenticator = JWTAuthenticator(JWKSUrl(jwks_server.url, http=http))
    await authenticator.authenticate(bearer(make_request, sign(claims(), rsa_k1, alg="RS256", kid="k1")))
    jwks_server.document = jwks(rsa_k1, rsa_k2)
    rotated = bearer(make_request, sign(claims(), rsa_k2, alg="RS256", kid="k2"))
    for number in range(50):
        made_up = bearer(make_request, sign(claims(), rsa_k2, alg="RS256", kid=f"made-up-{number}"))
        with pytest.raises(Unauthenticated):
            await authenticator.authenticate(made_up)
    with pytest.raises(Unauthenticated):
        await authenticator.authenticate(rotated)
    assert jwks_server.hits == 1, "no refetch within 10 s of the last one"
    mock_clock.jump(10)
    assert (await authenticator.authenticate(rotated)).namespace == "team-a"
    assert jwks_server.hits == 2


async def test_concurrent_requests_share_one_jwks_fetch(
    make_request: RequestFactory,
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    rsa_k1: RSAKey,
    mock_clock: trio.testing.MockClock,
) -> None:
    jwks_server.document = jwks(rsa_k1)
    authenticator = JWTAuthenticator(JWKSUrl(jwks_server.url, http=http))
    request = bearer(make_request, sign(claims(), rsa_k1, alg="RS256", kid="k1"))
    tenants: list[Tenant] = []

    async def one() -> None:
        tenants.append(await authenticator.authenticate(request))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(one)
    assert len(tenants) == 10
    assert jwks_server.hits == 1


async def test_jwks_url_unreachable_before_any_keys_is_503(
    make_request: RequestFactory,
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    rsa_k1: RSAKey,
    mock_clock: trio.testing.MockClock,
) -> None:
    jwks_server.status = 500
    authenticator = JWTAuthenticator(JWKSUrl(jwks_server.url, http=http))
    request = bearer(make_request, sign(claims(), rsa_k1, alg="RS256", kid="k1"))
    with pytest.raises(Unavailable):
        await authenticator.authenticate(request)
    jwks_server.status = 200
    jwks_server.document = jwks(rsa_k1)
    with pytest.raises(Unavailable):
        await authenticator.authenticate(request)
    assert jwks_server.hits == 1, "a failed fetch is not retried within 10 s either"
    mock_clock.jump(10)
    assert (await authenticator.authenticate(request)).namespace == "team-a"


async def test_jwks_url_failure_keeps_the_previous_keys(
    make_request: RequestFactory,
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    rsa_k1: RSAKey,
    mock_clock: trio.testing.MockClock,
) -> None:
    jwks_server.document = jwks(rsa_k1)
    authenticator = JWTAuthenticator(JWKSUrl(jwks_server.url, http=http))
    request = bearer(make_request, sign(claims(), rsa_k1, alg="RS256", kid="k1"))
    await authenticator.authenticate(request)
    jwks_server.status = 500
    mock_clock.jump(301)
    assert (await authenticator.authenticate(request)).namespace == "team-a"
    assert jwks_server.hits == 2


async def test_jwks_url_connection_refused_is_503(
    make_request: RequestFactory, http: httpx.AsyncClient, rsa_k1: RSAKey, mock_clock: trio.testing.MockClock
) -> None:
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    authenticator = JWTAuthenticator(JWKSUrl(f"http://127.0.0.1:{port}/jwks", http=http))
    with pytest.raises(Unavailable):
        await authenticator.authenticate(bearer(make_request, sign(claims(), rsa_k1, alg="RS256", kid="k1")))


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        pytest.param({"url": "file:///etc/jwks.json"}, "url", id="not-http"),
        pytest.param({"max_age_s": 0}, "max_age_s", id="zero-max-age"),
        pytest.param({"min_refresh_interval_s": -1}, "min_refresh_interval_s", id="negative-interval"),
    ],
)
async def test_invalid_jwks_url_settings_are_refused(
    http: httpx.AsyncClient, arguments: dict[str, Any], name: str
) -> None:
    settings: dict[str, Any] = {"url": "https://issuer.example/jwks"} | arguments
    with pytest.raises(ValueError, match=name):
        JWKSUrl(settings.pop("url"), http=http, **settings)


def test_short_shared_secret_is_accepted_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    SharedSecret("s3cret")
    assert [record.getMessage() for record in caplog.records] == ["jwt secret key is short"]
    assert "s3cret" not in repr(vars(caplog.records[0]))
