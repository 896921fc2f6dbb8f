"""Patch application: RFC 7386 merge patch, RFC 6902 JSON patch, approximate strategic merge (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mtproxy.apidouble.errors import BadRequestError, UnsupportedMediaTypeError
from mtproxy.apidouble.patches import apply_patch, json_patch, merge_patch, strategic_merge_patch


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        pytest.param({"a": "b"}, {"a": "c"}, {"a": "c"}, id="replace"),
        pytest.param({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}, id="add"),
        pytest.param({"a": "b"}, {"a": None}, {}, id="null-deletes"),
        pytest.param({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}, id="lists-replace"),
        pytest.param({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}, id="nested"),
        pytest.param({"a": "foo"}, {"a": {"b": None}}, {"a": {}}, id="scalar-becomes-object"),
    ],
)
def test_merge_patch_rfc7386_examples(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_patch_does_not_modify_inputs() -> None:
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


def test_json_patch_operations() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    result = json_patch(doc, [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "replace", "path": "/b/c", "value": 2},
        {"op": "move", "from": "/b/c", "path": "/d"},
        {"op": "copy", "from": "/a/0", "path": "/e"},
        {"op": "remove", "path": "/a/1"},
        {"op": "test", "path": "/d", "value": 2},
    ])
    assert result == {"a": [1, 3], "b": {}, "d": 2, "e": 1}


def test_json_patch_failed_test_is_refused() -> None:
    with pytest.raises(BadRequestError):
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])


def test_strategic_merge_merges_known_lists_by_key_and_honours_directives() -> None:
    target = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}],
                       "args": ["x"]}, "metadata": {"finalizers": ["f", "g"]}}
    patch = {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "c"}],
                      "containers": [{"name": "a", "image": "2"}, {"name": "b", "$patch": "delete"},
                                     {"name": "c", "image": "3"}],
                      "args": ["y"]},
             "metadata": {"$deleteFromPrimitiveList/finalizers": ["g"]}}
    assert strategic_merge_patch(target, patch) == {
        "spec": {"containers": [{"name": "a", "image": "2"}, {"name": "c", "image": "3"}], "args": ["y"]},
        "metadata": {"finalizers": ["f"]},
    }


def test_strategic_merge_replace_directive() -> None:
    assert strategic_merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"$patch": "replace", "d": 3}}) == {"a": {"d": 3}}


def test_apply_patch_dispatches_on_media_type() -> None:
    target = {"a": 1}
    assert apply_patch("application/merge-patch+json; charset=utf-8", target, b'{"b": 2}') == {"a": 1, "b": 2}
    patch = json.dumps([{"op": "remove", "path": "/a"}]).encode()
    assert apply_patch("application/json-patch+json", target, patch) == {}
    with pytest.raises(UnsupportedMediaTypeError):
        apply_patch("application/apply-patch+yaml", target, b"a: 2")
    with pytest.raises(BadRequestError):
        apply_patch("application/merge-patch+json", target, b"[1]")
