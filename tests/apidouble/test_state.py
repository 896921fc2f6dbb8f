"""The state file: objects, CRDs and the resourceVersion survive a restart; old versions expire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from mtproxy.apidouble import start_in_thread


def test_objects_survive_a_restart(tmp_path: Path, metricaccess_crd: dict[str, Any]) -> None:
    state = tmp_path / "state.json"
    crs = "/apis/observability.ethos.io/v1alpha1/namespaces/default/metricaccesses"
    with start_in_thread(state_file=str(state)) as first, httpx.Client(base_url=first.url) as http:
        assert http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                         json=metricaccess_crd).status_code == 201
        created = http.post(crs, json={"apiVersion": "observability.ethos.io/v1alpha1", "kind": "MetricAccess",
                                       "metadata": {"name": "kept"}, "spec": {"metrics": ["up"]}}).json()
        before = int(http.get("/api/v1/namespaces").json()["metadata"]["resourceVersion"])
    saved = json.loads(state.read_text())
    kinds = sorted(entry["object"]["kind"] for entry in saved["objects"])
    assert saved["resourceVersion"] == before
    assert kinds == ["CustomResourceDefinition", "MetricAccess", *["Namespace"] * 4], "with the built-in namespaces"

    with start_in_thread(state_file=str(state)) as second, httpx.Client(base_url=second.url) as http:
        restored = http.get(f"{crs}/kept").json()
        assert restored["metadata"]["uid"] == created["metadata"]["uid"]
        assert restored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        later = http.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "c"}}).json()
        assert int(later["metadata"]["resourceVersion"]) == before + 1
        with http.stream("GET", crs, params={"watch": "1", "resourceVersion": "1", "timeoutSeconds": "1"}) as watch:
            events = [json.loads(line) for line in watch.iter_lines() if line]
        assert [(event["type"], event["object"]["code"]) for event in events] == [("ERROR", 410)]
