"""The servers ``hack/testbin.sh`` builds from Go modules, found in the per-machine cache.

``make testbin`` (run by ``make test``) builds each program once per version into
``${XDG_CACHE_HOME:-~/.cache}/mtproxy/testbin/<name>-<version>/``. The versions are read from
``hack/testbin.sh`` itself, the one place they are pinned, and the same environment variables
override them (``KUBERNETES_VERSION``, ``ETCD_VERSION``, ``PROMETHEUS_VERSION``,
``PROM_LABEL_PROXY_VERSION``); ``MTPROXY_TESTBIN`` names another cache directory.

:func:`require` is what fixtures call. A binary that is not there skips the test with the
reason and the command that builds it, except in CI (``CI=true``), where it fails the test:
CI runs ``make test``, which built everything, so a missing binary there is a broken build,
never a reason to pass with less.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from realservers.prometheus import DEBIAN, PrometheusBinaries

__all__ = [
    "PROMETHEUS_FLAVOURS",
    "Program",
    "in_ci",
    "locate",
    "prometheus3",
    "prometheus_build",
    "require",
    "version_of",
]

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPT = REPOSITORY / "hack" / "testbin.sh"


class Program(enum.Enum):
    """One program ``hack/testbin.sh`` builds, as (build name, file name)."""

    KUBE_APISERVER = ("kubernetes", "kube-apiserver")
    KUBECTL = ("kubernetes", "kubectl")
    ETCD = ("etcd", "etcd")
    PROMETHEUS = ("prometheus", "prometheus")
    PROMTOOL = ("prometheus", "promtool")
    PROM_LABEL_PROXY = ("prom-label-proxy", "prom-label-proxy")

    @property
    def build(self) -> str:
        """The name ``hack/testbin.sh`` takes, e.g. ``kubernetes``."""
        return self.value[0]

    @property
    def file_name(self) -> str:
        return self.value[1]


_VERSION_VARIABLES = {
    "kubernetes": "KUBERNETES_VERSION",
    "etcd": "ETCD_VERSION",
    "prometheus": "PROMETHEUS_VERSION",
    "prom-label-proxy": "PROM_LABEL_PROXY_VERSION",
}


@dataclass(frozen=True, slots=True)
class Located:
    """Where a program is, or would be once built."""

    program: Program
    version: str
    path: Path

    @property
    def present(self) -> bool:
        return self.path.is_file() and os.access(self.path, os.X_OK)


def cache_dir() -> Path:
    """``$MTPROXY_TESTBIN``, else ``${XDG_CACHE_HOME:-~/.cache}/mtproxy/testbin``."""
    explicit = os.environ.get("MTPROXY_TESTBIN")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mtproxy" / "testbin"


def version_of(build: str) -> str:
    """The version ``hack/testbin.sh`` builds for ``build`` (its environment override first)."""
    variable = _VERSION_VARIABLES[build]
    override = os.environ.get(variable)
    if override:
        return override
    match = re.search(rf"^{variable}=\$\{{{variable}:-([^}}]+)\}}", SCRIPT.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{SCRIPT} does not pin {variable}")
    return match.group(1)


def locate(program: Program) -> Located:
    """Where ``program`` is in the cache (it may be missing: see :attr:`Located.present`)."""
    version = version_of(program.build)
    return Located(program, version, cache_dir() / f"{program.build}-{version}" / program.file_name)


def in_ci() -> bool:
    """Whether this run is CI's (``CI`` set to ``true`` or ``1``), where nothing may be skipped."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require(program: Program) -> Path:
    """The path of ``program``; skip the test when it is missing (fail it in CI).

    Call it from a fixture or a test.
    """
    located = locate(program)
    if located.present:
        return located.path
    reason = (
        f"{program.file_name} {located.version} is not built (looked for {located.path}); "
        f"build it with `make testbin` or `hack/testbin.sh {program.build}`"
    )
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def prometheus3() -> PrometheusBinaries:
    """Prometheus 3 and its promtool from the cache (module ``v0.3XX.Y`` is Prometheus 3.XX.Y)."""
    prometheus = require(Program.PROMETHEUS)
    promtool = require(Program.PROMTOOL)
    module_version = locate(Program.PROMETHEUS).version
    minor = int(module_version.removeprefix("v0.3").split(".")[0])
    return PrometheusBinaries(version=f"3.{minor}", prometheus=str(prometheus), promtool=str(promtool))


PROMETHEUS_FLAVOURS = (
    pytest.param("2", id="prometheus-2.42"),
    pytest.param("3", id="prometheus-3", marks=[pytest.mark.prometheus3]),
)
"""Params of a session fixture that runs once per Prometheus build; read them with :func:`prometheus_build`."""


def prometheus_build(request: pytest.FixtureRequest, *, blocks_by_debian_promtool: bool = False) -> PrometheusBinaries:
    """The build of this instance of a fixture parametrised with :data:`PROMETHEUS_FLAVOURS`.

    ``blocks_by_debian_promtool``: keep Debian's promtool, so that test data loaded from blocks
    is byte for byte the same in both runs. promtool 3 (like Prometheus 3's scrapes) stores
    classic-histogram ``le`` and summary ``quantile`` values as floats (``le="1"`` becomes
    ``le="1.0"``), which tests comparing against the data set would otherwise have to know.
    """
    if request.param == "3":
        binaries: PrometheusBinaries = request.getfixturevalue("prometheus3_binaries")
        if blocks_by_debian_promtool:
            return dataclasses.replace(binaries, promtool=DEBIAN.promtool)
        return binaries
    return DEBIAN
