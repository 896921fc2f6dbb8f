"""``kubectl apply -f examples/`` works as the README says: Namespaces included, no config among manifests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubetesting import CRD_PATH
from realservers.testbin import Program, in_ci, locate

from mtproxy.apidouble import RunningDouble, start_in_thread

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _kubectl_binary() -> str:
    found = shutil.which("kubectl")
    if found is not None:
        return found
    located = locate(Program.KUBECTL)
    if located.present:
        return str(located.path)
    if in_ci():
        pytest.fail("CI=true and no kubectl (on PATH or built by make testbin)")
    pytest.skip("no kubectl on PATH and none built by make testbin")


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[list[str]]:
    binary = _kubectl_binary()
    double: RunningDouble = start_in_thread()
    try:
        kubeconfig = double.write_kubeconfig(tmp_path / "kubeconfig")
        command = [binary, f"--kubeconfig={kubeconfig}", f"--cache-dir={tmp_path / 'cache'}"]
        subprocess.run([*command, "apply", "-f", str(CRD_PATH)], check=True, capture_output=True, timeout=60)
        subprocess.run([*command, "wait", "--for=condition=Established", "--timeout=30s",
                        "crd/metricaccesses.observability.ethos.io"], check=True, capture_output=True, timeout=60)
        yield command
    finally:
        double.stop()


def _metricaccess_keys(*paths: Path) -> set[str]:
    keys = set()
    for path in paths:
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "MetricAccess":
                keys.add(f"{document['metadata']['namespace']}/{document['metadata']['name']}")
    return keys


def test_kubectl_apply_of_the_examples_directory_creates_every_object(kubectl: list[str]) -> None:
    applied = subprocess.run([*kubectl, "apply", "-f", str(EXAMPLES)], capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    listed = subprocess.run([*kubectl, "get", "ma", "-A", "-o", "jsonpath={range .items[*]}"
                             "{.metadata.namespace}/{.metadata.name}{'\\n'}{end}"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert set(listed.stdout.split()) == _metricaccess_keys(*sorted(EXAMPLES.glob("*.yaml")))


def test_kubectl_apply_of_the_dev_objects_recursively_works_too(kubectl: list[str]) -> None:
    applied = subprocess.run([*kubectl, "apply", "-R", "-f", str(EXAMPLES / "dev")], capture_output=True, text=True,
                             timeout=60)
    assert applied.returncode == 0, applied.stderr
    assert "metricaccess.observability.ethos.io/team-b-health created" in applied.stdout


def test_the_service_config_example_is_kept_apart_from_the_manifests() -> None:
    for path in EXAMPLES.glob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            assert document is None or {"apiVersion", "kind"} <= set(document), path
    assert (EXAMPLES / "config" / "config.yaml").is_file()
