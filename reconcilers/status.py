"""The status a MetricAccess should show, computed from its verdict and its job (pure).

Conditions are ``metav1.Condition``s, each with its own ``observedGeneration``:

- ``Valid``: True, or False with ``InvalidSpec`` (every problem with its field path) or
  ``PolicyDenied`` (the guardrail and why);
- ``Forwarding``, only when ``spec.remoteWrite.enabled``: True when the newest cycle wrote
  to every destination; False with the failure's reason (``SecretUnavailable``,
  ``TargetUnreachable``, ``WriteFailed``, ``CollectionFailed``, ``InternalError``, or
  ``ForwardingDisabled`` when the service runs without forwarding); Unknown/``Pending``
  until the job's first cycle has ended, unless the status already holds a True or False
  verdict on this generation (written by a previous leader, or before a restart): that one
  stands until this term's first cycle ends, since the new leader knows no better, and
  resetting it would turn every object unready at each failover or rollout;
- ``Ready``: True when Valid and (no forwarding asked, or Forwarding True); otherwise
  False with the reason of what is wrong (``ForwardingPending`` before the first
  cycle). It is set on the first visit, so ``kubectl wait --for=condition=Ready`` and
  kstatus judge a new generation right away.

``lastTransitionTime`` moves only when a condition's status changes. What changes on
every cycle (``remoteWrite`` counters, ``lastUpdated``, ``validatedMetrics``) is kept
as it was unless ``refresh_counters`` says it is time (``tenants.status_interval``), so
a steady object costs no writes; counters already shown for this generation are also kept
while the job has not finished a cycle in this term, so a new leader writes nothing until
it has news; ``needs_write`` tells the writer whether anything worth a write changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from mtproxy.reconcilers.verdict import Verdict
from mtproxy.remotewrite.runner import JobStatus

__all__ = [
    "CONDITION_FORWARDING",
    "CONDITION_READY",
    "CONDITION_VALID",
    "condition_of",
    "desired_status",
    "format_time",
    "needs_write",
]

CONDITION_VALID = "Valid"
CONDITION_FORWARDING = "Forwarding"
CONDITION_READY = "Ready"
_MESSAGE_LIMIT = 2048
_COUNTER_KEYS = ("remoteWrite", "lastUpdated", "validatedMetrics")


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with seconds, as metav1.Time is written."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_ms(ms: int | None) -> str | None:
    return None if ms is None else format_time(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))


def condition_of(status: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    """The condition of type ``kind`` in a raw status, or None."""
    for condition in (status or {}).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def _condition(
    kind: str, status: str, reason: str, message: str, *, generation: int | None, current: Mapping[str, Any] | None,
    now: str,
) -> dict[str, Any]:
    previous = condition_of(current, kind)
    moved = previous is None or previous.get("status") != status or not previous.get("lastTransitionTime")
    condition: dict[str, Any] = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[:_MESSAGE_LIMIT],
        "lastTransitionTime": now if moved else previous["lastTransitionTime"],  # type: ignore[index]
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return condition


def _earlier_forwarding(current: Mapping[str, Any] | None, generation: int | None) -> tuple[str, str, str] | None:
    """The True or False Forwarding condition ``current`` holds for ``generation``, if any."""
    previous = condition_of(current, CONDITION_FORWARDING)
    if (
        previous is None
        or generation is None
        or previous.get("observedGeneration") != generation
        or previous.get("status") not in ("True", "False")
        or previous.get("reason") == "ForwardingDisabled"  # said by a service running without forwarding
    ):
        return None
    return str(previous["status"]), str(previous.get("reason") or ""), str(previous.get("message") or "")


def _forwarding(
    verdict: Verdict, job: JobStatus | None, *, forwarding_enabled: bool, current: Mapping[str, Any] | None
) -> tuple[str, str, str] | None:
    """(status, reason, message) of the Forwarding condition, or None when it does not apply."""
    if not verdict.forwarding_requested or not verdict.in_force:
        return None
    if not forwarding_enabled:
        return "False", "ForwardingDisabled", "the service runs with remote_write.enabled off"
    if job is None or job.forwarding is None:
        if job is not None and job.failure_reason is not None:
            return "False", job.failure_reason, job.last_error or job.failure_reason
        earlier = _earlier_forwarding(current, verdict.generation)
        if earlier is not None:
            return earlier  # until this term's first cycle ends: see the module docstring
        return "Unknown", "Pending", "waiting for the first collection cycle"
    if not job.forwarding:
        reason = job.failure_reason or "WriteFailed"
        return "False", reason, job.last_error or reason
    count = len(job.destinations)
    return "True", "Forwarding", f"the last cycle wrote to {count} destination{'s' if count != 1 else ''}"


def _remote_write_status(job: JobStatus | None) -> dict[str, Any]:
    if job is None:
        return {"active": False}
    out: dict[str, Any] = {
        "active": True,
        "lastCollection": _time_ms(job.last_collection_ms),
        "lastSuccessfulWrite": _time_ms(job.last_successful_write_ms),
        "metricsCollected": job.series_collected,
        "samplesForwarded": job.samples_forwarded,
        "lastError": (job.last_error or "")[:_MESSAGE_LIMIT] or None,
        "targets": [
            {
                "endpoint": target.destination,
                "healthy": target.healthy and target.cycle_failure is None,
                "lastError": (target.last_error or "")[:_MESSAGE_LIMIT] or None,
                "lastSuccessTime": _time_ms(target.last_success_ms),
            }
            for target in job.destinations
        ],
    }
    out["targets"] = [{k: v for k, v in target.items() if v is not None} for target in out["targets"]]
    return {k: v for k, v in out.items() if v is not None}


def desired_status(
    verdict: Verdict,
    job: JobStatus | None,
    *,
    current: Mapping[str, Any] | None,
    now: dt.datetime,
    forwarding_enabled: bool,
    refresh_counters: bool,
) -> dict[str, Any]:
    """The whole status ``verdict`` and ``job`` call for, given the ``current`` one (raw, maybe None)."""
    stamp = format_time(now)
    generation = verdict.generation
    conditions: list[dict[str, Any]] = []

    def add(kind: str, status: str, reason: str, message: str) -> None:
        conditions.append(
            _condition(kind, status, reason, message, generation=generation, current=current, now=stamp)
        )

    if verdict.in_force:
        count = len(verdict.rules)
        add(CONDITION_VALID, "True", "SpecValid", f"grants {count} rule{'s' if count != 1 else ''}")
    else:
        assert verdict.reason is not None
        add(CONDITION_VALID, "False", verdict.reason.value, verdict.message)
    forwarding = _forwarding(verdict, job, forwarding_enabled=forwarding_enabled, current=current)
    if forwarding is not None:
        add(CONDITION_FORWARDING, *forwarding)
    if not verdict.in_force:
        assert verdict.reason is not None
        add(CONDITION_READY, "False", verdict.reason.value, verdict.message)
    elif forwarding is None or forwarding[0] == "True":
        add(CONDITION_READY, "True", "Ready", "in force" if forwarding is None else "in force and forwarding")
    elif forwarding[0] == "Unknown":
        add(CONDITION_READY, "False", "ForwardingPending", forwarding[2])
    else:
        add(CONDITION_READY, "False", forwarding[1], forwarding[2])

    status: dict[str, Any] = {"conditions": conditions}
    if generation is not None:
        status["observedGeneration"] = generation
    wants_remote_write = verdict.forwarding_requested and verdict.in_force
    if current is None or (
        (refresh_counters or wants_remote_write != ("remoteWrite" in current))
        and not _counters_stand(verdict, job, current)
    ):
        status["lastUpdated"] = stamp
        status["validatedMetrics"] = list(verdict.access.spec.metrics) if verdict.in_force and verdict.access else []
        if wants_remote_write:
            status["remoteWrite"] = _remote_write_status(job)
    else:
        for key in _COUNTER_KEYS:
            if key in current:
                status[key] = current[key]
    return status


def _counters_stand(verdict: Verdict, job: JobStatus | None, current: Mapping[str, Any]) -> bool:
    """Whether the counters ``current`` shows for this generation stay until the job has news.

    A job that has not finished a cycle in this term (a new leader, a restarted service) has
    counted nothing yet; its zeros would blank ``kubectl get``'s Last Write and cost every
    object a write, for nothing the next cycle will not say.
    """
    return (
        verdict.forwarding_requested
        and verdict.in_force
        and "remoteWrite" in current
        and verdict.generation is not None
        and current.get("observedGeneration") == verdict.generation
        and (job is None or (job.cycles_completed == 0 and job.failure_reason is None))
    )


def _without(status: Mapping[str, Any] | None, keys: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in (status or {}).items() if k not in keys}


def needs_write(current: Mapping[str, Any] | None, desired: Mapping[str, Any], *, counters_due: bool) -> bool:
    """Whether ``desired`` differs from ``current`` enough to write: any condition or generation
    change at once (or a counters block appearing or going), counters only when ``counters_due``."""
    if _without(current, _COUNTER_KEYS) != _without(desired, _COUNTER_KEYS):
        return True
    if ("remoteWrite" in (current or {})) != ("remoteWrite" in desired):
        return True
    if not counters_due:
        return False
    ignored = ("lastUpdated",)
    return _without(current, ignored) != _without(desired, ignored)
