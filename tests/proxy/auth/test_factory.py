"""``build_authenticator``: the plugin ``auth.type`` names, or a ValueError naming the config key."""

from __future__ import annotations

import json
import pathlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import trio
import trio.testing

from mtproxy.api import ApiKeyAuthConfig, AuthConfig, AuthType, JWTAuthConfig, KubernetesAuthConfig
from mtproxy.proxy.auth.apikey import ApiKeyAuthenticator
from mtproxy.proxy.auth.base import AuthRequest, ReviewedUser
from mtproxy.proxy.auth.factory import build_authenticator
from mtproxy.proxy.auth.header import HeaderAuthenticator
from mtproxy.proxy.auth.jwt import JWTAuthenticator
from mtproxy.proxy.auth.kubernetes import KubernetesAuthenticator

RequestFactory = Callable[..., AuthRequest]


class CountingReviewer:
    def __init__(self) -> None:
        self.review_calls = 0

    async def review_token(self, token: str) -> ReviewedUser | None:
        self.review_calls += 1
        return ReviewedUser(username="alice")

    async def can_access(self, user: ReviewedUser, *, namespace: str, verb: str, group: str, resource: str) -> bool:
        return True


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture
def jwks_file(tmp_path: pathlib.Path) -> str:
    from joserfc.jwk import RSAKey

    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [RSAKey.generate_key(2048).as_dict(private=False)]}))
    return str(path)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(AuthConfig(), HeaderAuthenticator, id="none"),
        pytest.param(AuthConfig(type=AuthType.KUBERNETES), KubernetesAuthenticator, id="kubernetes"),
        pytest.param(
            AuthConfig(type=AuthType.JWT, jwt=JWTAuthConfig(secret_key="s3cret")), JWTAuthenticator, id="jwt-secret"
        ),
        pytest.param(
            AuthConfig(type=AuthType.JWT, jwt=JWTAuthConfig(jwks_url="https://issuer.example/jwks")),
            JWTAuthenticator,
            id="jwt-url",
        ),
        pytest.param(
            AuthConfig(type=AuthType.APIKEY, apikey=ApiKeyAuthConfig(static_keys={"k": ("team-a",)})),
            ApiKeyAuthenticator,
            id="apikey",
        ),
    ],
)
async def test_auth_type_picks_the_plugin(config: AuthConfig, expected: type, http: httpx.AsyncClient) -> None:
    assert isinstance(build_authenticator(config, reviewer=CountingReviewer(), http=http), expected)


async def test_jwks_file_source(jwks_file: str) -> None:
    config = AuthConfig(type=AuthType.JWT, jwt=JWTAuthConfig(jwks_file=jwks_file))
    assert isinstance(build_authenticator(config, reviewer=None, http=None), JWTAuthenticator)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        pytest.param(AuthConfig(type=AuthType.KUBERNETES), "reviewer", id="kubernetes-without-reviewer"),
        pytest.param(AuthConfig(type=AuthType.JWT), "auth.jwt.secret_key", id="jwt-without-key-source"),
        pytest.param(
            AuthConfig(type=AuthType.JWT, jwt=JWTAuthConfig(secret_key="s", jwks_file="/x")),
            "set: auth.jwt.secret_key, auth.jwt.jwks_file",
            id="jwt-with-two-key-sources",
        ),
        pytest.param(
            AuthConfig(type=AuthType.JWT, jwt=JWTAuthConfig(jwks_url="https://issuer.example/jwks")),
            "auth.jwt.jwks_url",
            id="jwks-url-without-http-client",
        ),
        pytest.param(
            AuthConfig(type=AuthType.JWT, jwt=JWTAuthConfig(jwks_url="ftp://issuer.example/jwks")),
            "auth.jwt.jwks_url",
            id="jwks-url-not-http",
        ),
        pytest.param(
            AuthConfig(type=AuthType.JWT, jwt=JWTAuthConfig(jwks_file="/nonexistent/jwks.json")),
            "auth.jwt.jwks_file",
            id="jwks-file-missing",
        ),
        pytest.param(
            AuthConfig(type=AuthType.JWT, jwt=JWTAuthConfig(secret_key="s", namespaces_claim="")),
            "auth.jwt.namespaces_claim",
            id="empty-namespaces-claim",
        ),
        pytest.param(AuthConfig(type=AuthType.APIKEY), "auth.apikey.static_keys", id="apikey-without-keys"),
        pytest.param(
            AuthConfig(type=AuthType.APIKEY, apikey=ApiKeyAuthConfig(keys_file="/nonexistent/keys.yaml")),
            "auth.apikey.keys_file",
            id="apikey-keys-file-missing",
        ),
        pytest.param(
            AuthConfig(type=AuthType.APIKEY, apikey=ApiKeyAuthConfig(header_name="", static_keys={"k": ("team-a",)})),
            "auth.apikey.header_name",
            id="apikey-empty-header-name",
        ),
        pytest.param(
            AuthConfig(type=AuthType.KUBERNETES, kubernetes=KubernetesAuthConfig(cache_ttl="soon")),
            "auth.kubernetes.cache_ttl",
            id="kubernetes-bad-cache-ttl",
        ),
    ],
)
def test_missing_or_invalid_settings_name_the_config_key(config: AuthConfig, key: str) -> None:
    reviewer = None if "reviewer" in key else CountingReviewer()
    with pytest.raises(ValueError, match=key):
        build_authenticator(config, reviewer=reviewer, http=None)


async def test_kubernetes_cache_ttl_comes_from_the_config(
    make_request: RequestFactory, autojump_clock: trio.testing.MockClock
) -> None:
    reviewer = CountingReviewer()
    config = AuthConfig(type=AuthType.KUBERNETES, kubernetes=KubernetesAuthConfig(cache_ttl="2s"))
    authenticator = build_authenticator(config, reviewer=reviewer, http=None)
    request = make_request({"Authorization": "Bearer t", "X-Tenant-Namespace": "team-a"})
    await authenticator.authenticate(request)
    await trio.sleep(1.5)
    await authenticator.authenticate(request)
    assert reviewer.review_calls == 1
    await trio.sleep(1)
    await authenticator.authenticate(request)
    assert reviewer.review_calls == 2
