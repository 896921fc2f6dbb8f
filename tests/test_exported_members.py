"""Each package's ``__all__`` lists exactly its public names, as httpx checks its own."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = ("api", "controller", "reconcilers", "proxy", "remotewrite", "cmd", "apidouble")


@pytest.mark.parametrize("package", PACKAGES)
def test_all_equals_public_names(package: str) -> None:
    module = importlib.import_module(f"mtproxy.{package}")
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert set(module.__all__) == public
    assert len(module.__all__) == len(set(module.__all__)), "duplicate names in __all__"
