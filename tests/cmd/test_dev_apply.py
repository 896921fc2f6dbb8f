"""The dev applier keeps a directory's objects applied to the API server (the double, over HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
import yaml

from mtproxy.apidouble import ApiDouble, serve
from mtproxy.cmd.devapply import KINDS, DirectoryApplier, read_objects
from mtproxy.cmd.devkube import NAMESPACES, prepare_cluster
from mtproxy.controller import ClusterConfig, KubeClient, NotFound

MA = KINDS[("observability.ethos.io/v1alpha1", "MetricAccess")]
CONFIGMAPS = KINDS[("v1", "ConfigMap")]


def _access(name: str, namespace: str, metrics: list[str]) -> dict[str, object]:
    return {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": namespace, "metricIsolation": True, "metrics": metrics},
    }


def _namespace(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@pytest.fixture
async def kube(nursery: trio.Nursery) -> AsyncIterator[KubeClient]:
    url = await nursery.start(partial(serve, ApiDouble(), port=0))
    async with httpx.AsyncClient(base_url=url, trust_env=False) as http:
        client = KubeClient(http, config=ClusterConfig(host=url, verify=False, token=lambda: None))
        await prepare_cluster(client, namespaces=["mtproxy-system"])
        yield client


def _write(directory: Path, name: str, *documents: object) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump_all(documents))
    return path


async def test_first_pass_creates_namespaces_first_even_after_their_objects(kube: KubeClient, tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", _access("app", "team-x", ["up"]), _namespace("team-x"))
    applier = DirectoryApplier(kube, tmp_path)
    await applier.apply_directory()
    assert (await kube.get(MA, "team-x", "app"))["spec"]["metrics"] == ["up"]
    stats = applier.statistics()
    assert (stats.objects, stats.writes, stats.problems) == (2, 2, ())


async def test_unchanged_files_write_nothing_and_keep_the_generation(kube: KubeClient, tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", _namespace("team-x"), _access("app", "team-x", ["up"]))
    applier = DirectoryApplier(kube, tmp_path)
    await applier.apply_directory()
    before = await kube.get(MA, "team-x", "app")
    await applier.apply_directory()
    after = await kube.get(MA, "team-x", "app")
    assert applier.statistics().writes == 2
    assert after["metadata"]["generation"] == before["metadata"]["generation"]


async def test_an_edit_replaces_the_object_and_a_removal_deletes_it_but_never_a_namespace(
    kube: KubeClient, tmp_path: Path
) -> None:
    _write(tmp_path, "a.yaml", _namespace("team-x"), _access("app", "team-x", ["up"]))
    applier = DirectoryApplier(kube, tmp_path)
    await applier.apply_directory()
    _write(tmp_path, "a.yaml", _namespace("team-x"), _access("app", "team-x", ["up", "http_.*"]))
    await applier.apply_directory()
    changed = await kube.get(MA, "team-x", "app")
    assert changed["spec"]["metrics"] == ["up", "http_.*"]
    assert changed["metadata"]["generation"] == 2
    (tmp_path / "a.yaml").unlink()
    await applier.apply_directory()
    with pytest.raises(NotFound):
        await kube.get(MA, "team-x", "app")
    await kube.get(NAMESPACES, None, "team-x")


async def test_objects_made_by_someone_else_are_never_deleted(kube: KubeClient, tmp_path: Path) -> None:
    await kube.create(NAMESPACES, None, _namespace("team-y"))
    await kube.create(MA, "team-y", _access("by-kubectl", "team-y", ["up"]))
    applier = DirectoryApplier(kube, tmp_path)
    await applier.apply_directory()
    await kube.get(MA, "team-y", "by-kubectl")


async def test_problems_name_their_file_and_the_rest_is_applied(kube: KubeClient, tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("kind: MetricAccess\nspec:\n  metrics: [up\n")
    _write(tmp_path, "service.yaml", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}})
    _write(tmp_path, "refused.yaml", _namespace("team-z"), _access("bad", "team-z", []))
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "team-z"},
                  "data": {"k": "v"}}
    _write(tmp_path, "good.yaml", config_map)
    applier = DirectoryApplier(kube, tmp_path)
    await applier.apply_directory()
    problems = applier.statistics().problems
    assert any(p.startswith(f"{tmp_path / 'broken.yaml'}: line ") and "not YAML" in p for p in problems), problems
    assert any(p.startswith(f"{tmp_path / 'service.yaml'}: document 1: kind Service") for p in problems), problems
    assert any(p.startswith(f"{tmp_path / 'refused.yaml'}: metricaccesses/team-z/bad:") for p in problems), problems
    assert (await kube.get(CONFIGMAPS, "team-z", "c"))["data"] == {"k": "v"}


async def test_a_saved_edit_applies_while_running(kube: KubeClient, tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", _namespace("team-x"), _access("app", "team-x", ["up"]))
    applier = DirectoryApplier(kube, tmp_path, debounce_ms=50)
    async with trio.open_nursery() as nursery:
        await nursery.start(applier.run)
        _write(tmp_path, "a.yaml", _namespace("team-x"), _access("app", "team-x", ["app_up"]))
        with trio.fail_after(10):
            while (await kube.get(MA, "team-x", "app"))["spec"]["metrics"] != ["app_up"]:
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()


def test_the_dev_examples_hold_namespaces_and_metricaccesses_only() -> None:
    wanted, problems = read_objects(Path(__file__).resolve().parents[2] / "examples" / "dev")
    assert problems == []
    kinds = [w.key[0].plural for w in wanted]
    assert kinds == ["namespaces", "namespaces", "metricaccesses", "metricaccesses", "metricaccesses"]
