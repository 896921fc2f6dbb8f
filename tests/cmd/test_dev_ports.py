"""The dev port plan, and a port in use named in one line before anything starts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtproxy.cmd.devports import first_port_in_use, plan_ports
from mtproxy.cmd.main import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield int(holder.getsockname()[1])


def test_base_port_lays_the_demo_out_in_a_fixed_order() -> None:
    ports = plan_ports(8080, base_port=19090, tenants=("team-a", "team-b"))
    assert (ports.proxy, ports.infra_prometheus, ports.exporter, ports.pushgateway, ports.apiserver, ports.etcd) == (
        8080, 19090, 19091, 19092, 19093, 19094,
    )
    assert ports.tenant_prometheus == {"team-a": 19095, "team-b": 19096}


def test_base_port_zero_picks_distinct_free_ports() -> None:
    ports = plan_ports(0, base_port=0, tenants=("a", "b", "c"))
    numbers = [port for _, port in ports.roles()]
    assert len(set(numbers)) == len(numbers) == 9
    assert all(port > 0 for port in numbers)


@pytest.mark.parametrize(
    ("proxy", "base", "flag"),
    [
        pytest.param(70000, 19090, "--port", id="proxy-port-too-high"),
        pytest.param(8080, 65534, "--base-port", id="base-leaves-no-room"),
        pytest.param(8080, -1, "--base-port", id="negative-base"),
    ],
)
def test_bad_ports_name_the_flag(proxy: int, base: int, flag: str) -> None:
    with pytest.raises(ValueError, match=f"^{flag}: "):
        plan_ports(proxy, base_port=base, tenants=("a",))


def test_a_port_in_use_is_found_with_its_role(busy_port: int) -> None:
    ports = plan_ports(busy_port, base_port=0, tenants=("a",))
    found = first_port_in_use(ports)
    assert found is not None and (found.port, found.role) == (busy_port, "the proxy (--port)")
    assert first_port_in_use(ports, skip=("the proxy",)) is None


def test_dev_with_its_port_in_use_says_so_in_one_line(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["dev", "--port", str(busy_port), "--base-port", "0", "--objects", str(REPO / "examples" / "dev")])
    assert status == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"port {busy_port} on 127.0.0.1, wanted for the proxy (--port), is in use" in err


def test_dev_port_flag_after_the_subcommand_wins_over_the_global_one(
    busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--port", "1", "dev", "--port", str(busy_port), "--base-port", "0", "--objects", str(REPO / "examples/dev")])
    assert f"port {busy_port} " in capsys.readouterr().err


def test_dev_help_names_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["dev", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--port", "--base-port", "--kube {double,real}", "--no-console", "--objects", "--log-level"):
        assert flag in out
    assert ".dev/kubeconfig" in out


def test_dev_without_its_objects_directory_says_where_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dev", "--objects", str(tmp_path / "nowhere")]) == 1
    assert "run from the repository root" in capsys.readouterr().err


def test_dev_real_without_testbin_says_how_to_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MTPROXY_TESTBIN", str(tmp_path))
    assert main(["dev", "--kube=real", "--objects", str(REPO / "examples" / "dev")]) == 1
    assert "run: make testbin" in capsys.readouterr().err
