"""Where remote-write credentials come from: Kubernetes Secrets, or a file in files mode."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from mtproxy.api import SecretKeyRef
from mtproxy.controller import APIError, KubeClient, Resource
from mtproxy.remotewrite import SecretUnavailable, StaticSecretReader

__all__ = ["KubernetesSecretReader", "load_secrets_file"]

SECRETS = Resource(group="", version="v1", plural="secrets")


class KubernetesSecretReader:
    """Reads one key of a Secret by name (get only: the RBAC role never lists Secrets)."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client

    async def read(self, namespace: str, ref: SecretKeyRef) -> str:
        """The decoded value of ``ref.key`` in Secret ``ref.name``."""
        try:
            secret = await self._client.get(SECRETS, namespace, ref.name)
        except APIError as exc:
            raise SecretUnavailable(namespace, ref.name, ref.key, reason=f"{exc.status} {exc.reason}") from None
        data = secret.get("data") or {}
        if ref.key in data:
            return base64.b64decode(data[ref.key]).decode("utf-8")
        string_data = secret.get("stringData") or {}
        if ref.key in string_data:
            return str(string_data[ref.key])
        raise SecretUnavailable(namespace, ref.name, ref.key, reason="no such key")


def load_secrets_file(path: str | None) -> StaticSecretReader:
    """The files-mode stand-in for Secrets (empty when no file is configured).

    Raises:
        ValueError: the file is not a ``namespace: {secret: {key: value}}`` mapping.
    """
    if not path:
        return StaticSecretReader({})
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(document, dict):
        raise ValueError(f"remote_write.secrets_file: {path} must map namespace → secret → key → value")
    return StaticSecretReader(document)
