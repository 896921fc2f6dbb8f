"""Free loopback ports for the servers the tests start.

The kernel picks a free port when we bind ``127.0.0.1:0``; we read it and close the socket
so the server can bind it. Between our close and the server's bind another process may take
the port. That race is rare and is not fixed here: :class:`realservers.processes.ServerProcess`
notices "address already in use" in the server's log and starts again on a fresh port.
"""

from __future__ import annotations

import socket

__all__ = ["LOOPBACK", "free_port"]

LOOPBACK = "127.0.0.1"
"""Every test server listens here and nowhere else."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port
