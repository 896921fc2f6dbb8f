"""The wheel of ``make dist``, installed as the image installs it, runs on its own.

``make dist`` builds the wheel; it is installed into a fresh virtualenv made without pip
(so neither pip nor setuptools is there, as in the image, which removes them), together
with its runtime dependencies only, from a directory of binary wheels (``pip download
--only-binary=:all:``, as the Dockerfile's build stage resolves them), cached per machine
under ``${XDG_CACHE_HOME:-~/.cache}/mtproxy/wheelhouse/`` so that a second run downloads
nothing (without PyPI and without that cache, the tests are skipped, except in CI, where they
fail). From that virtualenv, outside the source tree, ``mtproxy --version``,
``mtproxy check`` and the service itself run; site-packages holds ``mtproxy/`` and nothing
named after a top-level folder of the repository; no test extra is installed.
"""

from __future__ import annotations

import email.parser
import hashlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from realservers.ports import free_port
from realservers.testbin import in_ci

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
PACKAGE_DIRS = ("api", "controller", "reconcilers", "proxy", "remotewrite", "cmd", "apidouble")
TEST_EXTRAS = ("pytest", "pytest-trio", "hypothesis", "mypy", "ruff", "import-linter")
"""jsonschema is a runtime dependency (the API double validates CRD schemas with it), not a test extra."""
BUILD_TOOLS = ("pip", "setuptools", "wheel", "build")
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _run(*argv: str | Path, cwd: Path | None = None, timeout_s: float = 300.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout_s, check=False,
                          cwd=cwd, env=env)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make dist`` into a directory of this module's own."""
    dist = tmp_path_factory.mktemp("dist")
    completed = _run("make", "-s", "--no-print-directory", "-C", REPO, "dist", f"DIST_DIR={dist}",
                     f"PYTHON={sys.executable}")
    assert completed.returncode == 0, f"make dist failed:\n{completed.stdout}{completed.stderr}"
    (built,) = dist.glob("*.whl")
    assert built.name == f"prometheus_multi_tenant_proxy-{PROJECT['version']}-py3-none-any.whl"
    return built


def _runtime_requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
    return sorted(r for r in metadata.get_all("Requires-Dist") or () if "extra ==" not in r)


@pytest.fixture(scope="module")
def wheelhouse(wheel: Path) -> Path:
    """Binary wheels of the runtime dependencies, downloaded once per machine and set of requirements."""
    requirements = _runtime_requirements(wheel)
    assert {str(Requirement(r)) for r in requirements} == {str(Requirement(r)) for r in PROJECT["dependencies"]}, (
        "the wheel's requirements are pyproject's")
    key = hashlib.sha256("\n".join([sys.version.split()[0], platform.machine(), *requirements]).encode())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mtproxy" / "wheelhouse"
    house = base / key.hexdigest()[:16]
    if (house / ".complete").exists():
        return house
    base.mkdir(parents=True, exist_ok=True)
    partial = base / f".partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    completed = _run(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", partial,
                     *requirements, timeout_s=600)
    if completed.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        reason = f"pip download of the runtime dependencies failed (no PyPI?):\n{completed.stderr[-3000:]}"
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    (partial / ".complete").write_text("\n".join(requirements) + "\n")
    try:
        partial.rename(house)
    except OSError:  # another run finished first
        shutil.rmtree(partial, ignore_errors=True)
    return house


@pytest.fixture(scope="module")
def installed(wheel: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv without pip, holding the wheel and its runtime dependencies; its directory."""
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    started = time.monotonic()
    completed = _run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert completed.returncode == 0, completed.stderr
    completed = _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet",
                     "--no-index", "--find-links", wheelhouse, wheel)
    assert completed.returncode == 0, f"installing the wheel failed:\n{completed.stderr[-3000:]}"
    print(f"installed in {time.monotonic() - started:.1f} s")
    return venv


def _site_packages(venv: Path) -> Path:
    (found,) = (venv / "lib").glob("python3*/site-packages")
    return found


def _distributions(venv: Path) -> set[str]:
    return {_normalise(p.name.split("-")[0]) for p in _site_packages(venv).glob("*.dist-info")}


def test_the_wheel_installs_mtproxy_and_nothing_named_after_a_repository_folder(installed: Path) -> None:
    site = _site_packages(installed)
    present = {p.name for p in site.iterdir()}
    assert "mtproxy" in present
    assert not present & set(PACKAGE_DIRS), f"top-level packages besides mtproxy: {present & set(PACKAGE_DIRS)}"
    (info,) = site.glob("prometheus_multi_tenant_proxy-*.dist-info")
    assert (info / "top_level.txt").read_text().split() == ["mtproxy"]
    tops = {line.split(",")[0].split("/")[0] for line in (info / "RECORD").read_text().splitlines() if line}
    assert tops == {"mtproxy", info.name, ".."}, tops  # '..' is bin/ (the console scripts)
    assert {p.name for p in (site / "mtproxy").iterdir() if p.is_dir() and p.name != "__pycache__"} == set(
        PACKAGE_DIRS)


def test_only_runtime_dependencies_are_installed(installed: Path, wheel: Path) -> None:
    distributions = _distributions(installed)
    for requirement in _runtime_requirements(wheel):
        name = _normalise(Requirement(requirement).name)
        assert name in distributions, f"{requirement} is not installed"
    assert not distributions & {_normalise(n) for n in TEST_EXTRAS}, "a test extra is installed"
    assert not distributions & set(BUILD_TOOLS), "a build tool is installed"


def test_the_installed_command_prints_its_version(installed: Path, tmp_path: Path) -> None:
    completed = _run(installed / "bin" / "mtproxy", "--version", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"mtproxy {PROJECT['version']}"
    where = _run(installed / "bin" / "python", "-c", "import mtproxy.cmd.main as m; print(m.__file__)", cwd=tmp_path)
    assert where.stdout.strip().startswith(str(_site_packages(installed))), where.stdout + where.stderr


def test_the_installed_command_checks_manifests_and_configs(installed: Path, tmp_path: Path) -> None:
    mtproxy = installed / "bin" / "mtproxy"
    examples = sorted((REPO / "examples").rglob("*.yaml"))
    completed = _run(mtproxy, "check", *examples, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.count("OK ") == len(examples)

    shipped = REPO / "config" / "manager" / "config.yaml"
    sample = REPO / "config" / "samples" / "observability_v1alpha1_metricaccess.yaml"
    completed = _run(mtproxy, "check", "--config", shipped, sample, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    unisolated = tmp_path / "unisolated.yaml"
    unisolated.write_text(yaml.safe_dump({
        "apiVersion": "observability.ethos.io/v1alpha1", "kind": "MetricAccess",
        "metadata": {"name": "open", "namespace": "team-a"},
        "spec": {"source": "team-a", "metricIsolation": False, "metrics": ["up"]},
    }))
    denied = _run(mtproxy, "check", "--config", shipped, unisolated, cwd=tmp_path)
    assert denied.returncode == 1 and "PolicyDenied" in denied.stdout, denied.stdout + denied.stderr


def test_the_installed_service_starts_and_stops_on_sigterm(installed: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "discovery": {"static": {"targets": ["http://127.0.0.1:9"]}},
        "tenants": {"source": "files", "files": {"directory": str(REPO / "examples" / "dev" / "tenants")}},
        "auth": {"type": "none"},
    }))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with (tmp_path / "server.log").open("w") as log:
        process = subprocess.Popen([str(installed / "bin" / "mtproxy"), "--config", str(config), "--host",
                                    "127.0.0.1", "--port", str(port)], cwd=tmp_path, stdout=log,
                                   stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with _NO_PROXY_OPENER.open(f"http://127.0.0.1:{port}/-/healthy", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, (tmp_path / "server.log").read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
