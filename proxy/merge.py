"""Merging the answers of several backends (``proxy.query_mode: fan_out``).

Backends are assumed to hold overlapping copies (HA pairs, shards with overlap). Series
are de-duplicated by label set after dropping the configured ``replica_labels``; the
first answer's copy wins (answers are taken in target order), without those labels, in
query results, ``/series`` and exemplars alike; for the same reason ``/labels`` leaves
the replica label names out, and ``/label/<replica label>/values`` is empty. ``resultType`` is kept; a
scalar or string result is taken from the first successful answer. A backend that failed
or answered an error turns into a Prometheus ``warnings`` entry, never a silent partial
result; if none succeeded, the first error answer is returned as it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

__all__ = ["merge_json_answers", "merge_text_answers"]


def _key(labels: Any, replica_labels: frozenset[str]) -> tuple[tuple[str, str], ...]:
    if not isinstance(labels, dict):
        return ()
    return tuple(sorted((k, str(v)) for k, v in labels.items() if k not in replica_labels))


def merge_json_answers(
    answers: Sequence[tuple[str, int, bytes]],
    *,
    replica_labels: Sequence[str] = (),
    strings: Literal["label_names", "values"] = "values",
) -> tuple[int, bytes]:
    """(target, status, body) answers → one (status, body).

    Args:
        answers: (target, status, body) per backend, in target order.
        replica_labels: dropped from every series before de-duplication.
        strings: what a list of strings in the answers holds: ``label_names`` (/labels, so the
            replica labels are left out) or ``values`` (kept as they are).
    """
    replicas = frozenset(replica_labels)
    successes: list[dict[str, Any]] = []
    warnings: list[str] = []
    first_error: tuple[int, bytes] | None = None
    for target, status, body in answers:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            warnings.append(f"backend {target}: unreadable answer (HTTP {status})")
            continue
        if status == 200 and isinstance(document, dict) and document.get("status") == "success":
            successes.append(document)
            warnings.extend(str(w) for w in document.get("warnings") or [])
        else:
            message = document.get("error") if isinstance(document, dict) else None
            warnings.append(f"backend {target}: HTTP {status}: {message or 'error'}")
            if first_error is None:
                first_error = (status, body)
    if not successes:
        if first_error is not None:
            return first_error
        return 503, json.dumps({"status": "error", "errorType": "unavailable", "error": "; ".join(warnings)}).encode()
    merged = _merge_data([s.get("data") for s in successes], replicas)
    if strings == "label_names" and isinstance(merged, list):
        merged = [name for name in merged if name not in replicas]
    out: dict[str, Any] = {"status": "success", "data": merged}
    if warnings:
        out["warnings"] = warnings
    return 200, json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _merge_data(datas: list[Any], replicas: frozenset[str]) -> Any:
    first = datas[0]
    if isinstance(first, dict) and first.get("resultType") in ("vector", "matrix"):
        seen: dict[tuple[tuple[str, str], ...], Any] = {}
        for data in datas:
            if not isinstance(data, dict) or data.get("resultType") != first["resultType"]:
                continue
            for item in data.get("result") or []:
                metric = item.get("metric") if isinstance(item, dict) else None
                cleaned = {k: v for k, v in (metric or {}).items() if k not in replicas}
                seen.setdefault(_key(cleaned, frozenset()), {**item, "metric": cleaned})
        return {"resultType": first["resultType"], "result": list(seen.values())}
    if isinstance(first, list):
        if all(isinstance(item, str) for data in datas for item in (data or [])):
            return sorted({item for data in datas for item in (data or [])})
        series: dict[tuple[tuple[str, str], ...], Any] = {}
        for data in datas:
            for item in data or []:
                cleaned = _without_replicas(item, replicas)
                labels = cleaned.get("seriesLabels", cleaned) if isinstance(cleaned, dict) else cleaned
                series.setdefault(_key(labels, frozenset()), cleaned)
        return list(series.values())
    return first


def _without_replicas(item: Any, replicas: frozenset[str]) -> Any:
    """A series (label object) or an exemplar entry (``seriesLabels``) without the replica labels."""
    if not isinstance(item, dict) or not replicas:
        return item
    labels = item.get("seriesLabels")
    if isinstance(labels, dict):
        return {**item, "seriesLabels": {k: v for k, v in labels.items() if k not in replicas}}
    return {k: v for k, v in item.items() if k not in replicas}


def merge_text_answers(answers: Sequence[bytes]) -> bytes:
    """Federation text answers: every distinct line once, comments from the first answer."""
    seen: dict[str, None] = {}
    for body in answers:
        for line in body.decode("utf-8", "replace").splitlines():
            seen.setdefault(line)
    return ("\n".join(seen) + "\n").encode("utf-8") if seen else b""
