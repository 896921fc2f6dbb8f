"""The status a verdict and a job call for: what a new leader (or a restarted service) writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from mtproxy.api import Config, GuardrailsConfig, RemoteWriteConfig
from mtproxy.reconcilers.status import condition_of, desired_status, needs_write
from mtproxy.reconcilers.verdict import Verdict, judge
from mtproxy.remotewrite.runner import JobStatus

EARLIER = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
NOW = EARLIER + dt.timedelta(minutes=5)
CONFIG = Config(guardrails=GuardrailsConfig(require_isolation=True), remote_write=RemoteWriteConfig(enabled=True))


def _verdict(*, generation: int = 1, forwarding: bool = True) -> Verdict:
    spec: dict[str, Any] = {"source": "team-a", "metrics": ["up"], "metricIsolation": True}
    if forwarding:
        spec["remoteWrite"] = {"enabled": True, "target": {"type": "prometheus"}, "prometheus": {"serviceName": "p"}}
    raw = {
        "apiVersion": "observability.ethos.io/v1alpha1",
        "kind": "MetricAccess",
        "metadata": {"name": "forward", "namespace": "team-a", "uid": "u1", "generation": generation},
        "spec": spec,
    }
    return judge(raw, CONFIG)


def _job(*, cycles: int, failure: str | None = None) -> JobStatus:
    return JobStatus(
        key="team-a/forward",
        active=True,
        last_collection_ms=None if cycles == 0 else 1_767_268_800_000,
        last_successful_write_ms=None if cycles == 0 else 1_767_268_800_000,
        series_collected=0 if cycles == 0 else 3,
        samples_forwarded=14 * cycles,
        last_error=None if failure is None else "secret gone",
        destinations=(),
        collisions=0,
        cycles_completed=cycles,
        failure_reason=failure,
        last_cycle_ms=None,
    )


def _written_by_the_last_leader(verdict: Verdict) -> dict[str, Any]:
    """The status of a forwarding object after some cycles, as the previous leader wrote it."""
    return desired_status(
        verdict, _job(cycles=3), current=None, now=EARLIER, forwarding_enabled=True, refresh_counters=True
    )


@pytest.mark.parametrize(
    "job",
    [pytest.param(None, id="job-not-started-yet"), pytest.param(_job(cycles=0), id="first-cycle-under-way")],
)
def test_a_new_leader_keeps_the_last_verdict_on_the_same_generation_until_its_first_cycle(
    job: JobStatus | None,
) -> None:
    verdict = _verdict()
    current = _written_by_the_last_leader(verdict)
    assert condition_of(current, "Ready")["status"] == "True"  # type: ignore[index]
    desired = desired_status(verdict, job, current=current, now=NOW, forwarding_enabled=True, refresh_counters=True)
    assert desired == current  # no flap to ForwardingPending, no zeroed counters
    assert not needs_write(current, desired, counters_due=True)


def test_the_first_cycle_of_the_new_term_writes_its_own_result() -> None:
    verdict = _verdict()
    current = _written_by_the_last_leader(verdict)
    desired = desired_status(
        verdict, _job(cycles=1), current=current, now=NOW, forwarding_enabled=True, refresh_counters=True
    )
    assert desired["lastUpdated"] != current["lastUpdated"]
    assert needs_write(current, desired, counters_due=True)
    failed = desired_status(
        verdict,
        _job(cycles=0, failure="SecretUnavailable"),
        current=current,
        now=NOW,
        forwarding_enabled=True,
        refresh_counters=True,
    )
    assert condition_of(failed, "Forwarding")["reason"] == "SecretUnavailable"  # type: ignore[index]
    assert condition_of(failed, "Ready")["status"] == "False"  # type: ignore[index]


def test_a_new_generation_is_pending_until_its_first_cycle() -> None:
    current = _written_by_the_last_leader(_verdict(generation=1))
    edited = _verdict(generation=2)
    desired = desired_status(
        edited, _job(cycles=0), current=current, now=NOW, forwarding_enabled=True, refresh_counters=True
    )
    assert condition_of(desired, "Ready") == {
        "type": "Ready",
        "status": "False",
        "reason": "ForwardingPending",
        "message": "waiting for the first collection cycle",
        "lastTransitionTime": "2026-01-01T12:05:00Z",
        "observedGeneration": 2,
    }
    assert desired["observedGeneration"] == 2


def test_a_fresh_object_is_pending_on_the_first_visit() -> None:
    desired = desired_status(_verdict(), None, current=None, now=NOW, forwarding_enabled=True, refresh_counters=True)
    assert condition_of(desired, "Forwarding")["status"] == "Unknown"  # type: ignore[index]
    assert condition_of(desired, "Ready")["reason"] == "ForwardingPending"  # type: ignore[index]


def test_forwarding_disabled_by_an_earlier_service_is_not_kept() -> None:
    verdict = _verdict()
    current = desired_status(verdict, None, current=None, now=EARLIER, forwarding_enabled=False, refresh_counters=True)
    assert condition_of(current, "Forwarding")["reason"] == "ForwardingDisabled"  # type: ignore[index]
    desired = desired_status(verdict, None, current=current, now=NOW, forwarding_enabled=True, refresh_counters=True)
    assert condition_of(desired, "Forwarding")["reason"] == "Pending"  # type: ignore[index]


def test_an_object_that_stops_forwarding_loses_its_counters_at_once() -> None:
    current = _written_by_the_last_leader(_verdict())
    no_forwarding = _verdict(forwarding=False)
    desired = desired_status(
        no_forwarding, None, current=current, now=NOW, forwarding_enabled=True, refresh_counters=False
    )
    assert "remoteWrite" not in desired
