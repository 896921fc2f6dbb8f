"""How senders read the Secret values a destination references (passwords, tokens, CA bundles).

Destinations carry ``SecretKeyRef``s, never values (``mtproxy.remotewrite.job``), so a
sender asks a ``SecretReader`` at send time and a rotated Secret takes effect with the
next batch. A reader for a cluster is backed by the API (ideally a cache of it) and is
wired in by ``cmd``; ``StaticSecretReader`` serves files mode and tests from a mapping.

Guarantees of every reader: ``read`` returns the value as text or raises
``SecretUnavailable`` naming namespace, Secret name and key; it never returns an empty
default in place of a missing key.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

import trio

from mtproxy.api import SecretKeyRef
from mtproxy.remotewrite.errors import SecretUnavailable

__all__ = ["SecretReader", "StaticSecretReader"]


class SecretReader(Protocol):
    """Reads one key of a Secret in a given namespace."""

    async def read(self, namespace: str, ref: SecretKeyRef) -> str:
        """The value of ``ref.key`` in Secret ``ref.name`` of ``namespace``, as text.

        Raises:
            SecretUnavailable: The Secret or the key does not exist, or cannot be read.
        """
        ...


class StaticSecretReader:
    """A ``SecretReader`` over a fixed mapping: namespace → Secret name → key → value.

    The mapping is copied at construction, so later changes to the caller's dicts are not seen.
    """

    def __init__(self, secrets: Mapping[str, Mapping[str, Mapping[str, str]]]) -> None:
        """Args:
            secrets: e.g. ``{"team-a": {"rw-credentials": {"password": "s3cret"}}}``.

        Raises:
            ValueError: A value is not a string (named by namespace/name/key).
        """
        copied: dict[str, Mapping[str, Mapping[str, str]]] = {}
        for namespace, by_name in secrets.items():
            names: dict[str, Mapping[str, str]] = {}
            for name, data in by_name.items():
                for key, value in data.items():
                    if not isinstance(value, str):
                        raise ValueError(f"secrets: {namespace}/{name} key {key!r} must be a string")
                names[name] = MappingProxyType(dict(data))
            copied[namespace] = MappingProxyType(names)
        self._secrets: Mapping[str, Mapping[str, Mapping[str, str]]] = MappingProxyType(copied)

    async def read(self, namespace: str, ref: SecretKeyRef) -> str:
        await trio.lowlevel.checkpoint()
        data = self._secrets.get(namespace, {}).get(ref.name)
        if data is None:
            raise SecretUnavailable(namespace, ref.name, ref.key, reason="secret not found")
        value = data.get(ref.key)
        if value is None:
            raise SecretUnavailable(namespace, ref.name, ref.key, reason="key not found in secret")
        return value
