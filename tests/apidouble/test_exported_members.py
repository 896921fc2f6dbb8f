"""Every apidouble module declares ``__all__``, and the package exports exactly its public names."""

from __future__ import annotations

import importlib
import pkgutil

import mtproxy.apidouble as package


def test_package_all_equals_public_names() -> None:
    public = {name for name in vars(package) if not name.startswith("_")}
    modules = {info.name for info in pkgutil.iter_modules(package.__path__)}
    assert set(package.__all__) == public - modules
    assert package.__all__ == sorted(package.__all__)


def test_every_module_declares_all_of_its_public_names() -> None:
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        assert hasattr(module, "__all__"), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"
