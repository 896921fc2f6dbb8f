"""Label and field selector parsing and matching (pure)."""

from __future__ import annotations

import pytest

from mtproxy.apidouble.errors import BadRequestError
from mtproxy.apidouble.selectors import parse_field_selector, parse_label_selector


def _obj(labels: dict[str, str] | None = None, **fields: object) -> dict[str, object]:
    return {"metadata": {"name": "n", "namespace": "ns", "labels": labels or {}}, **fields}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        pytest.param("", {}, True, id="empty-matches-all"),
        pytest.param("a=1", {"a": "1"}, True, id="equals"),
        pytest.param("a = 1", {"a": "1"}, True, id="spaces"),
        pytest.param("a=", {"a": ""}, True, id="empty-value"),
        pytest.param("a!=1", {}, True, id="not-equals-missing"),
        pytest.param("a in (1, 2)", {"a": "2"}, True, id="in"),
        pytest.param("a notin (1,2)", {"a": "2"}, False, id="notin"),
        pytest.param("a notin (1,2)", {}, True, id="notin-missing"),
        pytest.param("a", {"a": "x"}, True, id="exists"),
        pytest.param("!a", {"a": "x"}, False, id="does-not-exist"),
        pytest.param("a>3", {"a": "5"}, True, id="greater-than"),
        pytest.param("a<3", {"a": "x"}, False, id="less-than-not-a-number"),
        pytest.param("example.com/tier in (web),!legacy", {"example.com/tier": "web"}, True, id="prefixed-keys"),
    ],
)
def test_label_selector_matches(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(selector).matches(_obj(labels)) is expected


@pytest.mark.parametrize("selector", ["a in (1", "a in 1", "=a", "a,", "a b", "a in (1) b"])
def test_malformed_label_selectors_are_bad_requests(selector: str) -> None:
    with pytest.raises(BadRequestError):
        parse_label_selector(selector)


def test_field_selector_terms_and_escapes() -> None:
    selector = parse_field_selector(r"metadata.name=n,status.phase!=Failed,spec.x=a\,b")
    assert [(r.path, r.value, r.negated) for r in selector.requirements] == [
        ("metadata.name", "n", False), ("status.phase", "Failed", True), ("spec.x", "a,b", False)]
    assert selector.matches(_obj(spec={"x": "a,b"}, status={"phase": "Running"}))
    assert not selector.matches(_obj(spec={"x": "a,b"}, status={"phase": "Failed"}))


def test_field_selector_renders_booleans_like_go() -> None:
    assert parse_field_selector("spec.unschedulable=true").matches(_obj(spec={"unschedulable": True}))


def test_unsupported_field_is_refused_in_the_real_servers_words() -> None:
    with pytest.raises(BadRequestError, match=r'"spec\.x" is not a known field selector: only "metadata\.name"'):
        parse_field_selector("spec.x=1").check_supported(())
    with pytest.raises(BadRequestError, match=r"field label not supported: spec\.x"):
        parse_field_selector("spec.x=1").check_supported(("status.phase",))
    parse_field_selector("metadata.namespace=a,status.phase=b").check_supported(("status.phase",))
