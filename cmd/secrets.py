"""Where remote-write credentials come from: Kubernetes Secrets, or a file in files mode."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import trio
import yaml

from mtproxy.api import SecretKeyRef
from mtproxy.controller import APIError, KubeClient, Resource
from mtproxy.remotewrite import SecretUnavailable, StaticSecretReader

__all__ = ["KubernetesSecretReader", "load_secrets_file"]

SECRETS = Resource(group="", version="v1", plural="secrets")


class KubernetesSecretReader:
    """Reads one key of a Secret by name (get only: the RBAC role never lists Secrets), cached.

    A Secret found is kept for ``ttl_s`` (so a batch costs no API call, and a rotated
    Secret takes effect within that time); a Secret that cannot be read is never cached,
    so creating it takes effect at the next attempt. Concurrent reads of one Secret share
    one request.
    """

    def __init__(self, client: KubeClient, *, ttl_s: float = 30.0) -> None:
        if ttl_s < 0:
            raise ValueError(f"ttl_s: must not be negative, got {ttl_s}")
        self._client = client
        self._ttl_s = ttl_s
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._in_flight: dict[tuple[str, str], trio.Event] = {}
        self.gets = 0

    async def _secret(self, namespace: str, name: str) -> dict[str, Any]:
        key = (namespace, name)
        while True:
            cached = self._cache.get(key)
            if cached is not None and trio.current_time() - cached[0] < self._ttl_s:
                await trio.lowlevel.checkpoint()
                return cached[1]
            pending = self._in_flight.get(key)
            if pending is None:
                break
            await pending.wait()
            if key not in self._cache:
                break  # the other read failed: try ourselves (errors are not shared)
        done = self._in_flight[key] = trio.Event()
        try:
            self.gets += 1
            secret = await self._client.get(SECRETS, namespace, name)
            self._cache[key] = (trio.current_time(), secret)
            return secret
        except BaseException:
            self._cache.pop(key, None)
            raise
        finally:
            del self._in_flight[key]
            done.set()

    async def read(self, namespace: str, ref: SecretKeyRef) -> str:
        """The decoded value of ``ref.key`` in Secret ``ref.name``."""
        try:
            secret = await self._secret(namespace, ref.name)
        except APIError as exc:
            raise SecretUnavailable(namespace, ref.name, ref.key, reason=f"{exc.status} {exc.reason}") from None
        data = secret.get("data") or {}
        if ref.key in data:
            return base64.b64decode(data[ref.key]).decode("utf-8")
        string_data = secret.get("stringData") or {}
        if ref.key in string_data:
            return str(string_data[ref.key])
        self._cache.pop((namespace, ref.name), None)  # a key missing now may be added soon
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
