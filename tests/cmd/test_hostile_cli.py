"""No input ends ``mtproxy check`` or ``mtproxy enforce`` (issue 15, findings 1 and 2): the generated
deep and huge texts, as MetricAccess patterns, queries and ``match[]`` selectors, in a child
process, where a crash of the native parser shows as a signal instead of ending pytest."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from survival import assert_no_signal, hostile_texts, run_python

TEXTS = hostile_texts(seed=1015)

_DRIVER = """
import contextlib, io, json, sys
from mtproxy.cmd.main import main
for case in json.loads(sys.stdin.read()):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(case["argv"])
    print(json.dumps({"name": case["name"], "status": status, "out": out.getvalue()}), flush=True)
"""


def _manifest(namespace: str, metrics: list[str]) -> dict[str, object]:
    return {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": "app", "namespace": namespace},
        "spec": {"source": namespace, "metricIsolation": True, "metrics": metrics},
    }


def test_check_and_enforce_refuse_every_hostile_text_without_a_crash(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(yaml.safe_dump(_manifest("team-a", [t.text for t in TEXTS]), width=1 << 30))
    access = tmp_path / "access.yaml"
    access.write_text(yaml.safe_dump(_manifest("team-a", ["up", "http_.*"])))
    cases = [{"name": "check", "argv": ["check", str(hostile)]}]
    for text in TEXTS:
        for endpoint in ("query", "series"):
            argv = [
                "enforce",
                "--namespace",
                "team-a",
                "--endpoint",
                endpoint,
                "--access",
                str(access),
                "--",
                text.text,
            ]
            cases.append({"name": f"enforce {endpoint} {text.name}", "argv": argv})
    cases.append(
        {
            "name": "enforce with the hostile file",
            "argv": ["enforce", "--namespace", "team-a", "--access", str(hostile), "--", "up"],
        }
    )
    completed = run_python(_DRIVER, stdin=json.dumps(cases), timeout_s=600)
    assert_no_signal(completed, what="mtproxy check/enforce")
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = {r["name"]: r for r in map(json.loads, completed.stdout.splitlines())}
    assert len(results) == len(cases)

    check = results["check"]
    assert check["status"] == 1
    for index, text in enumerate(TEXTS):
        if text.refused:
            assert f"spec.metrics[{index}]:" in check["out"], text.name
    for text in TEXTS:
        for endpoint in ("query", "series"):
            result = results[f"enforce {endpoint} {text.name}"]
            if text.refused:
                assert result["status"] == 1, (text.name, endpoint, result["out"])
                assert "refused (400 bad_data)" in result["out"], (text.name, endpoint, result["out"])
    assert "problem:" in results["enforce with the hostile file"]["out"]
