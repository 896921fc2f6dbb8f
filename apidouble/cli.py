"""The ``mtproxy local-apiserver`` entry point: a double on a fixed port for ``make dev``.

:func:`run_local_apiserver` serves a double on ``127.0.0.1:<port>`` (plain HTTP, any token
accepted), writes a kubeconfig for it once it listens, optionally keeps its objects in a
JSON state file across restarts, and runs until SIGINT or SIGTERM. It does not configure
logging; the CLI does that once.
"""

from __future__ import annotations

import logging
import signal
from functools import partial
from pathlib import Path

import trio
import yaml

from .app import ApiDouble
from .kubeconfig import write_kubeconfig
from .reviews import ReviewRules
from .server import serve
from .state import keep_state_saved, load_state

__all__ = ["run_local_apiserver"]

logger = logging.getLogger(__name__)


async def _serve_until_signalled(app: ApiDouble, *, port: int, kubeconfig_path: str, state_file: str | None) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def first_signal() -> None:
            async for received in signals:
                logger.info("local apiserver stopping", extra={"signal": signal.Signals(received).name})
                return

        async with trio.open_nursery() as nursery:
            if state_file is not None:
                load_state(app, state_file)
                await nursery.start(partial(keep_state_saved, app, state_file))
            async with trio.open_nursery() as server:
                url = await server.start(partial(serve, app, host="127.0.0.1", port=port,
                                                 shutdown_trigger=first_signal))
                write_kubeconfig(kubeconfig_path, url)
                logger.info("local apiserver ready", extra={"url": url, "kubeconfig": kubeconfig_path,
                                                            "state_file": state_file})
            nursery.cancel_scope.cancel(reason="signal received")


def run_local_apiserver(
    port: int,
    kubeconfig_path: str,
    state_file: str | None,
    *,
    rules_file: str | None = None,
) -> None:
    """Serve a Kubernetes API double on ``127.0.0.1:port`` until SIGINT/SIGTERM.

    Args:
        port: the TCP port (0 picks a free one; the kubeconfig names the real one).
        kubeconfig_path: where to write a kubeconfig that kubectl and the kubernetes client accept.
        state_file: a JSON file to load objects from and keep saved, or None for none.
        rules_file: a YAML/JSON file of TokenReview/SubjectAccessReview rules
            (see :meth:`~.reviews.ReviewRules.from_mapping`), or None for none.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {port}")
    rules = None
    if rules_file is not None:
        rules = ReviewRules.from_mapping(yaml.safe_load(Path(rules_file).read_text()) or {})
    app = ApiDouble(rules=rules)
    trio.run(partial(_serve_until_signalled, app, port=port, kubeconfig_path=kubeconfig_path, state_file=state_file))
