"""Kubeconfig files pointing at a running double.

The file has one cluster (``server: http://127.0.0.1:<port>``, plain HTTP), one user with a
bearer token (the double accepts any token) and one current context with a default
namespace. It works as is with ``kubectl --kubeconfig`` and with
``kubernetes.config.load_kube_config(config_file=...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["kubeconfig_document", "write_kubeconfig"]


def kubeconfig_document(server_url: str, *, token: str = "apidouble", namespace: str = "default",
               name: str = "apidouble") -> dict[str, Any]:
    """Return the kubeconfig document for a double at ``server_url``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server_url}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(path: str | Path, server_url: str, *, token: str = "apidouble", namespace: str = "default",
                     name: str = "apidouble") -> Path:
    """Write the kubeconfig for a double at ``server_url`` to ``path`` (mode 0600); return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = kubeconfig_document(server_url, token=token, namespace=namespace, name=name)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    target.chmod(0o600)
    return target
