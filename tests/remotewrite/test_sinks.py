"""Remote-write senders: each sentence of ``mtproxy.remotewrite.senders``' docstring, checked.

Retry arithmetic runs on ``httpx.MockTransport`` with trio's virtual clock (exact and fast);
the receivers' real answers come from a real tenant Prometheus, a VictoriaMetrics with basic
auth, and a scripted loopback server for what real receivers will not do on demand (503,
429 with ``Retry-After``, hanging). Those tests are ``slow``.
"""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import logging
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from realservers import ServerProcess, TenantPrometheusFactory, VictoriaMetricsFactory, wait_for_result

from mtproxy.api import SecretKeyRef
from mtproxy.remotewrite.encode import compress_block, encode_labels, encode_series, encode_write_request
from mtproxy.remotewrite.errors import (
    PermanentSendError,
    RetryableSendError,
    SecretUnavailable,
    send_error_from_response,
)
from mtproxy.remotewrite.job import Destination, DestinationKind
from mtproxy.remotewrite.secrets import StaticSecretReader
from mtproxy.remotewrite.senders import RemoteWriteSender, SenderStatistics, SendOutcome, SendResult

from .scripted_server import Reply, serve_scripted

NAMESPACE = "team-a"
PASSWORD_REF = SecretKeyRef(name="rw-credentials", key="password")
TOKEN_REF = SecretKeyRef(name="rw-credentials", key="token")
CA_REF = SecretKeyRef(name="rw-tls", key="ca.crt")


# -- helpers ----------------------------------------------------------------------------------


def _destination(url: str, **changes: Any) -> Destination:
    return Destination(kind=DestinationKind.REMOTE_WRITE, url=url, name=changes.pop("name", url), **changes)


def _body(name: str, samples: list[tuple[int, float]], **labels: str) -> bytes:
    block = encode_labels([("__name__", name), *labels.items()])
    return compress_block(encode_write_request([encode_series(block, samples)]))


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Recording:
    """A MockTransport handler that answers from a script and notes each request's virtual time."""

    def __init__(self, *answers: Callable[[], Awaitable[httpx.Response]] | httpx.Response | Exception) -> None:
        self._answers = answers
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(trio.current_time())
        answer = self._answers[min(len(self.requests), len(self._answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):  # a fresh copy: a response is read once
            return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
        return await answer()

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


def _mock_sender(handler: _Recording, destination: Destination | None = None, **kwargs: Any) -> RemoteWriteSender:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return RemoteWriteSender(
        http,
        destination or _destination("http://receiver.test/api/v1/write"),
        namespace=NAMESPACE,
        secrets=kwargs.pop("secrets", None),
        **kwargs,
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
        yield client


async def _query(http: httpx.AsyncClient, server: ServerProcess, query: str, *, at_s: float) -> list[dict[str, Any]]:
    response = await http.get(f"{server.url}/api/v1/query", params={"query": query, "time": repr(at_s)})
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


# -- the error tree ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        pytest.param(500, RetryableSendError, id="500-retryable"),
        pytest.param(503, RetryableSendError, id="503-retryable"),
        pytest.param(429, RetryableSendError, id="429-retryable"),
        pytest.param(400, PermanentSendError, id="400-out-of-order-permanent"),
        pytest.param(401, PermanentSendError, id="401-bad-credentials-permanent"),
        pytest.param(404, PermanentSendError, id="404-permanent"),
        pytest.param(413, PermanentSendError, id="413-too-large-permanent"),
        pytest.param(415, PermanentSendError, id="415-media-type-permanent"),
        pytest.param(302, PermanentSendError, id="3xx-permanent"),
    ],
)
def test_answer_maps_to_retryable_or_permanent(status: int, kind: type[Exception]) -> None:
    assert isinstance(send_error_from_response(status, "Reason", "body"), kind)


def test_success_status_is_not_an_error() -> None:
    with pytest.raises(ValueError, match="status"):
        send_error_from_response(204, "No Content", "")


# -- construction -----------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Content-Type", "authorization", "User-Agent", "Retry-Attempt", "Host"])
def test_reserved_destination_header_is_refused(header: str) -> None:
    destination = _destination("http://receiver.test/w", headers={header: "x"})
    with pytest.raises(ValueError, match=header):
        RemoteWriteSender(httpx.AsyncClient(), destination, namespace=NAMESPACE, secrets=None)


@pytest.mark.parametrize(
    ("changes", "secrets", "message"),
    [
        pytest.param({"kind": DestinationKind.PUSHGATEWAY}, None, "destination.kind", id="pushgateway-kind"),
        pytest.param({"url": "ftp://receiver.test/w"}, None, "destination.url", id="not-http"),
        pytest.param({"basic_auth_username": "u"}, None, "basic_auth_password", id="username-without-password"),
        pytest.param(
            {"basic_auth_username": "u", "basic_auth_password": PASSWORD_REF, "bearer_token": TOKEN_REF},
            StaticSecretReader({}),
            "not both",
            id="basic-and-bearer",
        ),
        pytest.param({"bearer_token": TOKEN_REF}, None, "secrets", id="secret-without-reader"),
    ],
)
def test_bad_destination_is_refused_naming_the_field(
    changes: dict[str, Any], secrets: StaticSecretReader | None, message: str
) -> None:
    destination = dataclasses.replace(_destination("http://receiver.test/w"), **changes)
    with pytest.raises(ValueError, match=message):
        RemoteWriteSender(httpx.AsyncClient(), destination, namespace=NAMESPACE, secrets=secrets)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        pytest.param({"backoff_min_s": 0.0}, "backoff_min_s", id="zero-min"),
        pytest.param({"backoff_min_s": 1.0, "backoff_max_s": 0.5}, "backoff_max_s", id="max-below-min"),
        pytest.param({"attempt_timeout_s": 0.0}, "attempt_timeout_s", id="zero-attempt-timeout"),
        pytest.param({"user_agent": ""}, "user_agent", id="empty-user-agent"),
    ],
)
def test_bad_sender_parameter_is_refused_naming_it(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        RemoteWriteSender(
            httpx.AsyncClient(), _destination("http://receiver.test/w"), namespace=NAMESPACE, secrets=None, **kwargs
        )


# -- headers and secrets ----------------------------------------------------------------------


async def test_request_carries_spec_headers_bearer_token_and_custom_headers() -> None:
    handler = _Recording(httpx.Response(204))
    destination = _destination(
        "http://receiver.test/api/v1/write", headers={"X-Scope-OrgID": "team-a"}, bearer_token=TOKEN_REF
    )
    secrets = StaticSecretReader({NAMESPACE: {"rw-credentials": {"token": "tok-123\n"}}})
    sender = _mock_sender(handler, destination, secrets=secrets, user_agent="mtproxy-test/1")
    body = _body("up", [(1000, 1.0)])

    result = await sender.send(body, samples=1)

    assert result == SendResult(outcome=SendOutcome.DELIVERED, status=204, attempts=1)
    (request,) = handler.requests
    assert request.method == "POST"
    assert request.content == body
    assert request.headers["Content-Encoding"] == "snappy"
    assert request.headers["Content-Type"] == "application/x-protobuf"
    assert request.headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert request.headers["User-Agent"] == "mtproxy-test/1"
    assert request.headers["X-Scope-OrgID"] == "team-a"
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert "Retry-Attempt" not in request.headers


async def test_missing_secret_raises_secret_unavailable_and_sends_nothing() -> None:
    handler = _Recording(httpx.Response(204))
    destination = _destination("http://receiver.test/w", basic_auth_username="u", basic_auth_password=PASSWORD_REF)
    sender = _mock_sender(handler, destination, secrets=StaticSecretReader({NAMESPACE: {"other": {"k": "v"}}}))

    with pytest.raises(SecretUnavailable, match="team-a/rw-credentials key 'password'"):
        await sender.send(_body("up", [(1000, 1.0)]), samples=1)

    assert handler.requests == []
    assert sender.statistics().healthy is False


async def test_bearer_token_that_is_not_printable_raises_secret_unavailable() -> None:
    handler = _Recording(httpx.Response(204))
    destination = _destination("http://receiver.test/w", bearer_token=TOKEN_REF)
    secrets = StaticSecretReader({NAMESPACE: {"rw-credentials": {"token": "tok\nX-Injected: 1"}}})
    sender = _mock_sender(handler, destination, secrets=secrets)

    with pytest.raises(SecretUnavailable, match="printable"):
        await sender.send(_body("up", [(1000, 1.0)]), samples=1)
    assert handler.requests == []


async def test_refused_body_is_logged_truncated_without_credentials(caplog: pytest.LogCaptureFixture) -> None:
    # Some receivers (vmauth) echo the Authorization header in their error text.
    echo = "bad credentials, got Authorization: Basic dTpodW50ZXIy password hunter2 " + "x" * 5000
    handler = _Recording(httpx.Response(400, text=echo))
    destination = _destination("http://receiver.test/w", basic_auth_username="u", basic_auth_password=PASSWORD_REF)
    secrets = StaticSecretReader({NAMESPACE: {"rw-credentials": {"password": "hunter2"}}})
    sender = _mock_sender(handler, destination, secrets=secrets)

    with caplog.at_level(logging.ERROR, logger="mtproxy.remotewrite.senders"):
        result = await sender.send(_body("up", [(1000, 1.0)]), samples=3)

    assert handler.requests[0].headers["Authorization"] == "Basic dTpodW50ZXIy"  # base64("u:hunter2")
    (record,) = caplog.records
    assert record.getMessage() == "receiver refused the batch, dropped"
    logged: str = record.body  # type: ignore[attr-defined]
    assert logged.startswith("bad credentials, got Authorization: Basic <redacted> password <redacted> xxx")
    assert len(logged) < 1024 + 2 * len("<redacted>")  # the first KiB, redacted
    assert "<redacted>" in logged
    for text in (logged, result.error or "", str(sender.statistics().last_error)):
        assert "hunter2" not in text
        assert "dTpodW50ZXIy" not in text


# -- outcomes, backoff and deadlines (virtual time) ------------------------------------------


async def test_other_4xx_is_dropped_counted_and_never_retried(autojump_clock: trio.abc.Clock) -> None:
    handler = _Recording(httpx.Response(413, text="too large"))
    sender = _mock_sender(handler)

    result = await sender.send(_body("up", [(1000, 1.0)]), samples=7)
    await sender.send(_body("up", [(2000, 1.0)]), samples=2)

    assert result.outcome is SendOutcome.DROPPED
    assert (result.status, result.attempts) == (413, 1)
    assert len(handler.requests) == 2
    stats = sender.statistics()
    assert stats.samples_dropped_by_reason == (("http_413", 9),)
    assert (stats.requests, stats.retries, stats.samples_sent, stats.healthy) == (2, 0, 0, False)


async def test_redirect_is_not_followed_and_drops_the_batch() -> None:
    handler = _Recording(httpx.Response(307, headers={"Location": "http://elsewhere.test/w"}))
    sender = _mock_sender(handler)

    result = await sender.send(_body("up", [(1000, 1.0)]), samples=2)

    assert (result.outcome, result.status, result.attempts) == (SendOutcome.DROPPED, 307, 1)
    assert [str(r.url) for r in handler.requests] == ["http://receiver.test/api/v1/write"]
    assert sender.statistics().samples_dropped_by_reason == (("http_307", 2),)


async def test_backoff_doubles_from_min_to_max_with_jitter(autojump_clock: trio.abc.Clock) -> None:
    handler = _Recording(httpx.Response(503))
    sender = _mock_sender(handler, backoff_min_s=0.03, backoff_max_s=5.0)

    with trio.move_on_after(60):
        result = await sender.send(_body("up", [(1000, 1.0)]), samples=1)

    assert result.outcome is SendOutcome.RETRY_LATER
    assert result.status == 503
    for n, gap in enumerate(handler.gaps):
        nominal = min(0.03 * 2**n, 5.0)
        assert 0.8 * nominal - 1e-9 <= gap <= 1.2 * nominal + 1e-9, (n, gap)
    assert sum(1 for gap in handler.gaps if gap >= 4.0) >= 5  # the cap was reached and held


async def test_deadline_ends_retries_with_retry_later_without_sleeping_past_it(autojump_clock: trio.abc.Clock) -> None:
    handler = _Recording(httpx.ConnectError("[Errno 111] Connection refused"))
    sender = _mock_sender(handler)
    start = trio.current_time()

    with trio.move_on_after(3.0) as scope:
        result = await sender.send(_body("up", [(1000, 1.0)]), samples=4)

    assert not scope.cancelled_caught  # it returned before the deadline
    assert trio.current_time() - start < 3.0
    assert result.outcome is SendOutcome.RETRY_LATER
    assert result.status is None
    assert result.attempts == len(handler.requests) >= 6
    assert "connect error" in (result.error or "")
    stats = sender.statistics()
    assert (stats.samples_sent, stats.samples_dropped_by_reason, stats.healthy) == (0, (), False)
    assert stats.retries == result.attempts - 1


async def test_deadline_during_a_request_propagates_cancelled(autojump_clock: trio.abc.Clock) -> None:
    handler = _Recording(_never_answers)
    sender = _mock_sender(handler)
    result: SendResult | None = None

    with trio.move_on_after(2.0) as scope:
        result = await sender.send(_body("up", [(1000, 1.0)]), samples=1)

    assert scope.cancelled_caught
    assert result is None
    assert len(handler.requests) == 1


async def test_attempt_timeout_counts_as_retryable(autojump_clock: trio.abc.Clock) -> None:
    handler = _Recording(_never_answers, httpx.Response(204))
    sender = _mock_sender(handler, attempt_timeout_s=1.0)

    result = await sender.send(_body("up", [(1000, 1.0)]), samples=1)

    assert (result.outcome, result.attempts) == (SendOutcome.DELIVERED, 2)
    assert handler.requests[1].headers["Retry-Attempt"] == "1"
    assert 1.0 <= handler.gaps[0] <= 1.0 + 1.2 * 0.03 + 1e-9


async def _never_answers() -> httpx.Response:
    await trio.sleep_forever()


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        pytest.param("2", 2.0, 2.0, id="seconds"),
        pytest.param("0.5", 0.5, 0.5, id="fractional-seconds"),
        pytest.param("soon", 0.024, 0.036, id="invalid-ignored"),
        pytest.param("-3", 0.024, 0.036, id="negative-ignored"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.024, 0.036, id="past-date-ignored"),
    ],
)
async def test_retry_after_replaces_the_backoff(
    autojump_clock: trio.abc.Clock, value: str, low: float, high: float
) -> None:
    handler = _Recording(httpx.Response(503, headers={"Retry-After": value}), httpx.Response(204))
    sender = _mock_sender(handler)

    result = await sender.send(_body("up", [(1000, 1.0)]), samples=1)

    assert (result.outcome, result.attempts) == (SendOutcome.DELIVERED, 2)
    assert low - 1e-9 <= handler.gaps[0] <= high + 1e-9


async def test_retry_after_http_date_is_honoured(autojump_clock: trio.abc.Clock) -> None:
    when = email.utils.formatdate(time.time() + 4, usegmt=True)
    handler = _Recording(httpx.Response(429, headers={"Retry-After": when}), httpx.Response(204))
    sender = _mock_sender(handler)

    result = await sender.send(_body("up", [(1000, 1.0)]), samples=1)

    assert result.outcome is SendOutcome.DELIVERED
    assert 2.5 <= handler.gaps[0] <= 4.0  # the date has one-second resolution


async def test_retry_after_beyond_the_deadline_returns_retry_later_at_once(autojump_clock: trio.abc.Clock) -> None:
    handler = _Recording(httpx.Response(429, headers={"Retry-After": "120"}))
    sender = _mock_sender(handler)
    start = trio.current_time()

    with trio.move_on_after(30):
        result = await sender.send(_body("up", [(1000, 1.0)]), samples=1)

    assert (result.outcome, result.status, result.attempts) == (SendOutcome.RETRY_LATER, 429, 1)
    assert trio.current_time() == start


async def test_statistics_is_a_frozen_snapshot(autojump_clock: trio.abc.Clock) -> None:
    handler = _Recording(httpx.Response(503), httpx.Response(204))
    sender = _mock_sender(handler)
    before = sender.statistics()

    await sender.send(_body("up", [(1000, 1.0)]), samples=5)

    after = sender.statistics()
    assert before == SenderStatistics(
        destination="http://receiver.test/api/v1/write",
        requests=0,
        retries=0,
        samples_sent=0,
        samples_dropped_by_reason=(),
        last_error=None,
        last_success_monotonic=None,
        healthy=True,
    )
    assert (after.requests, after.retries, after.samples_sent, after.healthy) == (2, 1, 5, True)
    assert after.last_error is not None and after.last_error.startswith("503")
    assert after.last_success_monotonic == trio.current_time()
    with pytest.raises(dataclasses.FrozenInstanceError):
        after.requests = 0  # type: ignore[misc]


# -- TLS options ------------------------------------------------------------------------------


async def test_tls_options_send_through_the_senders_own_client() -> None:
    seen: list[httpx.Request] = []

    async def note(request: httpx.Request) -> None:
        seen.append(request)

    async with (
        serve_scripted([Reply(status=204)]) as server,
        httpx.AsyncClient(trust_env=False, event_hooks={"request": [note]}) as shared,
    ):
        destination = _destination(f"{server.url}/api/v1/write", insecure_skip_verify=True)
        async with RemoteWriteSender(shared, destination, namespace=NAMESPACE, secrets=None) as sender:
            result = await sender.send(_body("up", [(1000, 1.0)]), samples=1)

    assert result.outcome is SendOutcome.DELIVERED
    assert len(server.requests) == 1
    assert seen == []  # the shared client, and its verification settings, were not used


class _RotatingSecrets:
    """A SecretReader whose values the test changes between sends."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    async def read(self, namespace: str, ref: SecretKeyRef) -> str:
        await trio.lowlevel.checkpoint()
        if namespace != NAMESPACE or ref.key not in self.values:
            raise SecretUnavailable(namespace, ref.name, ref.key)
        return self.values[ref.key]


def _self_signed(directory: Path, name: str) -> tuple[str, ssl.SSLContext]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"]
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        ["openssl", *request, *subject],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert.read_text(), context


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[str, ssl.SSLContext], str]:
    """A self-signed certificate for 127.0.0.1 (PEM and server context), and an unrelated one's PEM."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    directory = tmp_path_factory.mktemp("tls")
    return _self_signed(directory, "receiver"), _self_signed(directory, "other")[0]


@pytest.mark.slow
async def test_ca_secret_verifies_the_receiver_and_a_rotated_ca_applies_to_the_next_send(
    certificates: tuple[tuple[str, ssl.SSLContext], str],
) -> None:
    (receiver_pem, server_context), other_pem = certificates
    secrets = _RotatingSecrets({"ca.crt": other_pem})
    body = _body("up", [(1000, 1.0)])
    async with (
        serve_scripted([Reply(status=204)], ssl_context=server_context) as server,
        httpx.AsyncClient(trust_env=False) as shared,
    ):
        destination = _destination(f"{server.url}/api/v1/write", ca_secret=CA_REF)
        async with RemoteWriteSender(shared, destination, namespace=NAMESPACE, secrets=secrets) as sender:
            refused: SendResult | None = None
            with trio.move_on_after(0.5):
                refused = await sender.send(body, samples=1)
            secrets.values["ca.crt"] = receiver_pem
            accepted = await sender.send(body, samples=1)

    # Not delivered: RETRY_LATER, or None when the deadline struck during a handshake.
    assert refused is None or (refused.outcome, refused.status) == (SendOutcome.RETRY_LATER, None)
    assert accepted.outcome is SendOutcome.DELIVERED
    assert len(server.requests) == 1  # the unverified receiver never saw the batch


@pytest.mark.slow
async def test_insecure_skip_verify_accepts_a_certificate_the_shared_client_refuses(
    certificates: tuple[tuple[str, ssl.SSLContext], str], http: httpx.AsyncClient
) -> None:
    (_, server_context), _ = certificates
    async with serve_scripted([Reply(status=204)], ssl_context=server_context) as server:
        verifying = RemoteWriteSender(http, _destination(f"{server.url}/w"), namespace=NAMESPACE, secrets=None)
        refused: SendResult | None = None
        with trio.move_on_after(0.3):
            refused = await verifying.send(_body("up", [(1000, 1.0)]), samples=1)
        destination = _destination(f"{server.url}/w", insecure_skip_verify=True)
        async with RemoteWriteSender(http, destination, namespace=NAMESPACE, secrets=None) as skipping:
            accepted = await skipping.send(_body("up", [(1000, 1.0)]), samples=1)

    assert refused is None or refused.outcome is SendOutcome.RETRY_LATER  # None: cut off mid-handshake
    assert accepted.outcome is SendOutcome.DELIVERED
    assert len(server.requests) == 1


async def test_ca_secret_that_is_not_pem_raises_secret_unavailable() -> None:
    handler = _Recording(httpx.Response(204))
    destination = _destination("https://receiver.test/w", ca_secret=CA_REF)
    secrets = StaticSecretReader({NAMESPACE: {"rw-tls": {"ca.crt": "not a certificate"}}})
    sender = _mock_sender(handler, destination, secrets=secrets)

    with pytest.raises(SecretUnavailable, match="not a PEM CA bundle"):
        await sender.send(_body("up", [(1000, 1.0)]), samples=1)

    assert handler.requests == []
    await sender.aclose()


# -- real receivers ---------------------------------------------------------------------------


@pytest.mark.slow
async def test_batch_reaches_a_real_tenant_prometheus(
    tenant_prometheus_factory: TenantPrometheusFactory, http: httpx.AsyncClient
) -> None:
    prometheus = tenant_prometheus_factory()
    now_ms = _now_ms()
    sender = RemoteWriteSender(http, _destination(f"{prometheus.url}/api/v1/write"), namespace=NAMESPACE, secrets=None)
    body = _body("forwarded_total", [(now_ms - 2000, 1.0), (now_ms - 1000, 2.5)], namespace=NAMESPACE, pod="a")

    result = await sender.send(body, samples=2)

    assert result == SendResult(outcome=SendOutcome.DELIVERED, status=204, attempts=1)
    series = await _query(http, prometheus, 'forwarded_total{namespace="team-a"}[1m]', at_s=now_ms / 1000)
    assert [(s["metric"], s["values"]) for s in series] == [
        (
            {"__name__": "forwarded_total", "namespace": "team-a", "pod": "a"},
            [[(now_ms - 2000) / 1000, "1"], [(now_ms - 1000) / 1000, "2.5"]],
        )
    ]
    assert sender.statistics().samples_sent == 2


@pytest.mark.slow
async def test_out_of_order_resend_is_dropped_once_and_counted(
    tenant_prometheus_factory: TenantPrometheusFactory,
) -> None:
    prometheus = tenant_prometheus_factory()
    requests: list[httpx.Request] = []

    async def note(request: httpx.Request) -> None:
        requests.append(request)

    now_ms = _now_ms()
    async with httpx.AsyncClient(trust_env=False, timeout=10.0, event_hooks={"request": [note]}) as http:
        sender = RemoteWriteSender(
            http, _destination(f"{prometheus.url}/api/v1/write"), namespace=NAMESPACE, secrets=None
        )
        assert (await sender.send(_body("ooo", [(now_ms, 1.0)]), samples=1)).outcome is SendOutcome.DELIVERED
        requests.clear()

        result = await sender.send(_body("ooo", [(now_ms - 60_000, 9.0)]), samples=1)

        assert result.outcome is SendOutcome.DROPPED
        assert (result.status, result.attempts) == (400, 1)
        assert "out of order" in (result.error or "")
        assert len(requests) == 1  # what the receiver got: exactly one request, no retry
        stats = sender.statistics()
        assert (stats.samples_dropped_by_reason, stats.retries, stats.requests) == ((("http_400", 1),), 0, 2)
        # and the receiver kept what it had
        (series,) = await _query(http, prometheus, "ooo", at_s=now_ms / 1000)
        assert series["value"][1] == "1"


@pytest.mark.slow
async def test_victoriametrics_basic_auth_right_password_delivers_wrong_one_drops_401(
    victoriametrics_factory: VictoriaMetricsFactory, http: httpx.AsyncClient
) -> None:
    vm = victoriametrics_factory(auth=("user", "pass"))
    destination = _destination(f"{vm.url}/api/v1/write", basic_auth_username="user", basic_auth_password=PASSWORD_REF)
    right = StaticSecretReader({NAMESPACE: {"rw-credentials": {"password": "pass"}}})
    wrong = StaticSecretReader({NAMESPACE: {"rw-credentials": {"password": "nope"}}})
    now_ms = _now_ms()

    good = await RemoteWriteSender(http, destination, namespace=NAMESPACE, secrets=right).send(
        _body("vm_forwarded", [(now_ms, 42.0)], pod="a"), samples=1
    )
    bad_sender = RemoteWriteSender(http, destination, namespace=NAMESPACE, secrets=wrong)
    bad = await bad_sender.send(_body("vm_forwarded", [(now_ms, 43.0)], pod="b"), samples=1)

    assert good.outcome is SendOutcome.DELIVERED
    found = await trio.to_thread.run_sync(
        functools.partial(wait_for_result, vm, "vm_forwarded", at_s=now_ms / 1000, auth=("user", "pass"))
    )
    assert [(s["metric"]["pod"], s["value"][1]) for s in found] == [("a", "42")]
    assert (bad.outcome, bad.status, bad.attempts) == (SendOutcome.DROPPED, 401, 1)
    assert bad_sender.statistics().samples_dropped_by_reason == (("http_401", 1),)


@pytest.mark.slow
async def test_stopped_receiver_is_retried_until_the_deadline_then_delivered_after_restart(
    tenant_prometheus_factory: TenantPrometheusFactory, http: httpx.AsyncClient
) -> None:
    prometheus = tenant_prometheus_factory()
    sender = RemoteWriteSender(http, _destination(f"{prometheus.url}/api/v1/write"), namespace=NAMESPACE, secrets=None)
    await prometheus.stop_async()
    now_ms = _now_ms()
    body = _body("comeback", [(now_ms, 1.0)])
    start = trio.current_time()
    later: SendResult | None = None

    with trio.move_on_after(1.0):
        later = await sender.send(body, samples=1)

    # Usually RETRY_LATER before the deadline; on a loaded machine the deadline may strike
    # during a connect attempt instead (None: Cancelled reached the caller's scope).
    if later is not None:
        assert (later.outcome, later.status) == (SendOutcome.RETRY_LATER, None)
        assert later.attempts >= 4
        assert trio.current_time() - start < 1.0
    stats = sender.statistics()
    assert stats.requests >= 4
    assert stats.retries >= stats.requests - 1
    assert "connect error" in (stats.last_error or "")
    assert (stats.samples_sent, stats.samples_dropped_by_reason, stats.healthy) == (0, (), False)

    await prometheus.start_async()
    again = await sender.send(body, samples=1)
    assert again.outcome is SendOutcome.DELIVERED
    assert await _query(http, prometheus, "comeback", at_s=now_ms / 1000)


@pytest.mark.slow
async def test_503_twice_then_204_delivers_on_the_third_attempt_after_growing_waits(
    http: httpx.AsyncClient,
) -> None:
    async with serve_scripted([Reply(status=503), Reply(status=503), Reply(status=204)]) as server:
        sender = RemoteWriteSender(
            http, _destination(f"{server.url}/api/v1/write"), namespace=NAMESPACE, secrets=None, backoff_min_s=0.2
        )
        body = _body("up", [(1000, 1.0)])
        result = await sender.send(body, samples=1)

    assert result == SendResult(outcome=SendOutcome.DELIVERED, status=204, attempts=3)
    first, second, third = server.requests
    assert all(r.method == "POST" and r.target == "/api/v1/write" and r.body == body for r in server.requests)
    assert [r.headers.get("retry-attempt") for r in server.requests] == [None, "1", "2"]
    gap1, gap2 = second.at - first.at, third.at - second.at
    assert gap1 >= 0.16  # 0.2 s -20 %
    assert gap2 >= 0.32  # 0.4 s -20 %
    assert gap2 > gap1
    assert sender.statistics().retries == 2


@pytest.mark.slow
async def test_429_with_retry_after_1_waits_at_least_a_second(http: httpx.AsyncClient) -> None:
    async with serve_scripted([Reply(status=429, headers=(("Retry-After", "1"),)), Reply(status=204)]) as server:
        sender = RemoteWriteSender(http, _destination(f"{server.url}/api/v1/write"), namespace=NAMESPACE, secrets=None)
        result = await sender.send(_body("up", [(1000, 1.0)]), samples=1)

    assert (result.outcome, result.attempts) == (SendOutcome.DELIVERED, 2)
    first, second = server.requests
    assert second.at - first.at >= 1.0


@pytest.mark.slow
async def test_hanging_receiver_does_not_delay_another_sender(http: httpx.AsyncClient) -> None:
    async with (
        serve_scripted([Reply(hang=True)]) as stuck,
        serve_scripted([Reply(status=204)]) as healthy,
        trio.open_nursery() as nursery,
    ):
        slow = RemoteWriteSender(http, _destination(f"{stuck.url}/api/v1/write"), namespace=NAMESPACE, secrets=None)
        fast = RemoteWriteSender(http, _destination(f"{healthy.url}/api/v1/write"), namespace=NAMESPACE, secrets=None)
        slow_done = trio.Event()

        async def send_slow() -> None:
            await slow.send(_body("up", [(1000, 1.0)]), samples=1)
            slow_done.set()

        nursery.start_soon(send_slow)
        await stuck.wait_for_requests(1)  # the stuck request is in flight before the other starts
        start = trio.current_time()
        result = await fast.send(_body("up", [(1000, 1.0)]), samples=1)
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel(reason="test done")

    assert result.outcome is SendOutcome.DELIVERED
    assert elapsed < 0.5
    assert not slow_done.is_set()


async def test_a_resend_refused_with_400_is_not_counted_as_dropped_nor_as_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = _mock_sender(_Recording(httpx.Response(400, text="out of order sample")))
    result = await sender.send(b"x", samples=5, resend=True)
    assert (result.outcome, result.status) == (SendOutcome.DROPPED, 400)
    stats = sender.statistics()
    assert stats.samples_dropped_by_reason == () and stats.healthy
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    refused = await sender.send(b"x", samples=5)
    assert refused.outcome is SendOutcome.DROPPED
    assert sender.statistics().samples_dropped_by_reason == (("http_400", 5),)
