"""Tests for cmd/main.py: the original's flags and defaults, and the ``check``, ``manifests``
and ``dev`` subcommands (``dev`` itself: tests/cmd/test_dev*.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtproxy.api import CRD_FILENAME
from mtproxy.cmd.main import build_parser, console_main, leader_election_namespace, main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    """The service path configures logging for the process; put the root logger back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# --- flags and defaults --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "default"),
    [
        pytest.param("config", "/etc/prometheus-proxy/config.yaml", id="config"),
        pytest.param("port", 8080, id="port"),
        pytest.param("log_level", "info", id="log-level"),
        pytest.param("kubeconfig", "", id="kubeconfig"),
        pytest.param("leader_elect", True, id="leader-elect"),
        pytest.param("leader_election_id", "prometheus-multi-tenant-proxy-remote-write", id="leader-election-id"),
        pytest.param("leader_election_namespace", "", id="leader-election-namespace"),
        pytest.param("command", None, id="no-subcommand-runs-the-service"),
    ],
)
def test_flag_defaults_are_the_originals(attribute: str, default: object) -> None:
    assert getattr(build_parser().parse_args([]), attribute) == default


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(["--leader-elect"], True, id="bare-flag"),
        pytest.param(["--leader-elect=false"], False, id="equals-false"),
        pytest.param(["--leader-elect=true"], True, id="equals-true"),
        pytest.param(["--leader-elect=0"], False, id="go-0"),
        pytest.param(["--leader-elect=1"], True, id="go-1"),
        pytest.param(["--leader-elect=F"], False, id="go-F"),
        pytest.param(["--leader-elect=t"], True, id="go-t"),
        pytest.param(["--leader-elect=FALSE"], False, id="go-FALSE"),
    ],
)
def test_leader_elect_reads_booleans_as_go_flag_does(argv: list[str], expected: bool) -> None:
    assert build_parser().parse_args(argv).leader_elect is expected


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--leader-elect=yes"], id="leader-elect-yes"),
        pytest.param(["--port", "http"], id="port-not-a-number"),
        pytest.param(["--log-level", "verbose"], id="log-level-unknown"),
        pytest.param(["check"], id="check-without-files"),
        pytest.param(["frobnicate"], id="unknown-subcommand"),
    ],
)
def test_invalid_flags_exit_with_status_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(argv)
    assert caught.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("level", ["trace", "debug", "info", "warn", "warning", "error", "fatal", "panic"])
def test_log_level_accepts_every_logrus_level(level: str) -> None:
    assert build_parser().parse_args(["--log-level", level]).log_level == level


def test_service_flags_are_read_as_given() -> None:
    args = build_parser().parse_args(
        [
            "--config",
            "/tmp/c.yaml",
            "--host",
            "127.0.0.1",
            "--port",
            "9999",
            "--kubeconfig",
            "/tmp/kube",
            "--leader-election-id",
            "my-lease",
            "--leader-election-namespace",
            "infra",
        ]
    )
    assert (args.config, args.host, args.port, args.kubeconfig) == ("/tmp/c.yaml", "127.0.0.1", 9999, "/tmp/kube")
    assert build_parser().parse_args([]).host == "0.0.0.0"  # in a pod, the Service reaches it on the pod IP
    assert (args.leader_election_id, args.leader_election_namespace) == ("my-lease", "infra")


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for command in ("check", "manifests", "dev"):
        assert command in out


# --- leader election namespace -------------------------------------------------------------


def test_leader_election_namespace_flag_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "from-env")
    assert leader_election_namespace("from-flag") == "from-flag"


def test_leader_election_namespace_falls_back_to_pod_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "from-env")
    assert leader_election_namespace("") == "from-env"


@pytest.mark.parametrize("pod_namespace", [pytest.param(None, id="unset"), pytest.param("", id="empty")])
def test_leader_election_namespace_falls_back_to_monitoring(
    monkeypatch: pytest.MonkeyPatch, pod_namespace: str | None
) -> None:
    if pod_namespace is None:
        monkeypatch.delenv("POD_NAMESPACE", raising=False)
    else:
        monkeypatch.setenv("POD_NAMESPACE", pod_namespace)
    assert leader_election_namespace("") == "monitoring"


# --- subcommands ---------------------------------------------------------------------------


def test_manifests_writes_the_same_bytes_as_the_committed_crd(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output_dir = tmp_path / "new" / "dir"
    assert main(["manifests", "--output-dir", str(output_dir)]) == 0
    written = output_dir / CRD_FILENAME
    committed = REPO / "config" / "crd" / "bases" / CRD_FILENAME
    assert written.read_bytes() == committed.read_bytes(), "the committed CRD is stale; run `make manifests`"
    assert capsys.readouterr().out == f"wrote {written}\n"


def test_manifests_default_output_dir_is_config_crd_bases() -> None:
    assert build_parser().parse_args(["manifests"]).output_dir == "config/crd/bases"


# `mtproxy dev` itself is tested in tests/cmd/test_dev*.py.


def test_check_subcommand_exits_0_for_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in sorted((REPO / "examples").rglob("*.yaml"))]
    assert main(["check", *files]) == 0
    assert capsys.readouterr().out.splitlines() == [f"OK {f}" for f in files]


def test_check_subcommand_exits_1_for_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("proxy: {enable_metrics: 'yes'}\n")
    assert main(["check", str(bad)]) == 1
    assert capsys.readouterr().out == f"{bad}: proxy.enable_metrics: must be a boolean (true or false)\n"


def test_console_main_exits_with_mains_status(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Service\n")
    monkeypatch.setattr("sys.argv", ["mtproxy", "check", str(bad)])
    with pytest.raises(SystemExit) as caught:
        console_main()
    assert caught.value.code == 1


# --- the service path's config errors ------------------------------------------------------


@pytest.mark.usefixtures("restore_root_logger")
def test_service_with_a_missing_config_file_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.yaml"
    assert main(["--config", str(missing)]) == 2
    assert f"--config: no such file: {missing}" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_root_logger")
def test_service_with_an_invalid_config_exits_2_listing_each_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("proxy: {enable_metrics: 'yes', bogus: 1}\n")
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"{config}: proxy.bogus: unknown field" in err
    assert f"{config}: proxy.enable_metrics: must be a boolean (true or false)" in err
