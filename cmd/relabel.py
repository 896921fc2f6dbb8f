"""``mtproxy relabel``: try metricRelabelings on series before applying them.

Reads series on stdin, applies the rules exactly as the forwarder does, and writes the
survivors to stdout in the same format and input order. ``text`` is the Prometheus text
exposition (one sample a line; comments are dropped, values and timestamps kept);
``json`` is one JSON object of labels a line (``{"__name__":"up","job":"x"}``; a label
set without a name is allowed). Rules come from a YAML list in the CRD's camelCase, or
from a MetricAccess (its ``spec.remoteWrite.metricRelabelings``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

import yaml
from marshmallow import ValidationError
from prometheus_client.parser import text_string_to_metric_families

from mtproxy.api import MetricAccessSchema, RelabelConfig, RelabelConfigSchema, flatten_messages
from mtproxy.remotewrite import apply_relabel, compile_rules

__all__ = ["load_rules", "run_relabel"]


def load_rules(text: str) -> tuple[RelabelConfig, ...]:
    """Rules from a YAML list or a MetricAccess document.

    Raises:
        ValueError: naming the rule and field at fault.
    """
    document: Any = yaml.safe_load(text)
    if isinstance(document, dict) and document.get("kind") == "MetricAccess":
        try:
            access = MetricAccessSchema().load(document)
        except ValidationError as exc:
            raise ValueError("; ".join(str(p) for p in flatten_messages(exc.messages))) from None
        return access.spec.remote_write.metric_relabelings if access.spec.remote_write else ()
    if not isinstance(document, list):
        raise ValueError("rules file: expected a YAML list of relabel rules or a MetricAccess")
    rules: list[RelabelConfig] = []
    problems: list[str] = []
    for index, item in enumerate(document):
        try:
            rules.append(RelabelConfigSchema().load(item))
        except ValidationError as exc:
            problems.extend(str(p) for p in flatten_messages(exc.messages, f"rules[{index}]"))
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(rules)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _text_line(labels: dict[str, str], value: float, timestamp: float | None) -> str:
    name = labels.get("__name__", "")
    pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items() if k != "__name__")
    text = f"{name}{{{pairs}}}" if pairs or not name else name
    number = (
        "NaN"
        if value != value
        else ("+Inf" if value == float("inf") else "-Inf" if value == float("-inf") else repr(value))
    )
    stamp = f" {int(timestamp * 1000)}" if timestamp is not None else ""
    return f"{text} {number}{stamp}"


def _text_series(lines: Iterable[str]) -> Iterable[tuple[int, dict[str, str], float, float | None]]:
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            samples = [
                s
                for family in text_string_to_metric_families(line if line.endswith("\n") else line + "\n")
                for s in family.samples
            ]
        except (ValueError, TypeError) as exc:
            raise ValueError(f"line {number}: not a sample line: {exc}") from None
        for sample in samples:
            labels = {"__name__": sample.name, **sample.labels}
            stamp = sample.timestamp
            yield number, labels, sample.value, None if stamp is None else float(stamp)


def run_relabel(rules_text: str, *, stdin: TextIO, stdout: TextIO, stderr: TextIO, output_format: str) -> int:
    """The CLI command; returns the exit status."""
    try:
        compiled = compile_rules(load_rules(rules_text))
    except ValueError as exc:
        print(f"mtproxy relabel: {exc}", file=stderr)
        return 1
    try:
        if output_format == "json":
            for number, line in enumerate(stdin, 1):
                if not line.strip():
                    continue
                try:
                    labels = json.loads(line)
                except ValueError as exc:
                    raise ValueError(f"line {number}: not JSON: {exc}") from None
                if not isinstance(labels, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
                ):
                    raise ValueError(f"line {number}: expected an object of string labels")
                result = apply_relabel(compiled, labels)
                if result is not None:
                    print(json.dumps(dict(sorted(result.items())), ensure_ascii=False), file=stdout)
        else:
            for _, labels, value, timestamp in _text_series(stdin):
                result = apply_relabel(compiled, labels)
                if result is not None:
                    print(_text_line(dict(sorted(result.items())), value, timestamp), file=stdout)
    except ValueError as exc:
        print(f"mtproxy relabel: {exc}", file=stderr)
        return 1
    return 0
