"""Contract with kubectl: apply (client-side, with --validate), apply -k, get (tables, short names,
categories, -o yaml) and delete, through a generated kubeconfig, against the double and a real
kube-apiserver.

Each kind of server is a clean one of this module's own, so kubectl registers the CRD itself:
a double of its own, driven by the machine's kubectl (1.27-1.33 on these machines, what
users run); and the control plane's ``kubectl`` API server, driven by the kubectl built with
it (``make testbin``).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubetesting import KubeServer
from realservers.testbin import Program, require

from mtproxy.apidouble import start_in_thread

pytestmark = pytest.mark.slow


@dataclass(frozen=True, slots=True, kw_only=True)
class Kubectl:
    """kubectl bound to one server's kubeconfig and a private discovery cache."""

    binary: str
    kubeconfig: Path
    cache_dir: Path
    workdir: Path
    real_server: bool

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.binary, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}", *args]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        if check and completed.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({completed.returncode}): {completed.stderr}")
        return completed

    def write(self, name: str, *documents: dict[str, Any]) -> Path:
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        return path


def _sample(name: str, namespace: str | None = None, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    spec.setdefault("metrics", ["up"])
    return {"apiVersion": "observability.ethos.io/v1alpha1", "kind": "MetricAccess", "metadata": metadata,
            "spec": spec}


@pytest.fixture(scope="module")
def kubectl_server(api_server_kind: str, request: pytest.FixtureRequest) -> Iterator[tuple[KubeServer, str]]:
    """A clean server of this module's own, and the kubectl to drive it with."""
    if api_server_kind == "apidouble":
        binary = shutil.which("kubectl")
        if binary is None:
            pytest.skip("kubectl is not installed")
        running = start_in_thread()
        yield running, binary
        running.stop()
        return
    kubectl = str(require(Program.KUBECTL))
    plane = request.getfixturevalue("kube_control_plane")
    yield plane.apiserver("kubectl"), kubectl
    plane.stop_apiserver("kubectl")


@pytest.fixture(scope="module")
def kube(kubectl_server: tuple[KubeServer, str], tmp_path_factory: pytest.TempPathFactory,
         metricaccess_crd: dict[str, Any]) -> Kubectl:
    """kubectl with the test CRD applied."""
    server, binary = kubectl_server
    workdir = tmp_path_factory.mktemp("kubectl")
    kube = Kubectl(binary=binary, kubeconfig=server.write_kubeconfig(workdir / "kubeconfig"),
                   cache_dir=workdir / "cache", workdir=workdir, real_server=getattr(server, "kind", "") != "apidouble")
    applied = kube.run("apply", "-f", str(kube.write("crd.yaml", metricaccess_crd)))
    assert applied.stdout.strip() == "customresourcedefinition.apiextensions.k8s.io/" \
                                     "metricaccesses.observability.ethos.io created"
    return kube


@pytest.fixture
def ns(kube: Kubectl) -> str:
    name = f"k-{uuid.uuid4().hex[:8]}"
    kube.run("create", "namespace", name)
    return name


def test_applied_crd_is_established_and_discoverable(kube: Kubectl) -> None:
    status = kube.run("get", "crd", "metricaccesses.observability.ethos.io", "-o",
                      "jsonpath={.status.conditions[?(@.type==\"Established\")].status}")
    assert status.stdout == "True"
    resources = kube.run("api-resources", "--api-group=observability.ethos.io", "--no-headers").stdout.split()
    assert resources[:2] == ["metricaccesses", "ma"] and "MetricAccess" in resources


def test_apply_then_get_all_namespaces_shows_printer_columns(kube: Kubectl, ns: str) -> None:
    created = kube.run("apply", "-f", str(kube.write(f"{ns}/sample.yaml", _sample("x", ns))))
    assert created.stdout.strip() == "metricaccess.observability.ethos.io/x created"
    table = kube.run("get", "metricaccess", "-A").stdout.splitlines()
    assert table[0].split() == ["NAMESPACE", "NAME", "MODE", "METRICS", "VALID", "AGE"]
    (row,) = [line.split() for line in table[1:] if line.split()[0] == ns]
    assert row[:3] == [ns, "x", "read"] and len(row) == 4, "empty METRICS and VALID cells print blank"
    assert row[3].endswith("s")


def test_get_by_short_name_and_category(kube: Kubectl, ns: str) -> None:
    kube.run("apply", "-f", str(kube.write(f"{ns}/sample.yaml", _sample("x", ns))))
    assert kube.run("get", "ma", "-n", ns, "-o", "name").stdout.strip() == \
        "metricaccess.observability.ethos.io/x"
    assert "x" in kube.run("get", "monitoring", "-n", ns).stdout


def test_get_yaml_shows_defaults_and_last_applied(kube: Kubectl, ns: str) -> None:
    kube.run("apply", "-f", str(kube.write(f"{ns}/sample.yaml", _sample("x", ns))))
    obj = yaml.safe_load(kube.run("get", "ma", "x", "-n", ns, "-o", "yaml").stdout)
    assert obj["spec"] == {"metrics": ["up"], "mode": "read", "metricIsolation": True}
    assert obj["metadata"]["generation"] == 1
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]


def test_reapplying_a_changed_sample_updates_it(kube: Kubectl, ns: str) -> None:
    path = kube.write(f"{ns}/sample.yaml", _sample("x", ns))
    kube.run("apply", "-f", str(path))
    assert kube.run("apply", "-f", str(path)).stdout.strip().endswith("unchanged")
    kube.write(f"{ns}/sample.yaml", _sample("x", ns, metrics=["up", "http_.*"], mode="write"))
    assert kube.run("apply", "-f", str(path)).stdout.strip() == "metricaccess.observability.ethos.io/x configured"
    obj = yaml.safe_load(kube.run("get", "ma", "x", "-n", ns, "-o", "yaml").stdout)
    assert obj["spec"]["metrics"] == ["up", "http_.*"] and obj["spec"]["mode"] == "write"
    assert obj["metadata"]["generation"] == 2


def test_apply_refuses_invalid_and_unknown_fields(kube: Kubectl, ns: str) -> None:
    invalid = kube.run("apply", "-f", str(kube.write(f"{ns}/bad.yaml", _sample("bad", ns, mode="sideways"))),
                       check=False)
    assert invalid.returncode != 0
    assert 'spec.mode: Unsupported value: "sideways": supported values: "read", "write"' in invalid.stderr
    unknown = kube.run("apply", "-f", str(kube.write(f"{ns}/unknown.yaml", _sample("odd", ns, bogus=1))),
                       check=False)
    assert unknown.returncode != 0 and 'unknown field "spec.bogus"' in unknown.stderr


def test_apply_k_applies_a_kustomization(kube: Kubectl) -> None:
    namespace = f"kz-{uuid.uuid4().hex[:8]}"
    directory = f"kustomize-{namespace}"
    kube.write(f"{directory}/kustomization.yaml", {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": namespace,
        "labels": [{"pairs": {"app.kubernetes.io/part-of": "demo"}, "includeSelectors": False}],
        "resources": ["namespace.yaml", "access.yaml", "config.yaml"],
    })
    kube.write(f"{directory}/namespace.yaml", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": namespace}})
    kube.write(f"{directory}/access.yaml", _sample("from-kustomize"))
    kube.write(f"{directory}/config.yaml", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                                            "data": {"a": "1"}})
    applied = kube.run("apply", "-k", str(kube.workdir / directory)).stdout
    assert f"namespace/{namespace} created" in applied
    assert "metricaccess.observability.ethos.io/from-kustomize created" in applied
    assert "configmap/cfg created" in applied
    labelled = kube.run("get", "ma,cm", "-n", namespace, "-l", "app.kubernetes.io/part-of=demo", "-o", "name")
    assert labelled.stdout.split() == ["metricaccess.observability.ethos.io/from-kustomize", "configmap/cfg"]
    kube.write(f"{directory}/config.yaml", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                                            "data": {"a": "2", "b": "3"}})
    assert "configmap/cfg configured" in kube.run("apply", "-k", str(kube.workdir / directory)).stdout
    data = kube.run("get", "cm", "cfg", "-n", namespace, "-o", "jsonpath={.data}").stdout
    assert yaml.safe_load(data) == {"a": "2", "b": "3"}
    # a real server's namespace waits for a namespace controller that does not run here: do not wait for it
    waiting = ["--wait=false"] if kube.real_server else []
    deleted = kube.run("delete", "-k", str(kube.workdir / directory), *waiting)
    assert f'namespace "{namespace}" deleted' in deleted.stdout
    if kube.real_server:
        # no namespace controller runs beside the real server: the namespace stays Terminating
        phase = kube.run("get", "ns", namespace, "-o", "jsonpath={.status.phase}").stdout
        assert phase == "Terminating"
    else:
        assert kube.run("get", "ns", namespace, check=False).returncode != 0


def test_delete_removes_the_object(kube: Kubectl, ns: str) -> None:
    path = kube.write(f"{ns}/sample.yaml", _sample("x", ns))
    kube.run("apply", "-f", str(path))
    deleted = kube.run("delete", "-f", str(path)).stdout.strip()
    assert deleted.startswith('metricaccess.observability.ethos.io "x" deleted')  # 1.37 adds "from <ns> namespace"
    missing = kube.run("get", "ma", "x", "-n", ns, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr


def test_status_subresource_patch_through_kubectl(kube: Kubectl, ns: str) -> None:
    kube.run("apply", "-f", str(kube.write(f"{ns}/sample.yaml", _sample("x", ns))))
    kube.run("patch", "ma", "x", "-n", ns, "--subresource=status", "--type=merge", "-p",
             '{"status": {"validatedMetrics": 2, "conditions": [{"type": "Valid", "status": "True"}]}}')
    row = kube.run("get", "ma", "x", "-n", ns, "--no-headers").stdout.split()
    assert row[:4] == ["x", "read", "2", "True"]
