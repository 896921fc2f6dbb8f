"""Tests for cmd/enforce.py: ``mtproxy enforce`` applies the service's guardrails and says what they deny."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from realservers.mtproxy import MTPROXY_BINARY
from survival import assert_no_signal, run_command

from mtproxy.api import GuardrailsConfig
from mtproxy.cmd.enforce import run_enforce


def _access(namespace: str, name: str, metrics: list[str], *, isolation: bool) -> dict[str, Any]:
    return {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": namespace, "metricIsolation": isolation, "metrics": metrics},
    }


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    isolated = tmp_path / "app.yaml"
    isolated.write_text(yaml.safe_dump(_access("team-a", "app", ["up"], isolation=True)))
    open_ = tmp_path / "open.yaml"
    open_.write_text(yaml.safe_dump(_access("team-a", "open", ["node_load1"], isolation=False)))
    return [str(isolated), str(open_)]


def _enforce(files: list[str], query: str, *, guardrails: GuardrailsConfig | None = None) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = run_enforce("team-a", files, query, endpoint="query", out=out, guardrails=guardrails)
    return status, out.getvalue().splitlines()


def test_by_default_an_unisolated_object_is_reported_as_denied_and_grants_nothing(files: list[str]) -> None:
    status, lines = _enforce(files, "node_load1")
    assert status == 0
    assert lines[0].startswith("denied: team-a/open: metricIsolation: false is not allowed")
    assert "guardrails.require_isolation" in lines[0]
    assert lines[1:] == ['{__name__="node_load1",__name__!~"(?s:.*)"}']  # a selector that matches nothing


def test_guardrails_that_allow_the_namespace_let_the_object_grant(files: list[str]) -> None:
    guardrails = GuardrailsConfig(unisolated_namespaces=("team-a",))
    status, lines = _enforce(files, "node_load1", guardrails=guardrails)
    assert status == 0
    assert lines == ['{__name__="node_load1"}']


def test_the_config_flag_reads_the_guardrails_of_the_services_config(tmp_path: Path, files: list[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"guardrails": {"require_isolation": False}}))
    argv = [str(MTPROXY_BINARY), "enforce", "--namespace", "team-a", "--config", str(config), "--access", *files]
    completed = run_command([*argv, "node_load1"])
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ['{__name__="node_load1"}']
    config.write_text("guardrails: {require_isolation: 1}\n")
    completed = run_command([*argv, "node_load1"])
    assert completed.returncode == 2
    assert "guardrails.require_isolation" in completed.stderr


@pytest.mark.parametrize("endpoint", ["query", "series"])
def test_deep_query_or_selector_is_a_refusal_not_a_crash(files: list[str], endpoint: str) -> None:
    argv = [str(MTPROXY_BINARY), "enforce", "--namespace", "team-a", "--endpoint", endpoint, "--access", *files]
    completed = run_command([*argv, "--", "-" * 9000 + "up"])
    assert_no_signal(completed, what="mtproxy enforce")
    assert completed.returncode == 1
    assert "refused (400 bad_data)" in completed.stdout
    assert "more than the 500 allowed" in completed.stdout
