"""mtproxy relabel: rules from a list or a MetricAccess, text and JSON, input order kept."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from mtproxy.cmd.relabel import load_rules, run_relabel

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "metric-relabelings.yaml"


def _run(rules: str, text: str, *, output_format: str = "text") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_relabel(rules, stdin=io.StringIO(text), stdout=out, stderr=err, output_format=output_format)
    return status, out.getvalue(), err.getvalue()


def test_metricaccess_rules_apply_in_input_order_and_drop() -> None:
    text = (
        'kubelet_running_pods{namespace="my-team"} 3\n'
        "# HELP ignored\n"
        'container_cpu_usage_seconds_total{pod="a",namespace="my-team"} 1.5 1700000000000\n'
        'etcd_debugging_store{namespace="my-team"} 1\n'
    )
    status, out, err = _run(EXAMPLE.read_text(), text)
    assert status == 0
    assert out.splitlines() == [
        'kubelet_running_pods{metrics_path="/metrics",namespace="my-team"} 3',
        'container_cpu_usage_seconds_total{metrics_path="/metrics/cadvisor",namespace="my-team",pod="a"} 1.5 '
        "1700000000000",
    ]
    assert err == "mtproxy relabel: 3 series read, 1 dropped by the rules, 2 written\n"


def _access(**remote_write: object) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "observability.ethos.io/v1alpha1",
            "kind": "MetricAccess",
            "metadata": {"name": "app", "namespace": "team-a"},
            "spec": {
                "source": "team-a",
                "metricIsolation": True,
                "metrics": ["http_.*", 'app_up{job="api"}'],
                "remoteWrite": {
                    "enabled": True,
                    "target": {"type": "prometheus"},
                    "prometheus": {"serviceName": "prometheus", "servicePort": 9090},
                    **remote_write,
                },
            },
        }
    )


def test_a_metricaccess_forwards_only_what_its_metrics_and_isolation_select() -> None:
    text = (
        'http_requests_total{namespace="team-a"} 1\n'
        'http_requests_total{namespace="team-b"} 2\n'
        'app_up{namespace="team-a",job="api"} 1\n'
        'app_up{namespace="team-a",job="db"} 1\n'
        'node_cpu_seconds_total{node="n1"} 5\n'
    )
    status, out, err = _run(_access(), text)
    assert status == 0
    assert out.splitlines() == ['http_requests_total{namespace="team-a"} 1', 'app_up{job="api",namespace="team-a"} 1']
    assert err.startswith("mtproxy relabel: 5 series read, 3 not selected by spec.metrics (")
    assert 'namespace="team-a"' in err and err.endswith(", 2 written\n")


@pytest.mark.parametrize(
    ("honor", "expected"),
    [
        pytest.param(False, 'up_total{exported_tenant="mine",namespace="team-a",tenant="team-a"} 1',
                     id="extra-label-wins-series-value-exported"),
        pytest.param(True, 'up_total{namespace="team-a",tenant="mine"} 1', id="honor-labels-series-value-wins"),
    ],
)
def test_extra_labels_apply_with_honor_labels(honor: bool, expected: str) -> None:
    rules = _access(extraLabels={"tenant": "team-a"}, honorLabels=honor).replace("http_.*", "up_total")
    status, out, _ = _run(rules, 'up_total{namespace="team-a",tenant="mine"} 1\n')
    assert status == 0
    assert out.splitlines() == [expected]


def test_extra_labels_are_added_to_series_without_them_in_json() -> None:
    rules = _access(extraLabels={"tenant": "team-a"})
    status, out, _ = _run(rules, '{"__name__":"http_x","namespace":"team-a"}\n', output_format="json")
    assert status == 0
    assert out.splitlines() == ['{"__name__": "http_x", "namespace": "team-a", "tenant": "team-a"}']


def test_a_metricaccess_drops_a_series_left_without_a_name_as_the_forwarder_does() -> None:
    rules = _access(metricRelabelings=[{"action": "labeldrop", "regex": "__name__"}])
    status, out, err = _run(rules, 'http_x{namespace="team-a"} 1\n')
    assert (status, out) == (0, "")
    assert "1 dropped by the rules" in err


def test_json_lines_allow_a_label_set_without_a_name() -> None:
    rules = "- action: labeldrop\n  regex: pod\n"
    status, out, _ = _run(rules, '{"job":"x","pod":"p"}\n{"__name__":"up","pod":"q"}\n', output_format="json")
    assert status == 0
    assert out.splitlines() == ['{"job": "x"}', '{"__name__": "up"}']


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        pytest.param("- action: hashmod\n", "rules[0].modulus", id="hashmod-without-modulus"),
        pytest.param("- {action: keep, regex: '(?<=x)'}\n", "rules[0].regex", id="re2-rejects"),
        pytest.param("just: a map\n", "expected a YAML list", id="not-a-list"),
    ],
)
def test_bad_rules_are_named(rules: str, fragment: str) -> None:
    status, _, err = _run(rules, "up 1\n")
    assert status == 1
    assert fragment in err


@pytest.mark.parametrize(
    ("text", "output_format", "message"),
    [
        pytest.param('up 1\nup{job="x" 1\n', "text",
                     "mtproxy relabel: line 2: not a sample line (expected name{label=\"value\",...} value "
                     "[timestamp_ms]): 'up{job=\"x\" 1'\n", id="text-unclosed-brace"),
        pytest.param("up one\n", "text",
                     "mtproxy relabel: line 1: not a sample line (expected name{label=\"value\",...} value "
                     "[timestamp_ms]): 'up one'\n", id="text-bad-value"),
        pytest.param('{"job": "x"}\n{job: x}\n', "json",
                     "mtproxy relabel: line 2: not JSON (expected one object of string labels a line): "
                     "'{job: x}'\n", id="json-not-json"),
        pytest.param('{"job": 1}\n', "json",
                     "mtproxy relabel: line 1: expected an object of string labels: '{\"job\": 1}'\n",
                     id="json-number-value"),
    ],
)
def test_bad_input_line_is_named_and_quoted(text: str, output_format: str, message: str) -> None:
    status, _, err = _run("[]\n", text, output_format=output_format)
    assert (status, err) == (1, message)


def test_a_file_with_two_metricaccesses_is_refused_by_name() -> None:
    two = (Path(__file__).resolve().parents[2] / "examples" / "multiple-metricaccess-per-namespace.yaml").read_text()
    status, _, err = _run(two, "up 1\n")
    assert status == 1
    assert "2 MetricAccess documents (tenant-container-metrics, " in err


def test_empty_rule_list_passes_everything_through() -> None:
    assert load_rules("[]") == ()
    assert _run("[]", "up 1\n")[1] == "up 1\n"
