"""Serving the double over HTTP: under trio with hypercorn, or in a background thread.

- :func:`serve` runs an :class:`~.app.ApiDouble` on ``host:port`` (0 picks a free port)
  inside the caller's nursery and reports ``http://host:port`` through ``task_status`` once
  the socket listens; it runs until cancelled.
- :func:`start_in_thread` runs a double in its own thread with its own ``trio.run``, for
  sync pytest fixtures (pytest-trio's async fixtures are function-scoped), and returns a
  :class:`RunningDouble` once it listens. Everything the test calls on it crosses into the
  double's thread with ``trio.from_thread``; :meth:`RunningDouble.stop` shuts the server
  down gracefully (open watches end cleanly) and joins the thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import hypercorn.config
import hypercorn.trio
import trio

from .app import ApiDouble, ApiDoubleStatistics
from .faults import InjectedFailure
from .kubeconfig import write_kubeconfig
from .reviews import ReviewRules
from .state import keep_state_saved, load_state

__all__ = ["DoubleOptions", "RunningDouble", "serve", "start_in_thread"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def serve(
    app: ApiDouble,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app``; report the base URL once listening.

    Runs until cancelled, or until ``shutdown_trigger`` returns: then open watch streams are
    ended cleanly and requests in flight get up to 0.5 s to finish.
    """
    config = hypercorn.config.Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    # Hand hypercorn the standard logger so it adds no handler of its own; the CLI configures logging.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 0.5
    config.keep_alive_timeout = 30
    async with trio.open_nursery() as nursery:
        trigger = None
        if shutdown_trigger is not None:
            wait_for_shutdown = shutdown_trigger

            async def trigger() -> None:
                await wait_for_shutdown()
                app.faults.drop_watches()

        binds: list[str] = await nursery.start(
            partial(hypercorn.trio.serve, app, config, shutdown_trigger=trigger)  # type: ignore[arg-type]
        )
        url = next(bind for bind in binds if bind.startswith("http://"))
        app.server_address = url.removeprefix("http://")
        logger.info("apidouble listening", extra={"url": url})
        task_status.started(url)


@dataclass(frozen=True, slots=True, kw_only=True)
class DoubleOptions:
    """How :func:`start_in_thread` builds and serves its double."""

    host: str = "127.0.0.1"
    port: int = 0
    rules: ReviewRules | None = None
    bookmark_interval_s: float = 1.0
    history_limit: int = 10_000
    namespace_grace_s: float = 0.5
    state_file: str | None = None
    """Load objects from this JSON file at start and keep it saved (see :mod:`.state`)."""


class RunningDouble:
    """A double serving in a background thread; safe to use from any other thread."""

    kind = "apidouble"
    """Tells it apart from a real kube-apiserver in suites that run on both."""

    def __init__(self, *, url: str, app: ApiDouble, token: trio.lowlevel.TrioToken, stop_event: trio.Event,
                 thread: threading.Thread) -> None:
        self.url = url
        """Base URL, ``http://127.0.0.1:<port>``."""
        self.app = app
        """The app; touch it only through :meth:`call` (it belongs to the double's thread)."""
        self._token = token
        self._stop_event = stop_event
        self._thread = thread

    @property
    def port(self) -> int:
        """The port the double listens on."""
        return int(self.url.rsplit(":", 1)[1])

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run a sync function in the double's trio thread and return its result."""
        return trio.from_thread.run_sync(function, *args, trio_token=self._token)

    def write_kubeconfig(self, path: str | Path, *, namespace: str = "default", token: str = "apidouble") -> Path:
        """Write a kubeconfig for this double (usable by kubectl and the kubernetes client)."""
        return write_kubeconfig(path, self.url, namespace=namespace, token=token)

    def seed(self, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create or replace objects as given, status included (see :meth:`ApiDouble.seed`)."""
        items = list(objects)
        return self.call(self.app.seed, items)

    def set_review_rules(self, rules: ReviewRules) -> None:
        """Answer TokenReviews and SubjectAccessReviews from ``rules`` from now on."""
        self.call(self.app.set_review_rules, rules)

    def pause(self) -> None:
        """Block requests and watch events until :meth:`resume`."""
        self.call(self.app.faults.pause)

    def resume(self) -> None:
        """Release what :meth:`pause` blocked."""
        self.call(self.app.faults.resume)

    def set_delay(self, seconds: float) -> None:
        """Delay every request by ``seconds`` (0 turns it off)."""
        self.call(self.app.faults.set_delay, seconds)

    def fail_next(self, count: int, failure: InjectedFailure | None = None) -> None:
        """Answer the next ``count`` matching requests with an error Status."""
        self.call(self.app.faults.fail_next, count, failure)

    def drop_watches(self) -> int:
        """End every open watch stream; return how many."""
        return self.call(self.app.faults.drop_watches)

    def compact(self, up_to: int | None = None) -> int:
        """Compact as etcd does at ``up_to`` (default: now): older lists and watches answer 410."""
        return self.call(self.app.faults.compact, up_to)

    def resource_version(self) -> int:
        """Return the store's current resourceVersion."""
        return self.call(lambda: self.app.cluster.store.resource_version)

    def statistics(self) -> ApiDoubleStatistics:
        """Return a snapshot of store, watches and faults."""
        return self.call(self.app.statistics)

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop serving (open watches end) and join the thread; idempotent."""
        if self._thread.is_alive():
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop_event.set, trio_token=self._token)
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError(f"apidouble thread did not stop within {timeout_s} s")

    def __enter__(self) -> RunningDouble:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


async def _run_until_stopped(options: DoubleOptions, ready: queue.Queue[Any]) -> None:
    app = ApiDouble(rules=options.rules, bookmark_interval_s=options.bookmark_interval_s,
                    history_limit=options.history_limit, namespace_grace_s=options.namespace_grace_s)
    stop_event = trio.Event()
    async with trio.open_nursery() as nursery:
        if options.state_file is not None:
            load_state(app, options.state_file)
            await nursery.start(partial(keep_state_saved, app, options.state_file))
        async with trio.open_nursery() as server:
            url = await server.start(partial(serve, app, host=options.host, port=options.port,
                                             shutdown_trigger=stop_event.wait))
            ready.put((url, app, trio.lowlevel.current_trio_token(), stop_event))
        nursery.cancel_scope.cancel(reason="apidouble stopped")


def start_in_thread(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    rules: ReviewRules | None = None,
    bookmark_interval_s: float = 1.0,
    history_limit: int = 10_000,
    namespace_grace_s: float = 0.5,
    state_file: str | None = None,
    startup_timeout_s: float = 15.0,
) -> RunningDouble:
    """Start a double in a daemon thread and return it once it listens.

    The keyword arguments are those of :class:`DoubleOptions`.

    Raises:
        RuntimeError: the double failed to start, or did not start in time.
    """
    chosen = DoubleOptions(host=host, port=port, rules=rules, bookmark_interval_s=bookmark_interval_s,
                           history_limit=history_limit, namespace_grace_s=namespace_grace_s, state_file=state_file)
    ready: queue.Queue[Any] = queue.Queue()

    def main() -> None:
        try:
            trio.run(_run_until_stopped, chosen, ready)
        except BaseException as exc:
            logger.exception("apidouble thread failed")
            ready.put(exc)

    thread = threading.Thread(target=main, name="apidouble", daemon=True)
    thread.start()
    try:
        outcome = ready.get(timeout=startup_timeout_s)
    except queue.Empty as exc:
        raise RuntimeError(f"apidouble did not start within {startup_timeout_s} s") from exc
    if isinstance(outcome, BaseException):
        raise RuntimeError("apidouble failed to start") from outcome
    url, app, token, stop_event = outcome
    return RunningDouble(url=url, app=app, token=token, stop_event=stop_event, thread=thread)
