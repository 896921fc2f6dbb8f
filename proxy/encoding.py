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

__all__ = ["accepts_gzip", "decode_body"]


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


def decode_body(raw: bytes, content_encoding: str | None) -> bytes:
    """The backend's body without its content coding (only gzip is ever asked for).

    Raises:
        BackendError: an encoding the proxy did not ask for, or a corrupt gzip stream.
    """
    coding = (content_encoding or "").strip().lower()
    if coding in ("", "identity"):
        return raw
    if coding not in ("gzip", "x-gzip"):
        raise BackendError(f"backend answered with content encoding {coding!r}, which the proxy did not ask for")
    try:
        decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        body = decoder.decompress(raw) + decoder.flush()
    except zlib.error as exc:
        raise BackendError(f"backend sent a corrupt gzip body: {exc}") from None
    if not decoder.eof:
        raise BackendError("backend sent a truncated gzip body")
    return body
