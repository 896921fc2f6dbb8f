"""Serving the proxy's ASGI app with hypercorn under trio, as a manager runnable.

HTTP/1.1 with keep-alive (and cleartext HTTP/2 when a client asks for it); request
header size bounded by hypercorn's ``h11_max_incomplete_size``; on cancellation the
server stops accepting and gives in-flight requests ``graceful_timeout_s`` to finish.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

__all__ = ["HTTPServer", "answer_lifespan"]

logger = logging.getLogger(__name__)


async def answer_lifespan(
    receive: Callable[[], Awaitable[dict[str, Any]]], send: Callable[[dict[str, Any]], Awaitable[None]]
) -> None:
    """Complete the ASGI lifespan protocol for an app with nothing to set up or tear down."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class HTTPServer:
    """A runnable serving one ASGI app on host:port."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "0.0.0.0",
        port: int = 8080,
        graceful_timeout_s: float = 10.0,
        max_header_bytes: int = 64 * 1024,
    ) -> None:
        self._app = app
        self._config = HypercornConfig()
        self._config.bind = [f"{host}:{port}"]
        self._config.graceful_timeout = graceful_timeout_s
        self._config.h11_max_incomplete_size = max_header_bytes
        self._config.keep_alive_timeout = 75
        self._config.accesslog = None
        self._config.errorlog = logging.getLogger("hypercorn.error")
        self._shutdown = trio.Event()
        self.bound: list[str] = []

    def stop(self) -> None:
        """Begin a graceful stop."""
        self._shutdown.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled or ``stop``; reports started once listening.

        Cancellation starts a graceful stop: the serving task is shielded from it and given
        ``graceful_timeout_s`` (plus a second) to finish in-flight requests.
        """
        serve_scope = trio.CancelScope(shield=True)

        async def serve_task(*, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
            with serve_scope:
                await serve(self._app, self._config, shutdown_trigger=self._shutdown.wait, task_status=task_status)

        async with trio.open_nursery() as nursery:
            self.bound = await nursery.start(serve_task)
            logger.info("proxy listening", extra={"addresses": self.bound})
            task_status.started()
            try:
                await self._shutdown.wait()
            finally:
                self._shutdown.set()
                serve_scope.deadline = trio.current_time() + self._config.graceful_timeout + 1.0
