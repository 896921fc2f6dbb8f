"""``mtproxy relabel``: see what the forwarder would send for series, before applying a MetricAccess.

Reads series on stdin and writes what survives to stdout, in the same format and input
order. ``text`` is the Prometheus text exposition (one sample a line; comments are
dropped, values and timestamps kept); ``json`` is one JSON object of labels a line
(``{"__name__":"up","job":"x"}``).

The rules file is either

- a MetricAccess (other documents in the file, such as its Namespace, are passed over):
  then each series goes through exactly what its remote-write job does
  (``mtproxy.remotewrite.SeriesTransform``, the forwarder's own code): only series its
  ``spec.metrics`` select are collected (with its ``labelSelectors`` and, under
  ``metricIsolation``, ``namespace="<its namespace>"``), then ``metricRelabelings``, then
  ``extraLabels`` under ``honorLabels``; a series left without a name, or with a label name
  a receiver would refuse, is dropped as the forwarder drops it; or
- a YAML list of relabel rules in the CRD's camelCase: then only the rules are applied (a
  label set without a name is allowed, for trying rules on label sets).

A summary of what was dropped and why goes to stderr when anything was. A line that cannot
be read is named by its number and quoted, with the form that was expected.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

import yaml
from marshmallow import ValidationError
from prometheus_client.parser import text_string_to_metric_families

from mtproxy.api import MetricAccessSchema, RelabelConfig, RelabelConfigSchema, Rule, flatten_messages, rules_for
from mtproxy.remotewrite import RemoteWriteJob, SeriesTransform, apply_relabel, compile_rules

__all__ = ["Forwarding", "load_forwarding", "load_rules", "run_relabel"]

_QUOTED_LINE_CHARS = 120

_Transform = Callable[[dict[str, str]], tuple[dict[str, str] | None, str]]
"""Labels in; the labels sent (or None) and why not (``not_selected`` or ``dropped``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Forwarding:
    """What a rules file asks for: the relabel rules, and for a MetricAccess, its job's selection and labels."""

    relabel: tuple[RelabelConfig, ...]
    job: RemoteWriteJob | None = None
    """For a MetricAccess: the job whose transform the series go through (no destinations)."""
    selection: str = ""
    """For a MetricAccess: its rules as selectors, for the summary."""


def _relabel_list(document: list[Any]) -> tuple[RelabelConfig, ...]:
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


def load_forwarding(text: str) -> Forwarding:
    """What a rules file (YAML list or MetricAccess) asks for.

    Raises:
        ValueError: naming the rule, field or pattern at fault.
    """
    documents: list[Any] = [d for d in yaml.safe_load_all(text) if d is not None]
    accesses = [d for d in documents if isinstance(d, dict) and d.get("kind") == "MetricAccess"]
    if len(accesses) > 1:
        names = ", ".join(str((d.get("metadata") or {}).get("name")) for d in accesses)
        raise ValueError(f"rules file: {len(accesses)} MetricAccess documents ({names}); give a file with one")
    document: Any = accesses[0] if accesses else (documents[0] if len(documents) == 1 else None)
    if isinstance(document, dict) and document.get("kind") == "MetricAccess":
        try:
            access = MetricAccessSchema().load(document)
        except ValidationError as exc:
            raise ValueError("; ".join(str(p) for p in flatten_messages(exc.messages))) from None
        spec = access.spec
        namespace = access.metadata.namespace or "default"
        rules: tuple[Rule, ...] = rules_for(
            spec.metrics,
            label_selectors=spec.label_selectors,
            isolation_namespace=namespace if spec.metric_isolation else None,
        )
        remote_write = spec.remote_write
        job = RemoteWriteJob(
            namespace=namespace,
            name=access.metadata.name,
            rules=rules,
            interval_ms=remote_write.interval_ms if remote_write else 30_000,
            destinations=(),
            relabel=remote_write.metric_relabelings if remote_write else (),
            extra_labels=dict(remote_write.extra_labels) if remote_write else {},
            honor_labels=remote_write.honor_labels if remote_write else False,
        )
        return Forwarding(
            relabel=job.relabel,
            job=job,
            selection=" or ".join(rule.selector() for rule in rules),
        )
    if not isinstance(document, list):
        raise ValueError("rules file: expected a YAML list of relabel rules or a MetricAccess")
    return Forwarding(relabel=_relabel_list(document))


def load_rules(text: str) -> tuple[RelabelConfig, ...]:
    """The relabel rules of a YAML list or a MetricAccess document.

    Raises:
        ValueError: naming the rule and field at fault.
    """
    return load_forwarding(text).relabel


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


def _quoted(line: str) -> str:
    text = line.rstrip("\n")
    return repr(text if len(text) <= _QUOTED_LINE_CHARS else text[:_QUOTED_LINE_CHARS] + "…")


def _text_series(lines: Iterable[str]) -> Iterable[tuple[dict[str, str], float, float | None]]:
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            samples = [
                s
                for family in text_string_to_metric_families(line if line.endswith("\n") else line + "\n")
                for s in family.samples
            ]
        except (ValueError, TypeError, IndexError):
            samples = []
        if not samples:
            raise ValueError(
                f"line {number}: not a sample line (expected name{{label=\"value\",...}} value [timestamp_ms]): "
                f"{_quoted(line)}"
            )
        for sample in samples:
            stamp = sample.timestamp
            yield {"__name__": sample.name, **sample.labels}, sample.value, None if stamp is None else float(stamp)


def _json_series(lines: Iterable[str]) -> Iterable[tuple[dict[str, str], float, float | None]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            labels = json.loads(line)
        except ValueError:
            raise ValueError(
                f"line {number}: not JSON (expected one object of string labels a line): {_quoted(line)}"
            ) from None
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise ValueError(f"line {number}: expected an object of string labels: {_quoted(line)}")
        yield labels, 0.0, None


class _Counts:
    def __init__(self) -> None:
        self.read = 0
        self.not_selected = 0
        self.dropped = 0
        self.written = 0


def _transform(forwarding: Forwarding) -> _Transform:
    """What happens to one series' labels: the forwarder's transform for a MetricAccess, else the rules only."""
    if forwarding.job is None:
        compiled = compile_rules(forwarding.relabel)

        def relabel_only(labels: dict[str, str]) -> tuple[dict[str, str] | None, str]:
            result = apply_relabel(compiled, labels)
            return (None, "dropped") if result is None else (dict(sorted(result.items())), "")

        return relabel_only
    job = forwarding.job
    transform = SeriesTransform(job)

    def forwarded(labels: dict[str, str]) -> tuple[dict[str, str] | None, str]:
        if not any(rule.matches(labels) for rule in job.rules):
            return None, "not_selected"
        key = transform.output_key(labels)
        return (None, "dropped") if key is None else (dict(key), "")

    return forwarded


def run_relabel(rules_text: str, *, stdin: TextIO, stdout: TextIO, stderr: TextIO, output_format: str) -> int:
    """The CLI command; returns the exit status."""
    try:
        forwarding = load_forwarding(rules_text)
        transform = _transform(forwarding)
    except ValueError as exc:
        print(f"mtproxy relabel: {exc}", file=stderr)
        return 1
    counts = _Counts()
    series = _json_series(stdin) if output_format == "json" else _text_series(stdin)
    try:
        for labels, value, timestamp in series:
            counts.read += 1
            result, why = transform(labels)
            if result is None:
                counts.not_selected += why == "not_selected"
                counts.dropped += why == "dropped"
                continue
            counts.written += 1
            if output_format == "json":
                print(json.dumps(result, ensure_ascii=False), file=stdout)
            else:
                print(_text_line(result, value, timestamp), file=stdout)
    except ValueError as exc:
        print(f"mtproxy relabel: {exc}", file=stderr)
        return 1
    if counts.not_selected or counts.dropped:
        parts = [f"{counts.read} series read"]
        if counts.not_selected:
            parts.append(f"{counts.not_selected} not selected by spec.metrics ({forwarding.selection})")
        if counts.dropped:
            parts.append(f"{counts.dropped} dropped by the rules")
        parts.append(f"{counts.written} written")
        print(f"mtproxy relabel: {', '.join(parts)}", file=stderr)
    return 0
