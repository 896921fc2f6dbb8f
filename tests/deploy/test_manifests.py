"""The manifests of config/ as a real API server sees them.

``kubectl kustomize config/default`` (the built kubectl) renders what the README and the
issue promise; every object it renders, the optional NetworkPolicy and the samples are
accepted by a real kube-apiserver with a server-side dry run (the Namespace and the CRD
created for real first, as ``kubectl apply`` would order them); and the Deployment's pods
pass the ``restricted`` Pod Security Standard: in a namespace enforcing it, a Pod made from
the template is admitted, and the Deployment draws no PodSecurity warning. A pod template
missing one setting is refused there, and its Deployment warned about, which proves the
admission is on. ``make deploy IMG=…`` sets the image.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy.conftest import REPO, kustomize
from realservers.kubeapiserver import RunningKubeApiserver

from mtproxy.api import parse_config

pytestmark = pytest.mark.slow

NAME = "prometheus-multi-tenant-proxy"
NAMESPACE = "monitoring"
RESTRICTED = "pss-restricted"


def _one(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} rendered"
    return found[0]


def _kubectl(server: RunningKubeApiserver, *args: str, documents: list[dict[str, Any]] | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    kubectl = server.kubectl_binary
    assert kubectl is not None
    text = yaml.safe_dump_all(documents, sort_keys=False) if documents is not None else None
    completed = subprocess.run([str(kubectl), f"--kubeconfig={server.kubeconfig_path}", *args], input=text,
                               capture_output=True, text=True, timeout=60, check=False)
    if check:
        assert completed.returncode == 0, f"kubectl {' '.join(args)}: {completed.stderr}{completed.stdout}"
    return completed


# -- what renders --------------------------------------------------------------------------------------


def test_default_renders_the_service_and_nothing_else(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in rendered)
    config_map = _one(rendered, "ConfigMap")["metadata"]["name"]
    assert config_map.startswith(f"{NAME}-"), "the config ConfigMap's name carries its content hash"
    assert kinds == sorted([
        ("Namespace", NAMESPACE),
        ("CustomResourceDefinition", "metricaccesses.observability.ethos.io"),
        ("ServiceAccount", NAME),
        ("ClusterRole", NAME), ("ClusterRoleBinding", NAME),
        ("ClusterRole", f"{NAME}-kubernetes-auth"), ("ClusterRoleBinding", f"{NAME}-kubernetes-auth"),
        ("Role", f"{NAME}-leader-election"), ("RoleBinding", f"{NAME}-leader-election"),
        ("ConfigMap", config_map), ("Service", NAME), ("Deployment", NAME), ("PodDisruptionBudget", NAME),
    ])
    for document in rendered:
        if document["kind"] not in ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"):
            assert document["metadata"].get("namespace") == NAMESPACE, document["metadata"]


def test_the_rendered_crd_is_the_generated_one(rendered: list[dict[str, Any]]) -> None:
    generated = yaml.safe_load((REPO / "config/crd/bases/observability.ethos.io_metricaccesses.yaml").read_text())
    assert _one(rendered, "CustomResourceDefinition") == generated


def test_token_and_access_reviews_come_only_from_the_kubernetes_auth_component(
    kubectl_binary: Path, rendered: list[dict[str, Any]]
) -> None:
    def review_rules(documents: list[dict[str, Any]]) -> list[str]:
        return [f"{d['metadata']['name']}: {rule['resources']}" for d in documents if d["kind"] == "ClusterRole"
                for rule in d["rules"] if set(rule["resources"]) & {"tokenreviews", "subjectaccessreviews"}]

    assert review_rules(kustomize(kubectl_binary, REPO / "config" / "rbac")) == []
    assert review_rules(rendered) == [f"{NAME}-kubernetes-auth: ['tokenreviews']",
                                      f"{NAME}-kubernetes-auth: ['subjectaccessreviews']"]
    config = yaml.safe_load(_one(rendered, "ConfigMap")["data"]["config.yaml"])
    assert config["auth"]["type"] == "kubernetes", "config/default includes the component for this auth type"


def test_the_config_map_holds_a_valid_config_for_kubernetes_mode(rendered: list[dict[str, Any]]) -> None:
    text = _one(rendered, "ConfigMap")["data"]["config.yaml"]
    assert text == (REPO / "config" / "manager" / "config.yaml").read_text()
    loaded = parse_config(yaml.safe_load(text))
    assert loaded.config.remote_write.enabled
    assert loaded.config.guardrails.require_isolation


def test_the_deployment_is_what_the_issue_asks_for(rendered: list[dict[str, Any]]) -> None:
    deployment = _one(rendered, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["serviceAccountName"] == NAME
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 65534
    probes = {kind: container[kind] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert probes["startupProbe"]["httpGet"]["path"] == "/-/healthy"
    for kind, probe in probes.items():
        assert {"periodSeconds", "timeoutSeconds", "failureThreshold"} <= probe.keys(), kind
    assert container["resources"]["requests"].keys() == {"cpu", "memory"}
    assert "memory" in container["resources"]["limits"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    assert "--port=8080" in container["args"] and "--leader-elect=true" in container["args"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == _one(rendered, "ConfigMap")["metadata"]["name"]

    service = _one(rendered, "Service", NAME)
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    budget = _one(rendered, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


# -- what a real API server accepts ----------------------------------------------------------------------


def test_every_rendered_object_is_accepted_by_the_api_server(
    deploy_apiserver: RunningKubeApiserver, rendered: list[dict[str, Any]], kubectl_binary: Path
) -> None:
    first = [d for d in rendered if d["kind"] in ("Namespace", "CustomResourceDefinition")]
    _kubectl(deploy_apiserver, "apply", "--server-side", "--force-conflicts", "-f", "-", documents=first)
    _kubectl(deploy_apiserver, "wait", "--for=condition=Established", "--timeout=30s",
             "crd/metricaccesses.observability.ethos.io")
    extra = kustomize(kubectl_binary, REPO / "config" / "network-policy")
    completed = _kubectl(deploy_apiserver, "apply", "--dry-run=server", "-f", "-", documents=rendered + extra)
    accepted = [line for line in completed.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(rendered) + len(extra), completed.stdout


def test_the_samples_are_accepted_by_the_api_server(
    deploy_apiserver: RunningKubeApiserver, kubectl_binary: Path
) -> None:
    samples = kustomize(kubectl_binary, REPO / "config" / "samples")
    namespaces = sorted({d["metadata"]["namespace"] for d in samples})
    _kubectl(deploy_apiserver, "apply", "-f", "-",
             documents=[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces])
    completed = _kubectl(deploy_apiserver, "apply", "--dry-run=server", "-f", "-", documents=samples)
    assert completed.stdout.count("(server dry run)") == len(samples), completed.stdout


def _restricted_namespace(server: RunningKubeApiserver) -> str:
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
    labels |= {f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "warn", "audit")}
    _kubectl(server, "apply", "-f", "-", documents=[
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RESTRICTED, "labels": labels}}])
    return RESTRICTED


def _in_namespace(document: dict[str, Any], namespace: str) -> dict[str, Any]:
    out = copy.deepcopy(document)
    out["metadata"]["namespace"] = namespace
    return out


def _pod_of(deployment: dict[str, Any], namespace: str) -> dict[str, Any]:
    template = deployment["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "from-template", "namespace": namespace, "labels": template["metadata"]["labels"]},
            "spec": copy.deepcopy(template["spec"])}


def _without_seccomp(deployment: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(deployment)
    pod = out["spec"]["template"]["spec"]
    pod["securityContext"].pop("seccompProfile")
    for container in pod["containers"]:
        container["securityContext"].pop("seccompProfile", None)
    return out


def test_the_deployment_passes_the_restricted_pod_security_standard(
    deploy_apiserver: RunningKubeApiserver, rendered: list[dict[str, Any]]
) -> None:
    namespace = _restricted_namespace(deploy_apiserver)
    deployment = _in_namespace(_one(rendered, "Deployment"), namespace)

    admitted = _kubectl(deploy_apiserver, "create", "--dry-run=server", "-f", "-",
                        documents=[_pod_of(deployment, namespace)], check=False)
    assert admitted.returncode == 0, f"a pod of the template was refused: {admitted.stderr}"
    warned = _kubectl(deploy_apiserver, "create", "--dry-run=server", "-f", "-", documents=[deployment])
    assert "PodSecurity" not in warned.stderr, warned.stderr

    # the controls: one setting less, and the same server refuses the pod and warns about the Deployment
    weaker = _without_seccomp(deployment)
    refused = _kubectl(deploy_apiserver, "create", "--dry-run=server", "-f", "-",
                       documents=[_pod_of(weaker, namespace)], check=False)
    assert refused.returncode != 0 and 'violates PodSecurity "restricted' in refused.stderr, refused.stderr
    warned = _kubectl(deploy_apiserver, "create", "--dry-run=server", "-f", "-", documents=[weaker])
    assert 'would violate PodSecurity "restricted' in warned.stderr, warned.stderr


def test_make_deploy_sets_the_image_from_img(deploy_apiserver: RunningKubeApiserver, tmp_path: Path) -> None:
    kubectl = deploy_apiserver.kubectl_binary
    image = "registry.example.com:5000/team/mtproxy:1.2.3"
    # a dry run creates no namespace, so the namespaced objects need it to exist already
    _kubectl(deploy_apiserver, "apply", "-f", "-",
             documents=[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
    completed = subprocess.run(
        ["make", "-s", "--no-print-directory", "-C", str(REPO), "deploy", f"IMG={image}", f"DEPLOY_DIR={tmp_path}",
         f"KUBECTL={kubectl} --kubeconfig={deploy_apiserver.kubeconfig_path}", "DEPLOY_ARGS=--dry-run=server -o json"],
        capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    listed = json.loads(completed.stdout)
    (deployment,) = [d for d in listed["items"] if d["kind"] == "Deployment"]
    assert [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]] == [image]
