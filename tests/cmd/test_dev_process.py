"""A dev child server: started when it answers, named with its log when it does not, always stopped."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio
from realservers.ports import free_port

from mtproxy.cmd.devprocess import ChildFailed, ChildServer, ChildState

SERVER = """
import http.server, sys
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _server(tmp_path: Path, argv: list[str], port: int, *, ready_timeout_s: float = 30.0) -> ChildServer:
    return ChildServer("demo", argv, url=f"http://127.0.0.1:{port}", ready_path="/-/ready",
                       log_path=tmp_path / "demo.log", ready_timeout_s=ready_timeout_s)


async def test_started_once_answering_and_stopped_on_cancel(tmp_path: Path) -> None:
    port = free_port()
    child = _server(tmp_path, [sys.executable, "-c", SERVER, str(port)], port)
    async with trio.open_nursery() as nursery:
        await nursery.start(child.run)
        stats = child.statistics()
        assert stats.state is ChildState.RUNNING and stats.pid is not None
        assert os.getsid(stats.pid) == stats.pid, "a session of its own: the terminal's Ctrl-C is dev's alone"
        nursery.cancel_scope.cancel()
    assert child.statistics().state is ChildState.STOPPED
    assert not _alive(stats.pid)


async def test_a_process_that_exits_before_ready_fails_the_start_with_its_log(tmp_path: Path) -> None:
    port = free_port()
    child = _server(tmp_path, [sys.executable, "-c", "import sys; print('bad flag --x'); sys.exit(3)"], port)
    with pytest.raises(ChildFailed, match=r"demo exited with code 3; its log ends:\nbad flag --x"):
        await child.run()
    assert child.statistics().state is ChildState.EXITED


async def test_a_process_never_ready_is_stopped_and_named(tmp_path: Path) -> None:
    port = free_port()
    child = _server(tmp_path, [sys.executable, "-c", "import time; time.sleep(60)"], port, ready_timeout_s=0.5)
    with pytest.raises(ChildFailed, match=r"did not answer http://127\.0\.0\.1:\d+/-/ready within 0\.5 s"):
        await child.run()
    pid = child.statistics().pid
    assert pid is not None and not _alive(pid)


async def test_a_server_exiting_later_is_recorded_and_the_rest_runs(tmp_path: Path) -> None:
    port = free_port()
    script = SERVER.replace("serve_forever()", "handle_request(); import time; time.sleep(0.3)")
    child = _server(tmp_path, [sys.executable, "-c", script, str(port)], port)
    async with trio.open_nursery() as nursery:
        await nursery.start(child.run)
        with trio.fail_after(10):
            while child.statistics().state is not ChildState.EXITED:
                await trio.sleep(0.05)
        assert child.statistics().exit_code == 0
        nursery.cancel_scope.cancel()
    assert child.statistics().state is ChildState.EXITED
