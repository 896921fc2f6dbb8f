"""kubectl against the generated CRD: apply it, apply the samples, read the printer columns.

Everything applied is a file the repository ships: the CRD that ``mtproxy manifests``
generated (``config/crd/bases``), the kustomization in ``config/samples`` and the
README's quick start in ``examples/``. Each test runs on two clean servers of this module's
own, so kubectl registers the CRD itself: the API double (with the machine's kubectl) and a
real kube-apiserver (with the kubectl built with it, ``make testbin``), which must accept the
generated CRD as it is (structural schema, defaults) and compute its printer columns.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from realservers.testbin import Program, require

from mtproxy.apidouble import RunningDouble, start_in_thread

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "config" / "crd" / "bases" / "observability.ethos.io_metricaccesses.yaml"
SAMPLES = REPO / "config" / "samples"
QUICKSTART = REPO / "examples" / "quickstart-my-app.yaml"
COLUMNS = ["SOURCE", "ISOLATION", "TARGET", "INTERVAL", "READY", "SERIES", "LAST WRITE", "REASON", "AGE"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Kubectl:
    """kubectl bound to one kubeconfig and a private discovery cache."""

    binary: str
    kubeconfig: Path
    cache_dir: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.binary, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}", *args]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        if check and completed.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({completed.returncode}): {completed.stderr}")
        return completed

    def table(self, *args: str) -> tuple[list[str], list[dict[str, str]]]:
        """``kubectl get`` output as its column names and one dict per row.

        Cells are cut at the header's column offsets, since an empty cell prints as blanks.
        """
        header, *lines = [line for line in self.run("get", *args).stdout.splitlines() if line.strip()]
        names = _split_header(header)
        starts: list[int] = []
        for name in names:
            starts.append(header.index(name, starts[-1] + 1 if starts else 0))
        ends = [*starts[1:], None]
        rows = [{name: line[start:end].strip() for name, start, end in zip(names, starts, ends, strict=True)}
                for line in lines]
        return names, rows


def _split_header(header: str) -> list[str]:
    # Column names are separated by at least two spaces ("LAST WRITE" is one name).
    return [name.strip() for name in header.split("  ") if name.strip()]


def _sample() -> dict[str, Any]:
    """The one MetricAccess in ``config/samples``."""
    documents: list[dict[str, Any]] = [
        d for d in yaml.safe_load_all((SAMPLES / "observability_v1alpha1_metricaccess.yaml").read_text()) if d
    ]
    (document,) = documents
    return document


@pytest.fixture(scope="module")
def kube(api_server_kind: str, request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    """kubectl on a clean server of its own, with the generated CRD applied and the samples' namespace."""
    workdir = tmp_path_factory.mktemp("kubectl-crd")
    double: RunningDouble | None = None
    plane = None
    try:
        if api_server_kind == "apidouble":
            binary = shutil.which("kubectl")
            if binary is None:
                pytest.skip("kubectl is not installed")
            double = start_in_thread()
            kubeconfig = double.write_kubeconfig(workdir / "kubeconfig")
        else:
            binary = str(require(Program.KUBECTL))
            plane = request.getfixturevalue("kube_control_plane")
            kubeconfig = plane.apiserver("kubectl-crd").write_kubeconfig(workdir / "kubeconfig")
        kube = Kubectl(binary=binary, kubeconfig=kubeconfig, cache_dir=workdir / "cache")
        applied = kube.run("apply", "-f", str(CRD))
        assert applied.stdout.strip() == \
            "customresourcedefinition.apiextensions.k8s.io/metricaccesses.observability.ethos.io created"
        kube.run("wait", "--for=condition=Established", "--timeout=30s",
                 "crd/metricaccesses.observability.ethos.io")
        namespace = _sample()["metadata"]["namespace"]
        kube.run("create", "namespace", str(namespace))
        yield kube
    finally:
        if double is not None:
            double.stop()
        if plane is not None:
            plane.stop_apiserver("kubectl-crd")


def test_samples_apply_and_get_prints_the_printer_columns(kube: Kubectl) -> None:
    sample = _sample()
    metadata, spec = sample["metadata"], sample["spec"]
    applied = kube.run("apply", "-k", str(SAMPLES))
    assert applied.stdout.strip() == f"metricaccess.observability.ethos.io/{metadata['name']} created"
    # The README's quick start is the same object. kubectl may still say "configured": it
    # rewrites its last-applied annotation, whose JSON key order differs from kustomize's.
    again = kube.run("apply", "-f", str(QUICKSTART)).stdout.strip().splitlines()  # its Namespace, then it
    assert again[-1].startswith(f"metricaccess.observability.ethos.io/{metadata['name']} ")
    stored = json.loads(kube.run("get", "ma", "-A", "-o", "json").stdout)["items"]
    assert [obj["metadata"]["generation"] for obj in stored] == [1], "the spec did not change"

    header, rows = kube.table("metricaccess", "-A")
    assert header == ["NAMESPACE", "NAME", *COLUMNS]
    (row,) = rows
    remote_write = spec["remoteWrite"]
    assert row == {
        "NAMESPACE": metadata["namespace"],
        "NAME": metadata["name"],
        "SOURCE": spec["source"],
        "ISOLATION": str(spec["metricIsolation"]).lower(),
        "TARGET": remote_write["target"]["type"],
        "INTERVAL": remote_write["interval"],
        # no status yet: these cells are empty, as kubectl prints a missing value
        "READY": "",
        "SERIES": "",
        "LAST WRITE": "",
        "REASON": "",
        "AGE": row["AGE"],
    }
    assert row["AGE"].endswith("s"), "AGE is a fresh duration"


def test_short_name_lists_the_same_objects(kube: Kubectl) -> None:
    kube.run("apply", "-k", str(SAMPLES))
    namespace = _sample()["metadata"]["namespace"]
    header, rows = kube.table("ma", "-n", str(namespace))
    assert header == ["NAME", *COLUMNS]
    assert [row["NAME"] for row in rows] == [_sample()["metadata"]["name"]]
    assert kube.run("get", "ma", "-A", "-o", "name").stdout.split() == \
        kube.run("get", "metricaccesses.observability.ethos.io", "-A", "-o", "name").stdout.split()


def test_status_patched_through_the_subresource_shows_in_ready_and_series(kube: Kubectl) -> None:
    kube.run("apply", "-k", str(SAMPLES))
    metadata = _sample()["metadata"]
    name, namespace = str(metadata["name"]), str(metadata["namespace"])
    status = {
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "Forwarding", "message": "ok",
                            "lastTransitionTime": "2024-01-01T00:00:00Z"}],
            "remoteWrite": {"active": True, "metricsCollected": 42, "lastSuccessfulWrite": "2024-01-01T00:00:00Z"},
        }
    }
    kube.run("patch", "ma", name, "-n", namespace, "--subresource=status", "--type=merge", "-p", json.dumps(status))
    # a status in a main-resource patch is ignored: the subresource is the only way in
    kube.run("patch", "ma", name, "-n", namespace, "--type=merge", "-p",
             json.dumps({"status": {"remoteWrite": {"metricsCollected": 7}}}))

    header, (row,) = kube.table("ma", name, "-n", namespace)
    assert header == ["NAME", *COLUMNS]
    assert (row["READY"], row["SERIES"]) == ("True", "42")
    assert row["LAST WRITE"].endswith(("d", "y")), f"LAST WRITE is the age of 2024-01-01: {row}"
    assert row["REASON"] == "Forwarding"
    stored = json.loads(kube.run("get", "ma", name, "-n", namespace, "-o", "json").stdout)
    assert stored["status"]["remoteWrite"]["metricsCollected"] == 42
    assert stored["metadata"]["generation"] == 1, "status writes do not bump the generation"
