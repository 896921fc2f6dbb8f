"""One verdict per MetricAccess object: what the service made of it, read by everyone.

``judge`` is pure: a raw object (as the API server or a file holds it) and the config in,
a ``Verdict`` out. The proxy's policies (``reconcilers.tenants``), the job runner, the
status writer, Events, logs and the debug pages all read the same verdict, so they can
never disagree about whether an object is in force.

- Only ``apiVersion``, ``kind``, ``metadata`` and ``spec`` are decoded: ``status`` is
  written by the service itself and nothing in it can change what a tenant may see (a
  status the schema would reject must not revoke access, nor a forged one grant any).
- An object is *in force* when its spec is valid and no guardrail denies it. An object
  that is not in force grants nothing and forwards nothing, all of it: a platform
  guardrail that refuses its forwarding target refuses the object (fail closed), and
  its status says which guardrail and why.
- The verdict carries the generation it was computed from, so status conditions can
  say which spec they describe (``observedGeneration``), and a fingerprint of what spec
  work depends on (uid, generation, labels, annotations): an update that leaves it
  unchanged (a status write, ours included) needs no new verdict.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from marshmallow import ValidationError

from mtproxy.api import Config, MetricAccess, MetricAccessSchema, Rule, flatten_messages
from mtproxy.reconcilers.metricaccess import JobDenied, desired_job
from mtproxy.reconcilers.tenants import Grant, granted_rules, isolation_denied
from mtproxy.remotewrite.job import RemoteWriteJob

__all__ = ["Fingerprint", "Verdict", "VerdictReason", "fingerprint_of", "judge"]

Fingerprint = tuple[str, int | None, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]
"""(uid, generation, labels, annotations): what a verdict depends on besides the spec."""


class VerdictReason(enum.Enum):
    """Why an object is not in force (the ``Valid`` condition's reason)."""

    INVALID_SPEC = "InvalidSpec"
    POLICY_DENIED = "PolicyDenied"


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What the service made of one MetricAccess generation."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    fingerprint: Fingerprint
    access: MetricAccess | None
    """The decoded object (spec and metadata only); None when the spec is invalid."""
    problems: tuple[str, ...] = ()
    """Every problem of the spec, each prefixed with its field path (``spec.metrics[1]: …``)."""
    guardrail: str | None = None
    """The config key of the guardrail that denies the object, e.g. ``guardrails.require_isolation``."""
    denial: str | None = None
    """Why that guardrail denies it."""
    rules: tuple[Rule, ...] = ()
    """What the object grants its namespace (empty when not in force)."""
    job: RemoteWriteJob | None = None
    """The forwarding job, when the object is in force and asks for forwarding."""
    forwarding_requested: bool = False
    """``spec.remoteWrite.enabled``, whether or not a job results."""

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    @property
    def in_force(self) -> bool:
        """Valid and allowed: the object grants its rules and runs its job."""
        return self.access is not None and self.guardrail is None

    @property
    def reason(self) -> VerdictReason | None:
        """Why the object is not in force, or None when it is."""
        if self.access is None:
            return VerdictReason.INVALID_SPEC
        if self.guardrail is not None:
            return VerdictReason.POLICY_DENIED
        return None

    @property
    def grant(self) -> Grant | None:
        """What the object grants its namespace; None when it is not in force."""
        if not self.in_force or self.access is None:
            return None
        return Grant(key=self.key, rules=self.rules, isolated=self.access.spec.metric_isolation)

    @property
    def message(self) -> str:
        """The problems, or the denial, in one line (a condition's or an Event's message)."""
        if self.access is None:
            return "; ".join(self.problems)
        if self.guardrail is not None:
            return f"denied by {self.guardrail}: {self.denial}"
        return ""


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def fingerprint_of(raw: Mapping[str, Any]) -> Fingerprint:
    """What spec work depends on besides the spec itself; equal fingerprints need no new verdict.

    The generation stands for the spec: the API server bumps it on every spec change (and
    never on a status change); files and objects without one fall back to comparing the
    spec by value (``judge`` is cheap enough for that).
    """
    metadata = raw.get("metadata") or {}
    generation = metadata.get("generation")
    return (
        str(metadata.get("uid") or ""),
        generation if isinstance(generation, int) else None,
        _pairs(metadata.get("labels")),
        _pairs(metadata.get("annotations")),
    )


def judge(raw: Mapping[str, Any], config: Config) -> Verdict:
    """The verdict on ``raw`` under ``config``'s guardrails (pure; ``raw.status`` is never read)."""
    metadata = raw.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "")
    name = str(metadata.get("name") or "")
    generation = metadata.get("generation") if isinstance(metadata.get("generation"), int) else None
    spec = raw.get("spec")
    base = Verdict(
        namespace=namespace,
        name=name,
        uid=str(metadata.get("uid") or ""),
        generation=generation,
        fingerprint=fingerprint_of(raw),
        access=None,
        forwarding_requested=bool(
            isinstance(spec, Mapping)
            and isinstance(spec.get("remoteWrite"), Mapping)
            and spec["remoteWrite"].get("enabled") is True
        ),
    )
    document = {key: raw[key] for key in ("apiVersion", "kind", "metadata", "spec") if key in raw}
    try:
        access: MetricAccess = MetricAccessSchema().load(document)
    except ValidationError as exc:
        problems = tuple(str(problem) for problem in flatten_messages(exc.messages))
        return replace(base, problems=problems or ("the object does not validate",))
    except RecursionError:
        return replace(base, problems=("the object is nested too deeply",))
    denial = isolation_denied(access, config.guardrails)
    if denial is not None:
        return replace(base, access=access, guardrail="guardrails.require_isolation", denial=denial)
    job: RemoteWriteJob | None = None
    if config.remote_write.enabled:
        wanted = desired_job(access, config)
        if isinstance(wanted, JobDenied):
            return replace(base, access=access, guardrail=wanted.guardrail, denial=wanted.message)
        job = wanted
    return replace(base, access=access, rules=granted_rules(access), job=job)
