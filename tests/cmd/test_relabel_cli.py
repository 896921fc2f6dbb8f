"""mtproxy relabel: rules from a list or a MetricAccess, text and JSON, input order kept."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mtproxy.cmd.relabel import load_rules, run_relabel

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "metric-relabelings.yaml"


def _run(rules: str, text: str, *, output_format: str = "text") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_relabel(rules, stdin=io.StringIO(text), stdout=out, stderr=err, output_format=output_format)
    return status, out.getvalue(), err.getvalue()


def test_metricaccess_rules_apply_in_input_order_and_drop() -> None:
    text = (
        "kubelet_running_pods 3\n"
        "# HELP ignored\n"
        'container_cpu_usage_seconds_total{pod="a",namespace="x"} 1.5 1700000000000\n'
        "etcd_debugging_store 1\n"
    )
    status, out, _ = _run(EXAMPLE.read_text(), text)
    assert status == 0
    assert out.splitlines() == [
        'kubelet_running_pods{metrics_path="/metrics"} 3',
        'container_cpu_usage_seconds_total{metrics_path="/metrics/cadvisor",namespace="x",pod="a"} 1.5 1700000000000',
    ]


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


def test_bad_input_line_is_named() -> None:
    status, _, err = _run("[]\n", 'up{job="x" 1\n')
    assert status == 1
    assert "line 1" in err


def test_empty_rule_list_passes_everything_through() -> None:
    assert load_rules("[]") == ()
    assert _run("[]", "up 1\n")[1] == "up 1\n"
