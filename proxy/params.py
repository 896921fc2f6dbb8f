"""Request parameters read as Prometheus reads them, and rebuilt for the backend from values only.

Prometheus (Go ``net/http``) merges the URL query with a POST
``application/x-www-form-urlencoded`` body, body values first, so ``FormValue`` takes the
body's. We parse the same way, then apply stricter rules so that no trick can make the
proxy and the backend disagree about what was asked:

- a ``;`` separator, a malformed ``%`` escape or a non-UTF-8 value is a 400 (Go skips such
  pairs silently, so the two sides could read different parameter sets);
- a single-valued parameter given twice (in the URL, the body, or both) with different values
  is a 400. Given twice with the identical value it is one value: Go's client library and
  promtool repeat the URL's parameters in the POST body (``?namespace=team-a`` arrives in
  both), and whichever copy a reader takes, it reads the same;
- a repeatable parameter is read only under its bracketed name, as Prometheus reads
  ``match[]``; the bare name (``match=``) is a 400 rather than silently ignored, which would
  answer as if no selector had been given;
- a body is read only for POST with the form content type; a non-empty body of any other
  type is a 400 (multipart is refused rather than half-supported);
- parameter names are case-sensitive, as in Go: ``Query=`` is not ``query=``.

Callers never forward the incoming query string or body: they pick the parameters an
endpoint knows with ``single``/``multi`` and encode a fresh form with ``encode_form``,
so unknown parameters never reach the backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from mtproxy.proxy.errors import BadRequest

__all__ = ["FORM_CONTENT_TYPE", "RequestParams", "encode_form", "parse_request_params"]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_HEX = frozenset("0123456789abcdefABCDEF")


def _unescape(text: str, *, what: str) -> str:
    raw = bytearray()
    index = 0
    encoded = text.encode("utf-8")
    while index < len(encoded):
        byte = encoded[index]
        if byte == 0x25:  # %
            pair = encoded[index + 1 : index + 3].decode("ascii", "replace")
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise BadRequest(f"malformed percent-encoding in {what}")
            raw.append(int(pair, 16))
            index += 3
        elif byte == 0x2B:  # +
            raw.append(0x20)
            index += 1
        else:
            raw.append(byte)
            index += 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{what} is not valid UTF-8") from None


def _parse_pairs(text: str, *, source: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in text.split("&"):
        if not part:
            continue
        if ";" in part:
            raise BadRequest(f"invalid semicolon separator in {source}")
        key, _, value = part.partition("=")
        name = _unescape(key, what=f"a parameter name in {source}")
        pairs.append((name, _unescape(value, what=f"parameter {name!r} in {source}")))
    return pairs


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestParams:
    """All parameters of a request, body values before URL values (Go's ``r.Form`` order)."""

    values: Mapping[str, tuple[str, ...]]

    def single(self, name: str, *, required: bool = False) -> str | None:
        """The one value of ``name``; 400 if it is given with different values (or missing when required)."""
        found = self.values.get(name, ())
        if len(set(found)) > 1:
            raise BadRequest(f"parameter {name!r} is given {len(found)} times; give it once")
        if not found:
            if required:
                raise BadRequest(f"parameter {name!r} is required")
            return None
        return found[0]

    def multi(self, name: str) -> tuple[str, ...]:
        """Every value of a repeatable parameter such as ``match[]``; 400 if it is also given without brackets."""
        bare = name.removesuffix("[]")
        if bare != name and bare in self.values:
            raise BadRequest(f"parameter {bare!r} is not read; give each selector as {name!r}")
        return self.values.get(name, ())

    def names(self) -> frozenset[str]:
        """The parameter names present."""
        return frozenset(self.values)


def parse_request_params(*, method: str, query_string: bytes, content_type: str | None, body: bytes) -> RequestParams:
    """Merge URL query and form body the way Prometheus does, refusing anything ambiguous.

    Raises:
        BadRequest: a malformed query or body, or a body Prometheus would not read as a form.
    """
    try:
        url_text = query_string.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("the URL query must be ASCII (percent-encode other characters)") from None
    url_pairs = _parse_pairs(url_text, source="the URL query")
    body_pairs: list[tuple[str, str]] = []
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if method == "POST" and media_type == FORM_CONTENT_TYPE:
        try:
            body_text = body.decode("ascii")
        except UnicodeDecodeError:
            raise BadRequest("the form body must be ASCII (percent-encode other characters)") from None
        body_pairs = _parse_pairs(body_text, source="the form body")
    elif body.strip():
        if method != "POST":
            raise BadRequest(f"a {method} request must not have a body")
        raise BadRequest(f"unsupported body content type {media_type or 'none'!r}; use {FORM_CONTENT_TYPE}")
    merged: dict[str, list[str]] = {}
    for name, value in [*body_pairs, *url_pairs]:
        merged.setdefault(name, []).append(value)
    return RequestParams(values={name: tuple(values) for name, values in merged.items()})


def encode_form(pairs: Iterable[tuple[str, str]]) -> bytes:
    """Encode parameters as an ``application/x-www-form-urlencoded`` body."""
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs).encode("ascii")
