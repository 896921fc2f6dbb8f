"""``auth.type: apikey``: static keys, a reloading keys file, and constant-time comparison."""

from __future__ import annotations

import hmac
import json
import logging
import os
import pathlib
from collections.abc import Callable

import pytest

from mtproxy.proxy.auth.apikey import ApiKeyAuthenticator, parse_keys_file
from mtproxy.proxy.auth.base import AuthRequest, Tenant
from mtproxy.proxy.errors import BadRequest, Forbidden, ProxyError, Unauthenticated

RequestFactory = Callable[..., AuthRequest]

STATIC_KEYS = {"key-for-team-a": ("team-a",), "key-for-two-teams": ("team-a", "team-b")}


def with_key(make_request: RequestFactory, key: str | None, namespace: str | None = None) -> AuthRequest:
    headers = {}
    if key is not None:
        headers["X-API-Key"] = key
    if namespace is not None:
        headers["X-Tenant-Namespace"] = namespace
    return make_request(headers)


def write(path: pathlib.Path, text: str, *, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.mark.parametrize(
    ("key", "namespace", "expected"),
    [
        pytest.param("key-for-team-a", None, "team-a", id="one-namespace-none-requested"),
        pytest.param("key-for-team-a", "team-a", "team-a", id="requested-and-granted"),
        pytest.param("key-for-two-teams", "team-b", "team-b", id="one-of-several"),
        pytest.param("key-for-two-teams", None, BadRequest, id="several-none-requested"),
        pytest.param("key-for-team-a", "team-b", Forbidden, id="not-granted"),
        pytest.param("unknown-key", "team-a", Unauthenticated, id="unknown-key"),
        pytest.param("key-for-team-", "team-a", Unauthenticated, id="prefix-of-a-key"),
        pytest.param(None, "team-a", Unauthenticated, id="no-key"),
        pytest.param("", "team-a", Unauthenticated, id="empty-key"),
    ],
)
async def test_static_keys(
    make_request: RequestFactory, key: str | None, namespace: str | None, expected: str | type[ProxyError]
) -> None:
    authenticator = ApiKeyAuthenticator(static_keys=STATIC_KEYS)
    request = with_key(make_request, key, namespace)
    if isinstance(expected, str):
        assert await authenticator.authenticate(request) == Tenant(namespace=expected, subject="apikey:key-\u2026")
    else:
        with pytest.raises(expected):
            await authenticator.authenticate(request)


async def test_missing_key_names_the_header(make_request: RequestFactory) -> None:
    authenticator = ApiKeyAuthenticator(header_name="X-Grafana-Key", static_keys=STATIC_KEYS)
    with pytest.raises(Unauthenticated, match="X-Grafana-Key"):
        await authenticator.authenticate(with_key(make_request, "key-for-team-a"))
    tenant = await authenticator.authenticate(make_request({"x-grafana-key": "key-for-team-a"}))
    assert tenant.namespace == "team-a"


async def test_every_known_key_is_compared_even_after_a_match(
    make_request: RequestFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(len(b))
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", counting)
    keys = {f"key-{number}": ("team-a",) for number in range(5)}
    authenticator = ApiKeyAuthenticator(static_keys=keys)
    await authenticator.authenticate(with_key(make_request, "key-0"))
    assert compared == [32] * 5, "fixed-length digests, all of them"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("key-from-file: team-c\nkey-two: [team-a, team-c]\n", id="yaml"),
        pytest.param(json.dumps({"key-from-file": "team-c", "key-two": ["team-a", "team-c"]}), id="json"),
    ],
)
async def test_keys_file_in_yaml_or_json(make_request: RequestFactory, tmp_path: pathlib.Path, text: str) -> None:
    path = tmp_path / "keys"
    write(path, text, mtime_ns=1_000_000_000)
    authenticator = ApiKeyAuthenticator(keys_file=path)
    assert (await authenticator.authenticate(with_key(make_request, "key-from-file"))).namespace == "team-c"
    assert (await authenticator.authenticate(with_key(make_request, "key-two", "team-a"))).namespace == "team-a"


async def test_keys_file_is_reread_when_it_changes(make_request: RequestFactory, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "keys.yaml"
    write(path, "old-key: team-a\n", mtime_ns=1_000_000_000)
    authenticator = ApiKeyAuthenticator(keys_file=path)
    assert (await authenticator.authenticate(with_key(make_request, "old-key"))).namespace == "team-a"

    write(path, "new-key: team-b\n", mtime_ns=2_000_000_000)
    assert (await authenticator.authenticate(with_key(make_request, "new-key"))).namespace == "team-b"
    with pytest.raises(Unauthenticated):
        await authenticator.authenticate(with_key(make_request, "old-key"))

    write(path, "", mtime_ns=3_000_000_000)
    with pytest.raises(Unauthenticated):
        await authenticator.authenticate(with_key(make_request, "new-key"))


async def test_broken_keys_file_keeps_the_previous_keys_and_never_logs_them(
    make_request: RequestFactory, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mtproxy.proxy.auth")
    path = tmp_path / "keys.yaml"
    write(path, "good-key: team-a\n", mtime_ns=1_000_000_000)
    authenticator = ApiKeyAuthenticator(keys_file=path)
    write(path, "good-key: team-a\nsecret-key-in-broken-line: [team-b\n", mtime_ns=2_000_000_000)
    assert (await authenticator.authenticate(with_key(make_request, "good-key"))).namespace == "team-a"
    path.unlink()
    assert (await authenticator.authenticate(with_key(make_request, "good-key"))).namespace == "team-a"
    messages = [repr(vars(record)) for record in caplog.records]
    assert any("keeping previous keys" in message for message in messages)
    assert not any("secret-key-in-broken-line" in message or "good-key" in message for message in messages)


async def test_a_key_in_both_sources_grants_the_union(make_request: RequestFactory, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "keys.yaml"
    write(path, "shared-key: team-b\n", mtime_ns=1_000_000_000)
    authenticator = ApiKeyAuthenticator(static_keys={"shared-key": ("team-a",)}, keys_file=path)
    for namespace in ("team-a", "team-b"):
        tenant = await authenticator.authenticate(with_key(make_request, "shared-key", namespace))
        assert tenant.namespace == namespace


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("- a\n- b\n", "must map each API key", id="list"),
        pytest.param("12345: team-a\n", "entry 1: the API key must be a non-empty string", id="numeric-key"),
        pytest.param("k: {a: b}\n", "entry 1: must map the key", id="nested-mapping"),
        pytest.param("k: [team-a, 3]\n", "entry 1", id="non-string-namespace"),
        pytest.param("secret-value: [team-a\n", "not valid YAML or JSON at line", id="invalid-yaml"),
    ],
)
def test_bad_keys_file_errors_name_positions_never_keys(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_keys_file(text)
    assert "secret-value" not in str(caught.value)


def test_keys_file_that_cannot_be_read_is_refused_at_construction(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="keys file"):
        ApiKeyAuthenticator(keys_file=tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param({"header_name": ""}, "header_name", id="empty-header-name"),
        pytest.param({"static_keys": {"": ("team-a",)}}, "static_keys", id="empty-key"),
    ],
)
def test_invalid_settings_are_refused(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ApiKeyAuthenticator(**arguments)  # type: ignore[arg-type]
