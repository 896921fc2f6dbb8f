"""Store: namespace index, O(1) reads and snapshots that never change under a reader."""

from __future__ import annotations

import pytest

from mtproxy.controller.store import Store


def test_snapshot_of_a_namespace_does_not_change_after_writes() -> None:
    store: Store[int] = Store()
    store.put("a", "x", 1)
    snapshot = store.in_namespace("a")
    store.put("a", "y", 2)
    store.remove("a", "x")
    assert dict(snapshot) == {"x": 1}
    assert dict(store.in_namespace("a")) == {"y": 2}


def test_snapshot_is_read_only() -> None:
    store: Store[int] = Store()
    store.put("a", "x", 1)
    with pytest.raises(TypeError):
        store.in_namespace("a")["z"] = 3  # type: ignore[index]


def test_counts_and_namespaces_follow_puts_and_removes() -> None:
    store: Store[int] = Store()
    assert store.put("a", "x", 1) is None
    assert store.put("a", "x", 2) == 1
    store.put("b", "y", 3)
    assert len(store) == 2
    assert set(store.namespaces()) == {"a", "b"}
    assert store.remove("a", "x") == 2
    assert store.remove("a", "x") is None
    assert store.namespaces() == ("b",)
    assert store.statistics().objects == 1


def test_replace_all_swaps_content() -> None:
    store: Store[int] = Store()
    store.put("a", "x", 1)
    store.replace_all({("b", "y"): 2, ("", "cluster"): 3})
    assert store.get("a", "x") is None
    assert store.get("b", "y") == 2
    assert store.get("", "cluster") == 3
    assert len(store) == 2
