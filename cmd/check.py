"""``mtproxy check``: validate MetricAccess manifests and config files before applying them.

Prints ``OK <file>`` per good file, or one line per problem with the field path, and
returns exit status 1 if any file has a problem; config warnings (keys kept only for
compatibility) are printed but do not fail the check. A file is a config file when its
single document has no ``kind``; otherwise every MetricAccess document in it is checked
and documents of other kinds are passed over.

With ``--config CONFIG``, a valid MetricAccess is also put through that config's
guardrails by the reconcilers' own functions (``isolation_denied``, ``desired_job``), so
the check reports what the service would deny, with the same message. Without it only the
spec is checked: whether an object is allowed depends on the platform's config.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

import yaml
from marshmallow import ValidationError

from mtproxy.api import (
    APIValidationError,
    Config,
    MetricAccess,
    MetricAccessSchema,
    flatten_messages,
    load_config,
    parse_config,
)
from mtproxy.reconcilers.metricaccess import JobDenied, desired_job
from mtproxy.reconcilers.tenants import isolation_denied

__all__ = ["CheckResult", "check_files", "check_text", "run_check"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """What checking one file found."""

    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}invalid YAML: {getattr(exc, 'problem', None) or exc}"


def check_text(text: str, *, config: Config | None = None) -> CheckResult:
    """Every problem and warning of one file's text; with ``config``, guardrail denials too."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return CheckResult(problems=(_yaml_error(exc),))
    except RecursionError:
        return CheckResult(problems=("YAML nested too deeply",))
    if not documents:
        return CheckResult(problems=("file has no YAML document",))
    if len(documents) == 1 and isinstance(documents[0], dict) and "kind" not in documents[0]:
        return _check_config(documents[0])
    problems: list[str] = []
    checked = 0
    for index, document in enumerate(documents):
        if not isinstance(document, dict):
            problems.append(f"document {index + 1}: not a mapping")
        elif document.get("kind") == "MetricAccess":
            checked += 1
            problems.extend(f"{_where(index, document)}{p}" for p in _manifest_problems(document, config))
    if checked == 0 and not problems:
        problems.append("no MetricAccess document, and not a config file")
    return CheckResult(problems=tuple(problems))


def _where(index: int, document: dict[str, Any]) -> str:
    meta = document.get("metadata")
    if not isinstance(meta, dict):
        return f"document {index + 1}: "
    name, namespace = meta.get("name", "?"), meta.get("namespace")
    return f"document {index + 1} ({namespace}/{name}): " if namespace else f"document {index + 1} ({name}): "


def _manifest_problems(document: dict[str, Any], config: Config | None) -> list[str]:
    try:
        access = MetricAccessSchema().load(document)
    except ValidationError as exc:
        return [str(p) for p in sorted(flatten_messages(exc.messages), key=lambda p: p.path)]
    except RecursionError:
        return ["document nested too deeply"]
    if config is None:
        return []
    denial = _guardrail_denial(access, config)
    return [] if denial is None else [f"denied by the guardrails ({denial.reason}): {denial.message}"]


def _guardrail_denial(access: MetricAccess, config: Config) -> JobDenied | None:
    """What the service would deny: the object's access first, then its forwarding."""
    reason = isolation_denied(access, config.guardrails)
    if reason is not None:
        return JobDenied(reason="PolicyDenied", message=reason)
    job = desired_job(access, config)
    return job if isinstance(job, JobDenied) else None


def _check_config(document: dict[str, Any]) -> CheckResult:
    try:
        loaded = parse_config(document)
    except APIValidationError as exc:
        return CheckResult(problems=tuple(str(p) for p in exc.problems))
    return CheckResult(warnings=loaded.warnings)


def run_check(paths: Iterable[str], *, config_path: str | None, out: TextIO, err: TextIO) -> int:
    """The CLI command: load ``config_path`` when given (exit 2 if it is unusable), then check."""
    config = None
    if config_path is not None:
        try:
            config = load_config(config_path).config
        except OSError as exc:
            print(f"{config_path}: cannot read: {exc.strerror}", file=err)
            return 2
        except UnicodeDecodeError:
            print(f"{config_path}: not UTF-8 text", file=err)
            return 2
        except APIValidationError as exc:
            for problem in exc.problems:
                print(f"{config_path}: {problem}", file=err)
            return 2
    return check_files(paths, out=out, config=config)


def check_files(paths: Iterable[str], *, out: TextIO, config: Config | None = None) -> int:
    """Check each file and print the outcome to ``out``; return the process exit status."""
    status = 0
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                result = check_text(handle.read(), config=config)
        except OSError as exc:
            result = CheckResult(problems=(f"cannot read: {exc.strerror}",))
        except UnicodeDecodeError:
            result = CheckResult(problems=("not UTF-8 text",))
        for warning in result.warnings:
            print(f"{path}: warning: {warning}", file=out)
        for problem in result.problems:
            print(f"{path}: {problem}", file=out)
        if result.problems:
            status = 1
        else:
            print(f"OK {path}", file=out)
    return status
