"""``mtproxy.proxy.auth`` and each of its modules list exactly their public names in ``__all__``."""

from __future__ import annotations

import importlib
import types

import pytest

MODULES = ("apikey", "base", "factory", "header", "jwt", "kubernetes")


def test_package_all_equals_public_names() -> None:
    package = importlib.import_module("mtproxy.proxy.auth")
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert set(package.__all__) == public
    assert len(package.__all__) == len(set(package.__all__)), "duplicate names in __all__"


@pytest.mark.parametrize("name", MODULES)
def test_module_all_equals_what_it_defines(name: str) -> None:
    module = importlib.import_module(f"mtproxy.proxy.auth.{name}")
    defined = {
        attribute
        for attribute, value in vars(module).items()
        if not attribute.startswith("_")
        and (getattr(value, "__module__", None) == module.__name__ or attribute.isupper())
    }
    assert set(module.__all__) == defined
