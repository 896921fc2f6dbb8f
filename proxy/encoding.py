"""Content coding: the proxy compresses answers itself; backends answer uncompressed.

A Prometheus answer of a thousand series is about 200 KiB of JSON and about a twentieth
of that gzipped. Prometheus gzips it in Go at about 1 ms of CPU (measured: 6.1 ms median
for such a query with gzip, 5.0 ms without), and the proxy would then have to gunzip it
for its own checks. So the backend is asked for ``identity`` (the link between proxy and
backend is local to the cluster), the proxy checks the plain body, and compresses what it
sends with ISA-L at level 1, which needs about 50 µs for those 200 KiB and gives the same
size as Prometheus's own gzip (zlib at level 1 needs 260 µs). Every answer is compressed
the same way: as it came, filtered, merged or cached. This is the edge compression an
Envoy compressor filter does with ``remove_accept_encoding_header``.

``proxy.backend_compression: true`` asks backends for gzip instead (a backend far away,
behind a slow or metered link); the body is then decoded here as it arrives, bounded.
"""

from __future__ import annotations

from isal import isal_zlib

from mtproxy.proxy.errors import BackendError

__all__ = ["COMPRESS_MIN_BYTES", "MAX_BODY_BYTES", "BodyDecoder", "accepts_gzip", "gzip_encode"]

COMPRESS_MIN_BYTES = 1024
"""Smaller bodies go out as they are: the gzip header and a wake-up of the decoder cost more than they save."""
_LEVEL = 1
_GZIP_WBITS = 16 + isal_zlib.MAX_WBITS
_DecodeError: type[Exception] = isal_zlib.error  # type: ignore[assignment]  # the stub declares an instance
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


def gzip_encode(body: bytes) -> bytes:
    """``body`` as a gzip member (RFC 1952), ISA-L level 1."""
    encoder = isal_zlib.compressobj(_LEVEL, isal_zlib.DEFLATED, _GZIP_WBITS)
    return encoder.compress(body) + encoder.flush()


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
        gzipped = coding in ("gzip", "x-gzip")
        self._decoder = isal_zlib.decompressobj(wbits=_GZIP_WBITS) if gzipped else None
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
        except _DecodeError as exc:
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
            except _DecodeError as exc:
                raise BackendError(f"backend sent a corrupt gzip body: {exc}") from None
            if not self._decoder.eof:
                raise BackendError("backend sent a truncated gzip body")
        return b"".join(self._parts)
