"""DESIGN.md's import rules, checked on the source with ``ast`` (no import side effects).

- ``api`` and ``controller`` import nothing else of ours; ``controller`` has no domain words;
- ``proxy`` and ``remotewrite`` import ``api`` and, of ``controller``, only the read-only store;
  they are independent of each other;
- ``reconcilers`` imports the above, never ``cmd`` or the API double;
- only ``cmd`` (and the tests) import the API double, which imports nothing of ours.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("api", "controller", "reconcilers", "proxy", "remotewrite", "cmd", "apidouble")
READ_ONLY_CONTROLLER = {"mtproxy.controller.store"}

ALLOWED: dict[str, set[str]] = {
    "api": {"api"},
    "controller": {"controller"},
    "proxy": {"proxy", "api"},
    "remotewrite": {"remotewrite", "api"},
    "reconcilers": {"reconcilers", "api", "controller", "proxy", "remotewrite"},
    "apidouble": {"apidouble"},
    "cmd": set(PACKAGES),
}


def _imports(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return [name for name in found if name == "mtproxy" or name.startswith("mtproxy.")]


def _sources(package: str) -> list[pathlib.Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_design_allows(package: str) -> None:
    violations = []
    for path in _sources(package):
        for name in _imports(path):
            parts = name.split(".")
            target = parts[1] if len(parts) > 1 else ""
            if target not in PACKAGES:
                continue  # a name imported from a module, e.g. mtproxy.api.Rule
            if target in ALLOWED[package]:
                continue
            if package in ("proxy", "remotewrite") and target == "controller":
                module = ".".join(parts[:3])
                if module in READ_ONLY_CONTROLLER:
                    continue
            violations.append(f"{path.relative_to(ROOT)} imports {name}")
    assert violations == []


def test_controller_has_no_domain_words() -> None:
    words = re.compile(r"metricaccess|tenant|prometheus", re.IGNORECASE)
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _sources("controller")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if words.search(line)
    ]
    assert hits == []


def test_every_package_and_subpackage_is_installed_under_mtproxy() -> None:
    import importlib

    for package in PACKAGES:
        module = importlib.import_module(f"mtproxy.{package}")
        assert pathlib.Path(module.__file__ or "").parent == ROOT / package
