"""Resources, bodies and clients for tests against the API double or a real kube-apiserver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from kubetesting.servers import http_config
from mtproxy.controller.client import KubeClient
from mtproxy.controller.resource import Resource

__all__ = ["CONFIGMAPS", "CRD_PATH", "METRICACCESSES", "configmap", "load_crd", "metricaccess", "open_kube"]

CRD_PATH = Path(__file__).resolve().parents[2] / "config" / "crd" / "bases" / \
    "observability.ethos.io_metricaccesses.yaml"
"""The generated CRD (``mtproxy manifests``), never a hand-written copy."""

CONFIGMAPS = Resource(group="", version="v1", plural="configmaps")
METRICACCESSES = Resource(group="observability.ethos.io", version="v1alpha1", plural="metricaccesses")


def load_crd() -> dict[str, Any]:
    """The generated CRD as a dict."""
    document: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return document


def configmap(namespace: str, name: str, value: str) -> dict[str, Any]:
    """A ConfigMap holding one value under ``data.value``."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"value": value}}


def metricaccess(namespace: str, name: str, *, metrics: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    """A MetricAccess whose source is its own namespace."""
    spec.setdefault("source", namespace)
    spec["metrics"] = metrics if metrics is not None else ["up"]
    return {"apiVersion": "observability.ethos.io/v1alpha1", "kind": "MetricAccess",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def open_kube(url: str, **http_options: Any) -> tuple[KubeClient, httpx.AsyncClient]:
    """A KubeClient on ``url`` and its httpx client, which the caller closes.

    A registered server (a real kube-apiserver, or a relay in front of one) is reached with its
    TLS context and token (:func:`kubetesting.servers.http_config`); anything else as the double is.
    """
    config = http_config(url)
    http = httpx.AsyncClient(base_url=config.host, verify=config.verify, timeout=10.0, trust_env=False,
                             **http_options)
    return KubeClient(http, config=config), http
