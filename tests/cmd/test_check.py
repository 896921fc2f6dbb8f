"""Tests for cmd/check.py: ``mtproxy check`` output, exit status, and that no input crashes it."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from realservers.mtproxy import MTPROXY_BINARY
from survival import assert_no_signal, run_command

from mtproxy.api import Config, load_config, parse_config
from mtproxy.cmd.check import CheckResult, check_files, check_text

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_FILES = sorted((REPO / "examples").rglob("*.yaml")) + sorted(
    p for p in (REPO / "config" / "samples").glob("*.yaml") if p.name != "kustomization.yaml"
)

VALID: dict[str, Any] = {
    "apiVersion": "observability.ethos.io/v1alpha1",
    "kind": "MetricAccess",
    "metadata": {"name": "my-app-metrics", "namespace": "my-team"},
    "spec": {
        "source": "my-team",
        "metrics": ["up", "http_.*", '{job="a"}'],
        "remoteWrite": {
            "enabled": True,
            "interval": "30s",
            "target": {"type": "prometheus"},
            "prometheus": {"serviceName": "prometheus", "servicePort": 9090},
        },
    },
}


def _run(tmp_path: Path, files: dict[str, str | bytes]) -> tuple[int, list[str], list[str]]:
    """Write ``files``, check them in order, and return (status, output lines, paths)."""
    paths = []
    for name, content in files.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        paths.append(str(path))
    out = io.StringIO()
    status = check_files(paths, out=out)
    return status, out.getvalue().splitlines(), paths


def _manifest(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    for dotted, value in changes.items():
        node: Any = document
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return document


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_example_passes_with_ok_and_exit_0(path: Path) -> None:
    out = io.StringIO()
    assert check_files([str(path)], out=out) == 0
    assert out.getvalue() == f"OK {path}\n"


EXAMPLES_NEEDING_CONFIG: dict[str, dict[str, Any]] = {
    "examples/isolation-debug-tenant.yaml": {"guardrails": {"unisolated_namespaces": ["debug-tenant"]}},
    "examples/remote-write-endpoint.yaml": {
        "guardrails": {"remote_write_url_allowlist": ["https://external-prometheus.example.com/"]}
    },
}
"""Examples the default config denies, and the config each needs (which its comment must name)."""


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_example_passes_the_default_guardrails_or_says_which_config_it_needs(path: Path) -> None:
    needed = EXAMPLES_NEEDING_CONFIG.get(str(path.relative_to(REPO)))
    out = io.StringIO()
    if needed is None:
        assert check_files([str(path)], out=out, config=Config()) == 0, out.getvalue()
        return
    assert check_files([str(path)], out=out, config=Config()) == 1
    assert "denied by the guardrails (PolicyDenied)" in out.getvalue()
    comments = "\n".join(line for line in path.read_text().splitlines() if line.lstrip().startswith("#"))
    for key in needed["guardrails"]:
        assert key in comments, f"{path.name} does not say it needs guardrails.{key}"
    assert check_files([str(path)], out=io.StringIO(), config=parse_config(needed).config) == 0


def test_examples_cover_both_target_layouts_of_the_readme() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    assert {"quickstart-my-app.yaml", "quickstart-my-app-nested-target.yaml", "config.yaml"} <= names


def test_a_bad_manifest_prints_file_document_object_and_field_path_and_exits_1(tmp_path: Path) -> None:
    text = yaml.safe_dump(_manifest(spec__remoteWrite__interval="1s"))
    status, lines, (path,) = _run(tmp_path, {"bad.yaml": text})
    assert status == 1
    assert len(lines) == 1
    assert lines[0].startswith(
        f"{path}: document 1 (my-team/my-app-metrics): spec.remoteWrite.interval: must be a duration between 5s and "
    )


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    text = yaml.safe_dump(_manifest(spec__metricIsolation="yes", spec__source=""))
    status, lines, (path,) = _run(tmp_path, {"bad.yaml": text})
    assert status == 1
    assert sorted(lines) == [
        f"{path}: document 1 (my-team/my-app-metrics): spec.metricIsolation: must be a boolean (true or false)",
        f"{path}: document 1 (my-team/my-app-metrics): spec.source: shorter than minimum length 1",
    ]


def test_the_document_number_and_name_locate_the_bad_object_in_a_multi_document_file(tmp_path: Path) -> None:
    other = _manifest(metadata__name="second", spec__remoteWrite__target={"type": "kafka"})
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}
    text = yaml.safe_dump_all([VALID, service, other])
    status, lines, (path,) = _run(tmp_path, {"multi.yaml": text})
    assert status == 1
    assert lines == [
        f"{path}: document 3 (my-team/second): spec.remoteWrite.target.type: "
        "must be one of: prometheus, pushgateway, remote_write"
    ]


def test_a_manifest_without_namespace_is_named_by_its_name_alone(tmp_path: Path) -> None:
    document = _manifest(spec__metrics=[])
    del document["metadata"]["namespace"]
    status, lines, (path,) = _run(tmp_path, {"bad.yaml": yaml.safe_dump(document)})
    assert (status, lines) == (1, [f"{path}: document 1 (my-app-metrics): spec.metrics: shorter than minimum length 1"])


def test_documents_of_other_kinds_are_passed_over(tmp_path: Path) -> None:
    text = yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}, VALID])
    status, lines, (path,) = _run(tmp_path, {"mixed.yaml": text})
    assert (status, lines) == (0, [f"OK {path}"])


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("kind: MetricAccess\nspec:\n  metrics: [up\n", 4, id="unclosed-sequence"),
        pytest.param("kind: MetricAccess\nspec:\n  source: a\n metrics: []\n", 4, id="bad-indentation"),
        pytest.param("kind: MetricAccess\n\tspec: {}\n", 2, id="tab"),
        pytest.param("a: b: c\n", 1, id="mapping-in-plain-scalar"),
    ],
)
def test_malformed_yaml_names_the_line_and_exits_1(tmp_path: Path, text: str, line: int) -> None:
    status, lines, (path,) = _run(tmp_path, {"broken.yaml": text})
    assert status == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}: line {line}, column ")
    assert "invalid YAML" in lines[0]


def test_a_config_with_ignored_keys_prints_warnings_and_exits_0(tmp_path: Path) -> None:
    text = "proxy:\n  listen_address: ':8080'\nlogging:\n  level: info\nremote_write:\n  enabled: true\n"
    status, lines, (path,) = _run(tmp_path, {"config.yaml": text})
    assert status == 0
    assert lines == [
        f"{path}: warning: proxy.listen_address: accepted for compatibility but has no effect; remove it",
        f"{path}: warning: logging: accepted for compatibility but has no effect; remove it",
        f"OK {path}",
    ]


def test_a_bad_config_prints_dotted_paths_and_exits_1(tmp_path: Path) -> None:
    status, lines, (path,) = _run(tmp_path, {"config.yaml": "proxy:\n  enable_caching: 'yes'\n  bogus: 1\n"})
    assert status == 1
    assert lines == [
        f"{path}: proxy.bogus: unknown field",
        f"{path}: proxy.enable_caching: must be a boolean (true or false)",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("", "file has no YAML document", id="empty"),
        pytest.param("---\n---\n", "file has no YAML document", id="only-separators"),
        pytest.param("kind: Service\n", "no MetricAccess document, and not a config file", id="other-kind"),
        pytest.param("a: 1\n---\nb: 2\n", "no MetricAccess document, and not a config file", id="two-kindless-docs"),
        pytest.param("- a\n", "document 1: not a mapping", id="list"),
        pytest.param(b"kind: \xff\xfe\n", "not UTF-8 text", id="not-utf8"),
    ],
)
def test_a_file_that_is_neither_manifest_nor_config_is_refused(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    status, lines, (path,) = _run(tmp_path, {"odd.yaml": content})
    assert (status, lines) == (1, [f"{path}: {message}"])


def test_a_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    out = io.StringIO()
    path = tmp_path / "missing.yaml"
    assert check_files([str(path)], out=out) == 1
    assert out.getvalue() == f"{path}: cannot read: No such file or directory\n"


def test_one_bad_file_fails_the_run_and_the_good_ones_still_print_ok(tmp_path: Path) -> None:
    status, lines, (good, bad, good2) = _run(
        tmp_path,
        {"a.yaml": yaml.safe_dump(VALID), "b.yaml": "kind: Service\n", "c.yaml": yaml.safe_dump(VALID)},
    )
    assert status == 1
    assert lines == [f"OK {good}", f"{bad}: no MetricAccess document, and not a config file", f"OK {good2}"]


def test_check_text_returns_problems_and_warnings_separately() -> None:
    assert check_text(yaml.safe_dump(VALID)) == CheckResult()
    result = check_text("health: {}\n")
    assert result.problems == ()
    assert result.warnings == ("health: accepted for compatibility but has no effect; remove it",)


@pytest.mark.parametrize(
    "text", [pytest.param("[" * 5000, id="open-brackets"), pytest.param("a: " + "[" * 5000 + "]" * 5000, id="nested")]
)
def test_deeply_nested_yaml_is_a_problem_not_a_crash(text: str) -> None:
    assert check_text(text).problems


# --- nothing crashes -----------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "apiVersion",
        "kind",
        "metadata",
        "name",
        "namespace",
        "spec",
        "status",
        "source",
        "metrics",
        "labelSelectors",
        "metricIsolation",
        "remoteWrite",
        "enabled",
        "interval",
        "target",
        "type",
        "prometheus",
        "pushgateway",
        "serviceName",
        "servicePort",
        "replicas",
        "statefulSetName",
        "jobName",
        "url",
        "basicAuth",
        "passwordSecret",
        "key",
        "value",
        "headers",
        "extraLabels",
        "metricRelabelings",
        "action",
        "regex",
        "sourceLabels",
        "targetLabel",
        "modulus",
        "conditions",
        "discovery",
        "kubernetes",
        "port",
        "proxy",
        "remote_write",
        "collection_interval",
        "default_interval",
        "auth",
        "apikey",
        "static_keys",
        "tenants",
        "files",
        "logging",
        "_schema",
        "MetricAccess",
        "observability.ethos.io/v1alpha1",
    ]
)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False), _KEYS, st.text(max_size=10)
)
_TREES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(_KEYS, st.integers(0, 3), st.booleans()), children, max_size=5),
    ),
    max_leaves=25,
)
_GRAFT_POINTS = [
    ("metadata",),
    ("metadata", "name"),
    ("spec",),
    ("spec", "metrics"),
    ("spec", "labelSelectors"),
    ("spec", "remoteWrite"),
    ("spec", "remoteWrite", "target"),
    ("spec", "remoteWrite", "prometheus"),
    ("spec", "remoteWrite", "metricRelabelings"),
    ("spec", "remoteWrite", "remoteWrite"),
    ("status",),
]


def _graft(tree: Any, where: tuple[str, ...]) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    node: Any = document
    for key in where[:-1]:
        node = node.setdefault(key, {})
    node[where[-1]] = tree
    return document


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.text())
def test_check_text_never_raises_on_arbitrary_text(text: str) -> None:
    assert isinstance(check_text(text), CheckResult)


@_FUZZ
@given(_TREES)
def test_check_text_never_raises_on_arbitrary_yaml_structures(tree: Any) -> None:
    assert isinstance(check_text(yaml.safe_dump(tree)), CheckResult)


@_FUZZ
@given(_TREES, st.sampled_from(_GRAFT_POINTS))
def test_check_text_never_raises_on_a_manifest_with_an_arbitrary_subtree(tree: Any, where: tuple[str, ...]) -> None:
    result = check_text(yaml.safe_dump(_graft(tree, where)))
    assert all(isinstance(p, str) and p for p in result.problems)


@_FUZZ
@given(st.dictionaries(st.sampled_from(["discovery", "proxy", "remote_write", "auth", "tenants", "logging"]), _TREES))
def test_check_text_never_raises_on_arbitrary_config_sections(config: dict[str, Any]) -> None:
    assert isinstance(check_text(yaml.safe_dump(config) if config else "proxy: {}\n"), CheckResult)


@_FUZZ
@given(st.lists(_TREES, max_size=3))
def test_check_text_never_raises_on_arbitrary_multi_document_files(documents: list[Any]) -> None:
    assert isinstance(check_text(yaml.safe_dump_all(documents)), CheckResult)


# --- deep patterns: a validation problem, never a crash (run as the real command) --------------


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param("-" * 9000 + "up", id="unary-chain-as-a-regex-entry"),
        pytest.param("-" * 9000 + 'up{job="a"}', id="unary-chain-before-a-selector"),
        pytest.param("^".join(['{job="a"}'] * 1500), id="power-chain-of-selectors"),
    ],
)
def test_mtproxy_check_on_a_pattern_too_deep_to_parse_exits_1_naming_spec_metrics(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(yaml.safe_dump(_manifest(spec__metrics=[entry, "up"])))
    completed = run_command([str(MTPROXY_BINARY), "check", str(path)])
    assert_no_signal(completed, what="mtproxy check")
    assert completed.returncode == 1, completed.stdout + completed.stderr
    (line,) = completed.stdout.splitlines()
    assert line.startswith(f"{path}: document 1 (my-team/my-app-metrics): spec.metrics[0]: has ")
    assert line.endswith("operators and brackets, more than the 500 allowed")


# --- --config: what the service's guardrails would deny ------------------------------------------

ISOLATED = _manifest(spec__metricIsolation=True)


def _write(tmp_path: Path, name: str, document: Any) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return str(path)


def _check_with_config(tmp_path: Path, config: dict[str, Any], *documents: Any) -> tuple[int, list[str], list[str]]:
    config_path = _write(tmp_path, "config.yaml", config)
    paths = [_write(tmp_path, f"ma{index}.yaml", document) for index, document in enumerate(documents)]
    out = io.StringIO()
    status = check_files(paths, out=out, config=load_config(config_path).config)
    return status, out.getvalue().splitlines(), paths


def test_with_the_default_config_an_unisolated_object_is_reported_as_the_service_denies_it(tmp_path: Path) -> None:
    status, lines, (path,) = _check_with_config(tmp_path, {}, VALID)
    assert status == 1
    assert lines == [
        f"{path}: document 1 (my-team/my-app-metrics): denied by the guardrails (PolicyDenied): "
        "metricIsolation: false is not allowed in this namespace (guardrails.require_isolation; "
        "ask the platform team to list it in guardrails.unisolated_namespaces)"
    ]


def test_a_namespace_listed_as_unisolated_passes_with_config(tmp_path: Path) -> None:
    config = {"guardrails": {"unisolated_namespaces": ["my-team"]}}
    status, lines, (path,) = _check_with_config(tmp_path, config, VALID)
    assert (status, lines) == (0, [f"OK {path}"])


def test_without_config_only_the_spec_is_checked(tmp_path: Path) -> None:
    status, lines, (path,) = _run(tmp_path, {"ma.yaml": yaml.safe_dump(VALID)})
    assert (status, lines) == (0, [f"OK {path}"])


@pytest.mark.parametrize(
    ("changes", "config", "fragment"),
    [
        pytest.param(
            {"spec__remoteWrite__prometheus": {"serviceName": "prometheus", "targetNamespace": "other"}},
            {},
            "prometheus.targetNamespace 'other' is another namespace (guardrails.allow_foreign_target_namespace",
            id="foreign-target-namespace",
        ),
        pytest.param(
            {
                "spec__remoteWrite__target": {"type": "remote_write"},
                "spec__remoteWrite__remoteWrite": {"url": "https://elsewhere.example/api/v1/write"},
            },
            {"guardrails": {"remote_write_url_allowlist": ["https://metrics.example/"]}},
            "remoteWrite.url 'https://elsewhere.example/api/v1/write' is not allowed",
            id="url-not-allowlisted",
        ),
    ],
)
def test_forwarding_the_guardrails_refuse_is_reported_with_config(
    tmp_path: Path, changes: dict[str, Any], config: dict[str, Any], fragment: str
) -> None:
    document = copy.deepcopy(ISOLATED)
    for dotted, value in changes.items():
        node: Any = document
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    status, lines, (path,) = _check_with_config(tmp_path, config, document)
    assert status == 1
    (line,) = lines
    assert line.startswith(f"{path}: document 1 (my-team/my-app-metrics): denied by the guardrails (PolicyDenied): ")
    assert fragment in line


def test_the_same_forwarding_passes_when_the_config_allows_it(tmp_path: Path) -> None:
    document = copy.deepcopy(ISOLATED)
    document["spec"]["remoteWrite"]["prometheus"]["targetNamespace"] = "other"
    config = {"guardrails": {"allow_foreign_target_namespace": True}}
    status, lines, (path,) = _check_with_config(tmp_path, config, document)
    assert (status, lines) == (0, [f"OK {path}"])


def test_mtproxy_check_with_config_flag_reports_denials_and_a_bad_config_exits_2(tmp_path: Path) -> None:
    manifest = _write(tmp_path, "ma.yaml", VALID)
    good_config = _write(tmp_path, "config.yaml", {"guardrails": {"require_isolation": True}})
    completed = run_command([str(MTPROXY_BINARY), "check", "--config", good_config, manifest])
    assert completed.returncode == 1, completed.stderr
    assert "denied by the guardrails (PolicyDenied)" in completed.stdout
    bad_config = _write(tmp_path, "bad.yaml", {"guardrails": {"require_isolation": "yes"}})
    completed = run_command([str(MTPROXY_BINARY), "check", "--config", bad_config, manifest])
    assert completed.returncode == 2
    assert f"{bad_config}: guardrails.require_isolation: must be a boolean" in completed.stderr
