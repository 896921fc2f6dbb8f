"""The Dockerfile, read: no Docker engine runs on these machines, so what can be checked without
one is checked here (the wheel it installs is run by ``test_wheel.py``).

The final stage starts from the same slim Python 3.11 base, installs the ``make dist`` wheel
and the wheels the build stage resolved, with no index (nothing downloaded, nothing built),
removes pip and setuptools, installs no compiler, no test extra and no source, and runs the
console script as 65534. The build context is the wheel alone (``.dockerignore``).
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
BUILD_TOOLS = ("gcc", "g++", "clang", "make", "build-essential", "cargo", "rustc", "python3-dev", "libc6-dev")


@dataclass(slots=True)
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for kind, argument in self.instructions if kind == keyword]


def _stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    arguments: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, argument = line.partition(" ")
        keyword, argument = keyword.upper(), argument.strip()
        if keyword == "FROM":
            words = argument.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: arguments.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif keyword == "ARG" and not stages:
            key, _, value = argument.partition("=")
            arguments[key] = value
        elif stages:
            stages[-1].instructions.append((keyword, argument))
    return arguments, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return _stages(DOCKERFILE.read_text())[1]


def test_both_stages_use_a_slim_python_3_11_base(stages: list[Stage]) -> None:
    assert len(stages) == 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage.base), stage.base
    assert stages[0].name == "build"


def test_the_build_stage_resolves_the_dist_wheel_into_binary_wheels(stages: list[Stage]) -> None:
    build = stages[0]
    assert build.all("COPY") == ["dist/ dist/"]
    (run,) = build.all("RUN")
    assert "pip wheel --only-binary=:all: --wheel-dir /wheels" in run
    assert "dist/prometheus_multi_tenant_proxy-*-py3-none-any.whl" in run


def test_the_final_stage_installs_only_the_wheels_and_no_build_tool(stages: list[Stage]) -> None:
    final = stages[-1]
    assert final.all("COPY") == [] and final.all("ADD") == [], "the final stage copies nothing of the source"
    (run,) = final.all("RUN")
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in run, "the wheels stay out of the layers"
    words = shlex.split(run.replace("&&", " && "))
    install = words[words.index("install") - 1: words.index("&&")]
    assert install[0] == "pip" and "--no-index" in install and "--find-links=/wheels" in install
    assert install[-1] == "prometheus-multi-tenant-proxy", f"installs the project, no extras: {install}"
    assert not any("[" in word for word in install)
    assert "pip uninstall --yes pip setuptools wheel" in run
    for tool in BUILD_TOOLS:
        assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", run), f"{tool} in the final stage"
    assert "apt-get" not in run and "apk " not in run


def test_the_final_stage_runs_the_console_script_as_nobody(stages: list[Stage]) -> None:
    final = stages[-1]
    assert final.all("USER") == ["65534:65534"]
    assert final.all("ENTRYPOINT") == ['["mtproxy"]']
    assert final.all("CMD") == ['["--config=/etc/prometheus-proxy/config.yaml"]']
    assert final.all("EXPOSE") == ["8080"]


def test_the_build_context_is_the_wheel_alone() -> None:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

    def sent(path: str) -> bool:
        included = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            if fnmatch.fnmatch(path, pattern.lstrip("!")):
                included = negated
        return included

    assert sent("dist/prometheus_multi_tenant_proxy-0.1.0-py3-none-any.whl")
    for path in ("api/__init__.py", "tests/conftest.py", ".venv/bin/python", "pyproject.toml", ".git/HEAD"):
        assert not sent(path), path
