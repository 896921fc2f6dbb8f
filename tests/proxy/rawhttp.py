"""Tiny loopback HTTP servers for tests that need a backend answering exactly as they say."""

from __future__ import annotations

import trio

__all__ = ["read_request_head"]


async def read_request_head(stream: trio.SocketStream) -> bytes | None:
    """The bytes up to and including the blank line ending the request head; None if the peer left first."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        received += chunk
    return received
