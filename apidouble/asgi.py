"""The HTTP edge: reading an ASGI request, sending a JSON response or a chunked stream.

A request body is read whole (API objects are small). A stream is sent as a 200 without
Content-Length, so HTTP/1.1 frames it with ``Transfer-Encoding: chunked``, one chunk per call of the producer's
``send``; the producer is raced against the client's ``http.disconnect`` in one nursery,
so a client that goes away ends its stream at once, as in starlette's StreamingResponse.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import trio

__all__ = ["Receive", "Request", "Response", "Scope", "Send", "StreamResponse", "read_request", "send_response"]

Scope = Mapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One HTTP request, read whole."""

    method: str
    path: str
    query: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    """Lower-cased names; repeated headers joined with ``,``."""
    body: bytes = b""

    def param(self, name: str) -> str | None:
        """Return the first value of a query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def flag(self, name: str) -> bool:
        """Return whether a boolean query parameter is ``true`` or ``1``."""
        return (self.param(name) or "").lower() in ("true", "1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A complete response."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, status: int, payload: Any, *, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        """Return a JSON response."""
        return cls(status=status, body=json.dumps(payload, separators=(",", ":")).encode(), headers=headers)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamResponse:
    """A 200 chunked response whose chunks a producer sends until it returns."""

    produce: Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[None]]
    content_type: str = "application/json"


async def read_request(scope: Scope, receive: Receive) -> Request:
    """Read an HTTP request's head and whole body."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return Request(
        method=str(scope["method"]).upper(),
        path=str(scope["path"]),
        query={key: tuple(values) for key, values in query.items()},
        headers=headers,
        body=b"".join(chunks),
    )


def _head(status: int, content_type: str, extra: tuple[tuple[str, str], ...], length: int | None) -> Message:
    headers = [(b"content-type", content_type.encode()), (b"cache-control", b"no-cache, private")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    headers.extend((name.encode(), value.encode()) for name, value in extra)
    return {"type": "http.response.start", "status": status, "headers": headers}


async def send_response(send: Send, receive: Receive, response: Response | StreamResponse) -> None:
    """Send a complete response, or stream one until the producer returns or the client leaves."""
    if isinstance(response, Response):
        await send(_head(response.status, response.content_type, response.headers, len(response.body)))
        await send({"type": "http.response.body", "body": response.body, "more_body": False})
        return
    await send(_head(200, response.content_type, (), None))

    async def send_chunk(chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async with trio.open_nursery() as nursery:

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch_disconnect)
        await response.produce(send_chunk)
        nursery.cancel_scope.cancel()
    await send({"type": "http.response.body", "body": b"", "more_body": False})
