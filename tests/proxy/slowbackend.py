"""A scripted loopback backend whose queries take as long as they say, for fairness tests and benches.

A query whose text contains ``slow_`` is answered after ``slow_s``; any other at once.
Every answer is an empty vector, and every request is counted, so a test can wait until
the backend holds a given number of slow queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from .rawhttp import serve_on_loopback

__all__ = ["SlowBackend", "start_slow_backend"]

EMPTY_VECTOR = b'{"status":"success","data":{"resultType":"vector","result":[]}}'


@dataclass
class SlowBackend:
    """Answers ``slow_`` queries after ``slow_s`` and others at once; see the module doc."""

    slow_s: float
    url: str = ""
    slow_running: int = 0
    requests: int = 0
    changed: trio.Event = field(default_factory=trio.Event)

    async def __call__(self, stream: trio.SocketStream) -> None:
        while (request := await _read_request(stream)) is not None:
            self.requests += 1
            slow = b"slow_" in request
            if slow:
                self._count(+1)
                try:
                    await trio.sleep(self.slow_s)
                finally:
                    self._count(-1)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(EMPTY_VECTOR)}\r\n\r\n"
            await stream.send_all(head.encode() + EMPTY_VECTOR)

    def _count(self, delta: int) -> None:
        self.slow_running += delta
        self.changed.set()
        self.changed = trio.Event()

    async def wait_slow_running(self, count: int) -> None:
        """Until at least ``count`` slow queries are being held."""
        while self.slow_running < count:
            await self.changed.wait()


async def _read_request(stream: trio.SocketStream) -> bytes | None:
    """One request, head and ``Content-Length`` body, read into one buffer (bodies of megabytes
    come through here, in the test's own event loop); None if the peer left first."""
    received = bytearray()
    while (end := received.find(b"\r\n\r\n")) < 0:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        received += chunk
    length = 0
    for line in bytes(received[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(received) < end + 4 + length:
        chunk = await stream.receive_some(1 << 20)
        if not chunk:
            return None
        received += chunk
    return bytes(received)


async def start_slow_backend(nursery: trio.Nursery, *, slow_s: float) -> SlowBackend:
    """A :class:`SlowBackend` on a free loopback port until ``nursery`` ends."""
    backend = SlowBackend(slow_s=slow_s)
    backend.url = await serve_on_loopback(nursery, backend)
    return backend
