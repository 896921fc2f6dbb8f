"""Pushgateway text and grouping paths."""

from __future__ import annotations

import math

from mtproxy.remotewrite.exposition import format_exposition, grouping_path


def test_exposition_groups_by_family_with_types_and_no_timestamps() -> None:
    body = format_exposition(
        [
            ({"__name__": "b_total", "job": "x"}, 2.0),
            ({"__name__": "a", "v": 'q"u\\o\nte'}, math.nan),
            ({"__name__": "b_total", "job": "w"}, math.inf),
        ],
        types={"b_total": "counter"},
    )
    assert body.decode() == (
        "# TYPE a untyped\n"
        'a{v="q\\"u\\\\o\\nte"} NaN\n'
        "# TYPE b_total counter\n"
        'b_total{job="w"} +Inf\n'
        'b_total{job="x"} 2.0\n'
    )


def test_empty_push_is_empty_body() -> None:
    assert format_exposition([]) == b""


def test_grouping_path_uses_base64_for_slashes_and_empty_values() -> None:
    assert grouping_path("remote-write", {"namespace": "team-a"}) == "/metrics/job/remote-write/namespace/team-a"
    assert grouping_path("a/b", {"namespace": ""}) == "/metrics/job@base64/YS9i/namespace@base64/="
