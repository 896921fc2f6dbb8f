"""Tiny loopback HTTP servers for tests that need a backend answering exactly as they say."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import trio

__all__ = ["Handler", "answering", "read_request", "serve_on_loopback"]

Handler = Callable[[trio.SocketStream], Awaitable[None]]


async def read_request(stream: trio.SocketStream) -> bytes | None:
    """One whole request, head and ``Content-Length`` body; None if the peer left first.

    The body must be read too: closing a socket with unread bytes in its receive buffer makes
    the kernel send a reset instead of a FIN, and the client loses the answer already sent
    (the proxy forwards queries as POST, whose form body often arrives in a segment of its own).
    """
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = _content_length(head)
    while len(body) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def answering(status: int, body: bytes, *, encoding: str | None = None) -> Handler:
    """A handler answering each connection's first request with ``status`` and a JSON ``body``, then closing."""
    extra = f"Content-Encoding: {encoding}\r\n" if encoding else ""
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()

    async def serve(stream: trio.SocketStream) -> None:
        if await read_request(stream) is None:
            return
        await stream.send_all(head + body)
        await stream.aclose()

    return serve


async def serve_on_loopback(nursery: trio.Nursery, handler: Handler) -> str:
    """Serve ``handler`` on a free 127.0.0.1 port until ``nursery`` ends; the base URL."""
    (listener,) = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return f"http://127.0.0.1:{listener.socket.getsockname()[1]}"
