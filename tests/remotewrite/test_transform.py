"""SeriesTransform.resolve: a source identity to what is sent, computed once per series."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mtproxy.remotewrite.transform as transform_module
from mtproxy.api import RelabelAction, RelabelConfig, rules_for
from mtproxy.remotewrite.encode import encode_labels
from mtproxy.remotewrite.job import RemoteWriteJob
from mtproxy.remotewrite.samples import MalformedAnswer
from mtproxy.remotewrite.state import series_hash
from mtproxy.remotewrite.transform import SeriesTransform, output_labels

label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True)
label_sets = st.dictionaries(label_names, st.text(max_size=10), max_size=5).map(
    lambda labels: {"__name__": "m", **labels}
)


def _job(**changes: object) -> RemoteWriteJob:
    fields: dict[str, object] = {
        "namespace": "team-a",
        "name": "job",
        "rules": rules_for(["m.*"], label_selectors={}, isolation_namespace="team-a"),
        "interval_ms": 30_000,
        "destinations": (),
    }
    fields.update(changes)
    return RemoteWriteJob(**fields)  # type: ignore[arg-type]


def _identity(labels: dict[str, str]) -> bytes:
    return json.dumps(labels, separators=(",", ":"), ensure_ascii=False)[1:-1].encode()


@given(label_sets, st.dictionaries(label_names, st.text(max_size=5), max_size=2), st.booleans())
def test_resolve_is_the_encoded_output_key_and_its_hash(
    labels: dict[str, str], extra: dict[str, str], honor: bool
) -> None:
    transform = SeriesTransform(_job(extra_labels=extra, honor_labels=honor))
    key = transform.output_key(labels)
    output = transform.resolve(_identity(labels))
    if key is None:
        assert output is None
    else:
        assert output == (encode_labels(key), series_hash(key))
        assert output_labels(output[0]) == key


def test_relabel_rules_apply_before_the_output_is_encoded() -> None:
    rules = (
        RelabelConfig(action=RelabelAction.LABELDROP, regex="pod"),
        RelabelConfig(source_labels=("job",), target_label="service", regex="(.*)", replacement="svc-$1"),
    )
    transform = SeriesTransform(_job(relabel=rules, extra_labels={"cluster": "c1"}))
    output = transform.resolve(b'"__name__":"up","job":"api","pod":"api-0"')
    assert output is not None
    assert output_labels(output[0]) == (("__name__", "up"), ("cluster", "c1"), ("job", "api"), ("service", "svc-api"))


def test_an_identity_is_decoded_once_then_served_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[bytes] = []
    real = transform_module.decode_labels

    def counting(identity: bytes) -> dict[str, str]:
        decoded.append(identity)
        return real(identity)

    monkeypatch.setattr(transform_module, "decode_labels", counting)
    transform = SeriesTransform(_job())
    first = transform.resolve(b'"__name__":"up"')
    assert transform.resolve(b'"__name__":"up"') is first
    assert decoded == [b'"__name__":"up"']


def test_dropped_series_resolve_to_none_and_are_counted_once() -> None:
    rules = (RelabelConfig(action=RelabelAction.DROP, source_labels=("job",), regex="noisy"),)
    transform = SeriesTransform(_job(relabel=rules))
    for _ in range(3):
        assert transform.resolve(b'"__name__":"up","job":"noisy"') is None
        assert transform.resolve(b'"job":"nameless"') is None
        assert transform.resolve(b'"__name__":"up","job":"x","bad-name":"y"') is None
    statistics = transform.statistics()
    assert (statistics.dropped_by_relabel, statistics.dropped_without_name) == (1, 1)
    assert statistics.dropped_invalid_label_name == 1


def test_a_full_cache_is_emptied_and_results_stay_the_same() -> None:
    transform = SeriesTransform(_job(), max_cached=2)
    identities = [f'"__name__":"m{i}"'.encode() for i in range(5)]
    first = [transform.resolve(identity) for identity in identities]
    assert [transform.resolve(identity) for identity in identities] == first
    assert transform.statistics().cached_series <= 2


def test_an_identity_that_is_not_a_labels_object_is_refused() -> None:
    with pytest.raises(MalformedAnswer):
        SeriesTransform(_job()).resolve(b'"__name__":1')
