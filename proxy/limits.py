"""Per-request limits on what a tenant may ask: query size, range length, points, and rewrite growth.

Each check answers 400 with Prometheus' ``bad_data`` envelope and a message naming the
limit and its config key, before any work is queued (a request that will be refused does
not take a slot). ``TooManyRequests`` is the 429 a tenant gets when it waited
``queue_timeout`` while holding its whole share (``mtproxy.proxy.fairqueue``).

- ``proxy.max_query_bytes``: the ``query`` text, or all ``match[]`` values together.
- ``proxy.max_query_range``: ``end - start`` of a range query (Mimir's ``max_query_length``).
- ``proxy.max_points``: points per series of a range query, ``floor((end - start) / step) + 1``
  (Prometheus itself refuses more than 11,000 steps).
- Rewrite growth: a selector that several rules admit is written once per rule, so a
  query of large selectors can grow several times over and then be refused by the backend
  (Go's form parser stops at 10 MB). What is sent may be at most 1.5 times what was given,
  or ``max_query_bytes``, whichever is larger; beyond that the tenant is told how to narrow it.

Time parameters are read as Prometheus reads them (seconds as a float, or RFC 3339; a
step as seconds or a duration). Where a limit needs a parameter that cannot be read, the
request is refused: a value read differently here than by the backend must not slip past.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from mtproxy.api import ProxyConfig, format_duration, parse_duration_ms
from mtproxy.proxy.errors import BadRequest, ProxyError
from mtproxy.proxy.params import RequestParams

__all__ = ["GROWTH_FACTOR", "QueryLimits", "TooManyRequests"]

GROWTH_FACTOR = 1.5
"""How much larger than the given query the rewritten one may be (above ``max_query_bytes``)."""

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})")


class TooManyRequests(ProxyError):
    """429: the tenant held its whole share of concurrent requests for ``queue_timeout``."""

    status = 429
    error_type = "unavailable"


def _seconds(text: str, *, name: str) -> float:
    """A Prometheus time parameter (float seconds or RFC 3339) as Unix seconds."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(value):
            return value
        raise BadRequest(f"invalid parameter {name!r}: {text!r} is not a finite time")
    found = _RFC3339.fullmatch(text)
    if found is None:
        raise BadRequest(f"invalid parameter {name!r}: cannot parse {text!r} to a valid timestamp")
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    offset = dt.timedelta(0)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        offset = sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        when = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=dt.timezone(offset)
        )
    except ValueError:
        raise BadRequest(f"invalid parameter {name!r}: cannot parse {text!r} to a valid timestamp") from None
    return when.timestamp() + (float("0." + fraction) if fraction else 0.0)


def _step_seconds(text: str) -> float:
    """A Prometheus ``step``: float seconds or a duration."""
    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_duration_ms(text) / 1000
        except ValueError:
            raise BadRequest(f"invalid parameter 'step': cannot parse {text!r} to a valid duration") from None
    if not math.isfinite(value) or value <= 0:
        raise BadRequest(
            "invalid parameter 'step': zero or negative query resolution step widths are not accepted. "
            "Try a positive integer"
        )
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryLimits:
    """The limits of ``proxy.*``; None switches a limit off."""

    max_query_bytes: int
    max_query_range_ms: int | None = None
    max_points: int | None = None

    @classmethod
    def from_config(cls, config: ProxyConfig) -> QueryLimits:
        return cls(
            max_query_bytes=config.max_query_bytes,
            max_query_range_ms=parse_duration_ms(config.max_query_range) if config.max_query_range else None,
            max_points=config.max_points,
        )

    def check_size(self, what: str, size: int) -> None:
        """Refuse a ``query`` (or ``match[]`` list) of more than ``max_query_bytes`` bytes.

        Raises:
            BadRequest: it is larger.
        """
        if size > self.max_query_bytes:
            raise BadRequest(
                f"{what} is {size} bytes, more than the {self.max_query_bytes} allowed (proxy.max_query_bytes); "
                "split it into smaller queries"
            )

    def check_range(self, params: RequestParams) -> None:
        """Refuse a range query longer than ``max_query_range`` or with more than ``max_points`` points.

        Raises:
            BadRequest: a limit is exceeded, or a parameter it needs cannot be read.
        """
        if self.max_query_range_ms is None and self.max_points is None:
            return
        start_text, end_text = params.single("start"), params.single("end")
        if start_text is None or end_text is None:
            return  # the backend answers Prometheus' own error for the missing parameter
        start, end = _seconds(start_text, name="start"), _seconds(end_text, name="end")
        length_s = max(0.0, end - start)
        if self.max_query_range_ms is not None and length_s * 1000 > self.max_query_range_ms:
            raise BadRequest(
                f"the query time range exceeds the limit (query length: {format_duration(round(length_s * 1000))}, "
                f"limit: {format_duration(self.max_query_range_ms)}) (proxy.max_query_range)"
            )
        step_text = params.single("step")
        if self.max_points is not None and step_text is not None:
            points = math.floor(length_s / _step_seconds(step_text)) + 1
            if points > self.max_points:
                raise BadRequest(
                    f"exceeded maximum resolution of {self.max_points} points per timeseries (proxy.max_points; "
                    f"this query has {points}). Try decreasing the query resolution (?step=XX)"
                )

    def check_growth(self, what: str, given: int, sent: int, *, rules: int) -> None:
        """Refuse a rewrite that grew a query beyond ``GROWTH_FACTOR`` times and ``max_query_bytes``.

        Raises:
            BadRequest: it grew too much.
        """
        if sent <= max(GROWTH_FACTOR * given, self.max_query_bytes):
            return
        raise BadRequest(
            f"{what} grows from {given} to {sent} bytes when restricted to this namespace's {rules} access rules "
            f"(at most {GROWTH_FACTOR:g} times, or proxy.max_query_bytes, is sent): a selector that several rules "
            "admit is written once per rule. Add a metric name or a label value the rules fix to the large "
            "selectors, or split the query"
        )
