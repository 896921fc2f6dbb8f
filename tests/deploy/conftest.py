"""Fixtures of the deployment tests: the rendered manifests, the built kubectl, an API server.

``deploy_apiserver`` is a kube-apiserver of the session's control plane for these tests
alone: the RBAC proof runs the service watching every namespace and binds cluster-wide
roles, which must not meet the objects of the suites sharing ``kube_apiserver``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubetesting import load_crd
from realservers.kubeapiserver import ControlPlane, RunningKubeApiserver
from realservers.testbin import Program, require

REPO = Path(__file__).resolve().parents[2]


def kustomize(kubectl: Path, directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIRECTORY`` as documents (fails the test when it does not render)."""
    completed = subprocess.run([str(kubectl), "kustomize", str(directory)], capture_output=True, text=True,
                               timeout=60, check=False)
    assert completed.returncode == 0, f"kubectl kustomize {directory} failed: {completed.stderr}"
    return [d for d in yaml.safe_load_all(completed.stdout) if d]


@pytest.fixture(scope="session")
def kubectl_binary() -> Path:
    """The kubectl ``make testbin`` built (skips when missing, fails in CI)."""
    return require(Program.KUBECTL)


@pytest.fixture(scope="session")
def rendered(kubectl_binary: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize config/default``."""
    return kustomize(kubectl_binary, REPO / "config" / "default")


@pytest.fixture(scope="session")
def deploy_apiserver(kube_control_plane: ControlPlane) -> RunningKubeApiserver:
    """A kube-apiserver of these tests' own, with the generated CRD."""
    return kube_control_plane.apiserver("deploy", crds=[load_crd()])
