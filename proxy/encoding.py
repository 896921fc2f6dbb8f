"""Content coding between the backend and the client: gzip passed through, never redone.

A Prometheus answer of a thousand series is a few hundred KiB of JSON and about a tenth
of that gzipped. The proxy asks the backend for gzip only when the client accepts it;
it decodes the answer for its own checks, and when the checks leave the answer as it
was, the client gets the backend's compressed bytes: the backend compresses once, as it
would for a direct client, and the proxy never compresses. An answer the proxy changed
(filtered, merged, an error of its own) is sent uncompressed.
"""

from __future__ import annotations

import zlib

from mtproxy.proxy.errors import BackendError

__all__ = ["MAX_BODY_BYTES", "BodyDecoder", "accepts_gzip"]

MAX_BODY_BYTES = 1 << 30
"""A backend answer larger than this (decoded) is refused rather than held: 1 GiB, far above any
Prometheus answer a tenant can use, and a bound on what a broken backend or a gzip bomb costs."""


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header admits gzip (RFC 9110 §12.5.3: ``gzip`` or ``*``, q > 0)."""
    if not accept_encoding:
        return False
    star: bool | None = None
    for item in accept_encoding.split(","):
        coding, _, parameters = item.strip().partition(";")
        name = coding.strip().lower()
        if name not in ("gzip", "x-gzip", "*"):
            continue
        allowed = _quality(parameters) > 0
        if name == "*":
            star = allowed
        else:
            return allowed
    return bool(star)


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        key, _, value = parameter.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0


class BodyDecoder:
    """Decodes a backend body chunk by chunk as it arrives, so the work overlaps the transfer."""

    def __init__(self, content_encoding: str | None, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        """Prepare for ``content_encoding`` (the response header; None or identity: as it is).

        Raises:
            BackendError: an encoding the proxy did not ask for.
        """
        coding = (content_encoding or "").strip().lower()
        if coding not in ("", "identity", "gzip", "x-gzip"):
            raise BackendError(f"backend answered with content encoding {coding!r}, which the proxy did not ask for")
        self.gzipped = coding in ("gzip", "x-gzip")
        """Whether the body comes gzip-encoded."""
        self._decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if self.gzipped else None
        self._parts: list[bytes] = []
        self._size = 0
        self._max_bytes = max_bytes

    def _keep(self, part: bytes) -> None:
        self._size += len(part)
        if self._size > self._max_bytes:
            raise BackendError(f"backend answer larger than {self._max_bytes} bytes decoded; refused")
        self._parts.append(part)

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk of the body as received.

        Raises:
            BackendError: the gzip stream is corrupt.
        """
        if self._decoder is None:
            self._keep(chunk)
            return
        try:
            # bounded per step too: a small chunk of a gzip bomb must not expand without limit
            part = self._decoder.decompress(chunk, self._max_bytes - self._size + 1)
        except zlib.error as exc:
            raise BackendError(f"backend sent a corrupt gzip body: {exc}") from None
        self._keep(part)  # at the bound, decompress stopped one byte past it: refused here

    def finish(self) -> bytes:
        """The whole decoded body.

        Raises:
            BackendError: the gzip stream is corrupt or ended early.
        """
        if self._decoder is not None:
            try:
                self._keep(self._decoder.flush())
            except zlib.error as exc:
                raise BackendError(f"backend sent a corrupt gzip body: {exc}") from None
            if not self._decoder.eof:
                raise BackendError("backend sent a truncated gzip body")
        return b"".join(self._parts)
