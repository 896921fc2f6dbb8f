"""The defence-in-depth result check: foreign series removed and counted, own answers untouched.

The check skips its JSON parse when two byte counts prove that every ``namespace`` key
holds the tenant's namespace. The table rows include the spellings that must not slip
past that shortcut (a ``\\u``-escaped key, spaces around the colon, a key that merely
contains the word), and a property test compares the shortcut with a reference that
always parses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtproxy.proxy.outcomes import ResultCheck
from mtproxy.proxy.resultcheck import check_result

TENANT = "team-a"


def _vector(*label_sets: dict[str, str]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": m, "value": [1.5, "1"]} for m in label_sets]},
    }


def _compact(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def _run(kind: ResultCheck, body: bytes) -> tuple[bytes, int]:
    removed: list[int] = []
    out = check_result(kind, body, namespace=TENANT, on_violation=removed.append)
    return out, sum(removed)


def _namespaces(body: bytes, kind: ResultCheck) -> list[str | None]:
    data = json.loads(body)["data"]
    if kind is ResultCheck.VECTOR_OR_MATRIX:
        return [item["metric"].get("namespace") for item in data["result"]]
    if kind is ResultCheck.SERIES:
        return [item.get("namespace") for item in data]
    return [item["seriesLabels"].get("namespace") for item in data]


OWN = {"__name__": "up", "namespace": TENANT, "job": "api"}
FOREIGN = {"__name__": "up", "namespace": "team-b", "job": "api"}
BARE = {"__name__": "up", "job": "api"}


@pytest.mark.parametrize(
    ("kind", "body", "kept", "removed"),
    [
        pytest.param(ResultCheck.VECTOR_OR_MATRIX, _compact(_vector(OWN, OWN)), [TENANT, TENANT], 0, id="own-only"),
        pytest.param(ResultCheck.VECTOR_OR_MATRIX, _compact(_vector(BARE)), [None], 0, id="no-namespace-label"),
        pytest.param(ResultCheck.VECTOR_OR_MATRIX, _compact(_vector(OWN, FOREIGN)), [TENANT], 1, id="foreign-removed"),
        pytest.param(
            ResultCheck.VECTOR_OR_MATRIX,
            json.dumps(_vector(OWN, FOREIGN)).encode(),  # ", " and ": " separators
            [TENANT],
            1,
            id="spaces-around-colon",
        ),
        pytest.param(
            ResultCheck.VECTOR_OR_MATRIX,
            _compact(_vector(OWN, FOREIGN)).replace(b'"namespace":"team-b"', b'"namespac\\u0065":"team-b"'),
            [TENANT],
            1,
            id="unicode-escaped-key",
        ),
        pytest.param(
            ResultCheck.VECTOR_OR_MATRIX,
            _compact(_vector(OWN, {"job": "namespace", "namespace": "team-b"})),
            [TENANT],
            1,
            id="value-spelled-namespace",
        ),
        pytest.param(
            ResultCheck.VECTOR_OR_MATRIX,
            _compact(_vector(OWN, {'x"namespace': "team-a", "namespace": "team-b"})),
            [TENANT],
            1,
            id="key-ending-in-namespace",
        ),
        pytest.param(
            ResultCheck.VECTOR_OR_MATRIX,
            _compact(_vector({"namespace": "team-a-b"})),
            [],
            1,
            id="namespace-with-tenant-prefix",
        ),
        pytest.param(
            ResultCheck.SERIES,
            _compact({"status": "success", "data": [OWN, FOREIGN, BARE]}),
            [TENANT, None],
            1,
            id="series",
        ),
        pytest.param(
            ResultCheck.EXEMPLARS,
            _compact({"status": "success", "data": [{"seriesLabels": FOREIGN, "exemplars": []}]}),
            [],
            1,
            id="exemplars",
        ),
    ],
)
def test_foreign_series_are_removed_and_counted(kind: ResultCheck, body: bytes, kept: list[str], removed: int) -> None:
    out, counted = _run(kind, body)
    assert counted == removed
    assert _namespaces(out, kind) == kept
    if not removed:
        assert out is body  # untouched, byte for byte


def test_federate_lines_of_another_namespace_are_removed() -> None:
    body = (
        b"# TYPE up untyped\n"
        b'up{namespace="team-a",job="api"} 1 1000\n'
        b'up{namespace="team-b",job="api"} 1 1000\n'
        b'up{exported_namespace="team-b",namespace="team-a"} 1 1000\n'
    )
    out, counted = _run(ResultCheck.FEDERATE, body)
    assert counted == 1
    assert b'team-b",job' not in out
    assert b'exported_namespace="team-b",namespace="team-a"' in out


def _reference(kind: ResultCheck, body: bytes) -> list[str | None]:
    """What a check that always parses keeps."""
    return [ns for ns in _namespaces(body, kind) if ns is None or ns == TENANT]


_LABEL_NAMES = st.sampled_from(["namespace", "job", "namespac", "xnamespace", "__name__", 'a"namespace'])
_LABEL_VALUES = st.sampled_from([TENANT, "team-b", "team-a-b", "namespace", "", 'q"uote', "back\\slash", "é"])


@settings(max_examples=300, deadline=None)
@given(
    label_sets=st.lists(st.dictionaries(_LABEL_NAMES, _LABEL_VALUES, max_size=4), max_size=6),
    ascii_only=st.booleans(),
    compact=st.booleans(),
)
def test_shortcut_agrees_with_a_full_parse(label_sets: list[dict[str, str]], ascii_only: bool, compact: bool) -> None:
    document = _vector(*label_sets)
    separators = (",", ":") if compact else (", ", ": ")
    body = json.dumps(document, ensure_ascii=ascii_only, separators=separators).encode("utf-8")
    out, counted = _run(ResultCheck.VECTOR_OR_MATRIX, body)
    expected = _reference(ResultCheck.VECTOR_OR_MATRIX, body)
    assert _namespaces(out, ResultCheck.VECTOR_OR_MATRIX) == expected
    assert counted == len(label_sets) - len(expected)
