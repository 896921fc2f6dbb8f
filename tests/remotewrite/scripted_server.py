"""A loopback HTTP server that answers with a script of replies and records every request.

The real receivers (Prometheus, VictoriaMetrics, Pushgateway) cannot be made to answer 503
twice, send ``Retry-After`` or hang on demand; this server can. It runs in the test's own
nursery (raw trio sockets, parsed by h11), so it stops when the test's ``async with`` ends.
Given an ``ssl.SSLContext`` it speaks HTTPS; a client that refuses its certificate only
breaks that connection.

Guarantees: replies are used in order and the last one repeats; every request is recorded
(method, target, lower-cased headers, body, ``trio.current_time()`` of its arrival) before
it is answered, so a request that hangs is recorded too.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import h11
import trio

__all__ = ["RecordedRequest", "Reply", "ScriptedServer", "serve_scripted"]

_LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """One scripted answer."""

    status: int = 204
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    hang: bool = False
    """Never answer (until the server is stopped)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedRequest:
    """What the server received."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    at: float = 0.0


class ScriptedServer:
    """The running server: its URL and what it received."""

    def __init__(self, replies: Sequence[Reply], *, ssl_context: ssl.SSLContext | None = None) -> None:
        if not replies:
            raise ValueError("replies must not be empty")
        self._replies = tuple(replies)
        self._ssl_context = ssl_context
        self.requests: list[RecordedRequest] = []
        self.port = 0
        self._arrival = trio.Event()

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:<port>``."""
        scheme = "http" if self._ssl_context is None else "https"
        return f"{scheme}://{_LOOPBACK}:{self.port}"

    async def wait_for_requests(self, count: int) -> None:
        """Return once ``count`` requests have arrived."""
        while len(self.requests) < count:
            await self._arrival.wait()

    def _next_reply(self) -> Reply:
        index = min(len(self.requests) - 1, len(self._replies) - 1)
        return self._replies[index]

    async def serve_connection(self, socket_stream: trio.SocketStream) -> None:
        stream: trio.abc.Stream = socket_stream
        if self._ssl_context is not None:
            stream = trio.SSLStream(socket_stream, self._ssl_context, server_side=True)
        # A client that went away or refused our certificate ends only its own connection.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            await self._answer(stream)

    async def _answer(self, stream: trio.abc.Stream) -> None:
        connection = h11.Connection(h11.SERVER)
        async with stream:
            while True:
                request, body = await _read_request(connection, stream)
                if request is None:
                    return
                self.requests.append(
                    RecordedRequest(
                        method=request.method.decode(),
                        target=request.target.decode(),
                        headers={k.decode().lower(): v.decode() for k, v in request.headers},
                        body=body,
                        at=trio.current_time(),
                    )
                )
                self._arrival.set()
                self._arrival = trio.Event()
                reply = self._next_reply()
                if reply.hang:
                    await trio.sleep_forever()
                headers = [*reply.headers, ("Content-Length", str(len(reply.body)))]
                data = connection.send(h11.Response(status_code=reply.status, headers=headers))
                data += connection.send(h11.Data(data=reply.body)) if reply.body else b""
                data += connection.send(h11.EndOfMessage())
                await stream.send_all(data)
                if connection.our_state is h11.MUST_CLOSE:
                    return
                connection.start_next_cycle()


async def _read_request(connection: h11.Connection, stream: trio.abc.Stream) -> tuple[h11.Request | None, bytes]:
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data:
                return None, b""
            connection.receive_data(bytes(data))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return request, bytes(body)
        elif isinstance(event, h11.ConnectionClosed):
            return None, b""


@asynccontextmanager
async def serve_scripted(
    replies: Sequence[Reply], *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[ScriptedServer]:
    """Serve ``replies`` on a free loopback port for the body of the ``async with``."""
    server = ScriptedServer(replies, ssl_context=ssl_context)
    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, server.serve_connection, 0, host=_LOOPBACK)
        listeners = await nursery.start(serve)
        server.port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel(reason="test done")
