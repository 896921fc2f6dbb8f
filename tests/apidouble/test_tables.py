"""Server-side printing helpers: Accept negotiation, JSONPath subset, human durations (pure)."""

from __future__ import annotations

import pytest

from mtproxy.apidouble.tables import Rendering, evaluate_json_path, human_duration, parse_accept


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0s"), (-1.5, "0s"), (-5, "<invalid>"), (119, "119s"), (125, "2m5s"), (600, "10m"), (3 * 3600 + 60, "3h1m"),
     (9 * 3600, "9h"), (50 * 3600, "2d2h"), (10 * 86400, "10d"), (3 * 365 * 86400, "3y"), (9 * 365 * 86400, "9y")],
)
def test_human_duration_matches_apimachinery(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_accept_negotiation() -> None:
    assert parse_accept(None).rendering is Rendering.OBJECT
    kubectl = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
               "application/json")
    assert parse_accept(kubectl).rendering is Rendering.TABLE
    metadata = parse_accept("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
    assert metadata.rendering is Rendering.PARTIAL_METADATA
    assert parse_accept("application/vnd.kubernetes.protobuf,application/json").rendering is Rendering.OBJECT


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(".spec.mode", ["read"], id="field"),
        pytest.param("{.spec.mode}", ["read"], id="braces"),
        pytest.param(".spec.metrics[1]", ["b"], id="index"),
        pytest.param(".spec.metrics[-1]", ["b"], id="negative-index"),
        pytest.param(".spec.metrics[*]", ["a", "b"], id="wildcard"),
        pytest.param(".metadata['name']", ["x"], id="quoted"),
        pytest.param('.status.conditions[?(@.type=="Ready")].status', ["True"], id="filter"),
        pytest.param('.status.conditions[?(@.type!="Ready")].reason', ["Bad"], id="negated-filter"),
        pytest.param(".spec.missing", [], id="missing"),
    ],
)
def test_json_path_subset(path: str, expected: list[object]) -> None:
    obj = {"metadata": {"name": "x"}, "spec": {"mode": "read", "metrics": ["a", "b"]},
           "status": {"conditions": [{"type": "Ready", "status": "True"},
                                     {"type": "Valid", "status": "False", "reason": "Bad"}]}}
    assert evaluate_json_path(obj, path) == expected
