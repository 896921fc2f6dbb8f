"""``auth.type: apikey``: a static API key in a header, mapped to the namespaces it may read.

Keys come from the config (``static_keys``) and/or a file (``keys_file``, typically a
mounted Secret): YAML or JSON mapping each key to a namespace or a list of namespaces. The
file is re-read when it changes (modification time, size or inode, checked with ``stat`` on
every request; the read runs in a worker thread), so keys can be rotated without a restart.
A file that becomes unreadable or invalid leaves the previous keys in force, with a warning;
an empty file means no file keys. A key in both sources grants the union of its namespaces.

Keys are compared in constant time: the presented key's SHA-256 is compared with
``hmac.compare_digest`` against every known key's SHA-256, without stopping at a match,
so neither the position of a key nor a matching prefix shows in the timing. Keys never
appear in logs or error messages; the tenant's ``subject`` is ``apikey:`` plus the first
four characters (fewer for keys shorter than eight), enough to tell keys apart in logs.

An unknown key is a 401; a known key that does not grant the requested namespace is a 403.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import trio
import yaml

from mtproxy.proxy.auth.base import AuthRequest, Tenant, select_namespace
from mtproxy.proxy.errors import Unauthenticated

__all__ = ["ApiKeyAuthenticator", "parse_keys_file"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class _KnownKey:
    digest: bytes
    namespaces: tuple[str, ...]
    subject: str


def parse_keys_file(data: bytes | str) -> dict[str, tuple[str, ...]]:
    """The key → namespaces mapping of a keys file (YAML, or JSON, which YAML reads too).

    Error messages name entries by position, never by key.

    Raises:
        ValueError: not YAML, not a mapping, or an entry of the wrong shape.
    """
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        # The exception's text quotes the offending line, which may hold a key: give only its position.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"not valid YAML or JSON{where}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ValueError("must map each API key to a namespace or a list of namespaces")
    keys: dict[str, tuple[str, ...]] = {}
    for position, (key, namespaces) in enumerate(document.items(), 1):
        if not isinstance(key, str) or not key:
            raise ValueError(f"entry {position}: the API key must be a non-empty string (quote numeric keys)")
        if isinstance(namespaces, str):
            namespaces = [namespaces]
        if not isinstance(namespaces, list) or not all(isinstance(name, str) and name for name in namespaces):
            raise ValueError(f"entry {position}: must map the key to a namespace or a list of namespaces")
        keys[key] = tuple(namespaces)
    return keys


class ApiKeyAuthenticator:
    """Authenticates a static API key sent in a header (``X-API-Key`` by default)."""

    def __init__(
        self,
        *,
        header_name: str = "X-API-Key",
        static_keys: Mapping[str, Sequence[str]] | None = None,
        keys_file: str | os.PathLike[str] | None = None,
    ) -> None:
        """Loads the keys file now, so a bad file stops start-up rather than every request.

        Args:
            header_name: the request header carrying the key (any case).
            static_keys: key → namespaces from the config.
            keys_file: a YAML or JSON file of key → namespace(s), re-read when it changes.

        Raises:
            ValueError: an empty header name or key, or a keys file that cannot be read or parsed.
        """
        if not header_name:
            raise ValueError("header_name must not be empty")
        self._header_name = header_name
        self._header_key = header_name.lower()
        self._static = {key: tuple(namespaces) for key, namespaces in (static_keys or {}).items()}
        if any(not key for key in self._static):
            raise ValueError("static_keys must not contain an empty key")
        self._path = pathlib.Path(keys_file) if keys_file is not None else None
        self._signature: tuple[int, int, int] | None = None
        file_keys: dict[str, tuple[str, ...]] = {}
        if self._path is not None:
            try:
                self._signature = _file_signature(self._path)
                file_keys = parse_keys_file(self._path.read_bytes())
            except (OSError, ValueError) as exc:
                raise ValueError(f"keys file {str(self._path)!r}: {exc}") from None
        self._known = self._merge(file_keys)

    async def authenticate(self, request: AuthRequest) -> Tenant:
        """The tenant for a request carrying a known key that grants the requested namespace.

        Raises:
            Unauthenticated: no key, or an unknown one.
            Forbidden: the key does not grant the requested namespace.
            BadRequest: the key grants several namespaces and none is requested; an invalid name.
        """
        presented = request.headers.get(self._header_key)
        if not presented:
            raise Unauthenticated(f"an API key is required: send it in the {self._header_name} header")
        await self._reload_if_changed()
        found = _find(self._known, presented)
        if found is None:
            raise Unauthenticated("the API key is not valid")
        return Tenant(namespace=select_namespace(request, found.namespaces), subject=found.subject)

    def _merge(self, file_keys: Mapping[str, tuple[str, ...]]) -> tuple[_KnownKey, ...]:
        merged: dict[str, list[str]] = {}
        for source in (self._static, file_keys):
            for key, namespaces in source.items():
                granted = merged.setdefault(key, [])
                granted.extend(name for name in namespaces if name not in granted)
        return tuple(
            _KnownKey(
                digest=hashlib.sha256(key.encode("utf-8")).digest(),
                namespaces=tuple(namespaces),
                subject=f"apikey:{key[: min(4, len(key) // 2)]}\u2026",
            )
            for key, namespaces in merged.items()
        )

    async def _reload_if_changed(self) -> None:
        if self._path is None:
            return
        try:
            signature = _file_signature(self._path)
        except OSError as exc:
            logger.warning(
                "api keys file unreadable, keeping previous keys", extra={"path": str(self._path), "error": str(exc)}
            )
            return
        if signature == self._signature:
            return
        self._signature = signature
        try:
            file_keys = parse_keys_file(await trio.to_thread.run_sync(self._path.read_bytes))
        except (OSError, ValueError) as exc:
            logger.warning(
                "api keys file invalid, keeping previous keys", extra={"path": str(self._path), "error": str(exc)}
            )
            return
        self._known = self._merge(file_keys)
        logger.info("api keys file reloaded", extra={"path": str(self._path), "keys": len(file_keys)})


def _find(known: Sequence[_KnownKey], presented: str) -> _KnownKey | None:
    """The entry for ``presented``, comparing against every entry so timing reveals nothing."""
    digest = hashlib.sha256(presented.encode("utf-8")).digest()
    found: _KnownKey | None = None
    for entry in known:
        if hmac.compare_digest(digest, entry.digest) and found is None:
            found = entry
    return found


def _file_signature(path: pathlib.Path) -> tuple[int, int, int]:
    status = path.stat()
    return (status.st_mtime_ns, status.st_size, status.st_ino)
