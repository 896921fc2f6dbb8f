"""The dev console renders a fixed snapshot to the stored text (tests/golden/console.txt).

The golden file is also the README's "expected screen". After a deliberate change of the
console, regenerate it with ``MTPROXY_UPDATE_GOLDEN=1 .venv/bin/python -P -m pytest
tests/cmd/test_console.py`` and review the diff.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from mtproxy.cmd.console import plain_record, render_console
from mtproxy.cmd.dev import DEMO_TENANTS, dev_commands
from mtproxy.cmd.devports import plan_ports
from mtproxy.cmd.devrequests import RequestRecord
from mtproxy.cmd.devsnapshot import (
    AccessView,
    BackendView,
    DestinationView,
    DevInfo,
    DevSnapshot,
    JobView,
    ServerView,
    TenantView,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "console.txt"
WIDTH = 120
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _snapshot(**changes: object) -> DevSnapshot:
    ports = plan_ports(8080, base_port=19090, tenants=DEMO_TENANTS)
    info = DevInfo(
        proxy_url="http://127.0.0.1:8080",
        kube_kind="double",
        kube_url="http://127.0.0.1:19093",
        kubeconfig=".dev/kubeconfig",
        objects_dir="examples/dev",
        commands=dev_commands(
            ports, kubeconfig=".dev/kubeconfig", objects_dir="examples/dev", mtproxy=".venv/bin/mtproxy",
            kubectl="kubectl",
        ),
        started_at=NOW - 95,
    )
    values: dict[str, object] = dict(
        info=info,
        taken_at=NOW,
        phase="running",
        leader="this process (mtproxy-dev-4242)",
        servers=(
            ServerView(name="demo exporter", url="http://127.0.0.1:19091", state="running"),
            ServerView(name="infrastructure prometheus", url="http://127.0.0.1:19090", state="running"),
            ServerView(name="prometheus of team-a", url="http://127.0.0.1:19095", state="running"),
            ServerView(name="prometheus of team-b", url="http://127.0.0.1:19096", state="running"),
            ServerView(name="pushgateway", url="http://127.0.0.1:19092", state="running"),
        ),
        backends=(
            BackendView(url="http://127.0.0.1:19090", healthy=True, latency_ms=1.8, error=None,
                        consecutive_failures=0),
        ),
        tenants=(
            TenantView(namespace="team-a", objects=1, rules=3, per_second=0.2, requests=12, rejected=0, errors=0),
            TenantView(namespace="team-b", objects=2, rules=2, per_second=0.05, requests=3, rejected=0, errors=0),
            TenantView(namespace="team-c", objects=0, rules=0, per_second=0.02, requests=1, rejected=1, errors=0),
        ),
        objects=(
            AccessView(key="team-a/team-a-app", generation=1, valid="True", forwarding="True", ready="True",
                       message=""),
            AccessView(key="team-b/team-b-health", generation=1, valid="True", forwarding="True", ready="True",
                       message=""),
            AccessView(key="team-b/team-b-requests", generation=1, valid="True", forwarding="True", ready="True",
                       message=""),
        ),
        jobs=(
            JobView(
                key="team-a/team-a-app", running=True, last_collection_ms=int((NOW - 4) * 1000), series=11,
                samples_per_s=11.0, samples_forwarded=880,
                destinations=(DestinationView(name="prometheus.team-a:9090", healthy=True, series_last_cycle=11,
                                              samples_forwarded=880, last_error=None),),
                last_error=None,
            ),
            JobView(
                key="team-b/team-b-health", running=True, last_collection_ms=int((NOW - 4) * 1000), series=1,
                samples_per_s=0.1, samples_forwarded=8,
                destinations=(DestinationView(name="pushgateway.team-b:9091", healthy=True, series_last_cycle=1,
                                              samples_forwarded=8, last_error=None),),
                last_error=None,
            ),
            JobView(
                key="team-b/team-b-requests", running=True, last_collection_ms=int((NOW - 4) * 1000), series=2,
                samples_per_s=2.0, samples_forwarded=160,
                destinations=(DestinationView(name="prometheus.team-b:9090", healthy=True, series_last_cycle=2,
                                              samples_forwarded=160, last_error=None),),
                last_error=None,
            ),
        ),
        requests=(
            RequestRecord(at=NOW - 2, tenant="team-c", method="GET", endpoint="/api/v1/query", status=403,
                          duration_ms=0.9),
            RequestRecord(at=NOW - 5, tenant="team-b", method="GET", endpoint="/api/v1/series", status=200,
                          duration_ms=4.1),
            RequestRecord(at=NOW - 9, tenant="team-a", method="GET", endpoint="/api/v1/query", status=200,
                          duration_ms=6.3),
        ),
    )
    values.update(changes)
    return DevSnapshot(**values)  # type: ignore[arg-type]


def _text(snapshot: DevSnapshot) -> str:
    console = Console(record=True, width=WIDTH, file=io.StringIO(), color_system=None, force_terminal=False)
    console.print(render_console(snapshot))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def test_console_renders_the_fixed_snapshot_as_the_golden_text() -> None:
    text = _text(_snapshot())
    if os.environ.get("MTPROXY_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), f"console render changed; if deliberate: MTPROXY_UPDATE_GOLDEN=1 ({GOLDEN})"


def test_render_is_pure_same_snapshot_same_text() -> None:
    assert _text(_snapshot()) == _text(_snapshot())


def test_printed_commands_fit_the_console_without_wrapping() -> None:
    for command in _snapshot().info.commands:
        assert len(command) <= WIDTH, command
        assert command in _text(_snapshot())


def test_a_failing_destination_and_a_not_ready_object_show_why() -> None:
    failing = _snapshot(
        objects=(AccessView(key="team-a/team-a-app", generation=2, valid="True", forwarding="False", ready="False",
                            message="TargetUnreachable no answer from prometheus.team-a:9090"),),
        jobs=(JobView(key="team-a/team-a-app", running=True, last_collection_ms=None, series=0, samples_per_s=0.0,
                      samples_forwarded=0,
                      destinations=(DestinationView(name="prometheus.team-a:9090", healthy=False,
                                                    series_last_cycle=0, samples_forwarded=0,
                                                    last_error="connection refused"),),
                      last_error="connection refused"),),
        notes=("prometheus not found: install with: sudo apt-get install -y prometheus",),
    )
    text = _text(failing)
    assert "TargetUnreachable no answer from prometheus.team-a:9090" in text
    assert "failing" in text and "connection refused" in text
    assert "never" in text
    assert "! prometheus not found" in text


def test_plain_record_carries_the_same_content_as_json() -> None:
    record = plain_record(_snapshot())
    assert json.loads(json.dumps(record)) == record
    assert [o["ready"] for o in record["objects"]] == ["True", "True", "True"]
    assert record["jobs"][0]["destinations"] == {"prometheus.team-a:9090": "ok"}
    assert record["tenants"][2] == {"namespace": "team-c", "rules": 0, "requests": 1, "rejected": 1,
                                    "per_second": 0.02}


@pytest.mark.parametrize("command", _snapshot().info.commands, ids=lambda c: c.split()[0])
def test_every_curl_command_disables_globbing(command: str) -> None:
    if command.startswith("curl"):
        assert command.startswith("curl -g ")


def test_printed_commands_leave_room_for_other_ports_and_paths() -> None:
    for command in _snapshot().info.commands:
        assert len(command) <= 117, command  # with a 5-digit --port still within 120 columns


def test_the_readme_shows_the_golden_screen() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "```text\n" + GOLDEN.read_text() + "```" in readme, "README's expected screen differs from the golden file"
