"""A loopback TCP relay a test can cut, to take one client off the network.

A test points one client (an informer, a leader elector) at the relay instead of the
server (the double, or a real kube-apiserver: the relay passes TLS through untouched).
``cut()`` closes every relayed connection at once and refuses new ones until
``restore()``: to that client the server has vanished, while every other client keeps
talking to the same double. Refused connections are accepted and closed at once, so the
client sees a transport error, never a hang.
"""

from __future__ import annotations

import trio

__all__ = ["CuttableRelay"]


class CuttableRelay:
    """Relays ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>`` until cut."""

    def __init__(self, target_port: int, *, scheme: str = "http") -> None:
        self._target_port = target_port
        self._scheme = scheme
        self._cut = False
        self._scopes: set[trio.CancelScope] = set()
        self.port = 0
        self.refused = 0
        """Connections refused while cut."""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https`` in front of a TLS server: the relay passes bytes)."""
        return f"{self._scheme}://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Close every relayed connection now, and refuse new ones until ``restore``."""
        self._cut = True
        for scope in list(self._scopes):
            scope.cancel(reason="relay cut")

    def restore(self) -> None:
        """Relay new connections again."""
        self._cut = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on a free port (reported through ``port`` once started) until cancelled."""
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._relay, listeners)

    async def _relay(self, downstream: trio.SocketStream) -> None:
        if self._cut:
            self.refused += 1
            await downstream.aclose()
            return
        with trio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                upstream = await trio.open_tcp_stream("127.0.0.1", self._target_port)
                async with downstream, upstream, trio.open_nursery() as nursery:
                    nursery.start_soon(self._pipe, downstream, upstream, nursery.cancel_scope)
                    nursery.start_soon(self._pipe, upstream, downstream, nursery.cancel_scope)
            finally:
                self._scopes.discard(scope)

    @staticmethod
    async def _pipe(source: trio.SocketStream, sink: trio.SocketStream, both: trio.CancelScope) -> None:
        try:
            async for chunk in source:
                await sink.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        # One side closed: end the whole connection, as a peer that goes away would.
        both.cancel()
