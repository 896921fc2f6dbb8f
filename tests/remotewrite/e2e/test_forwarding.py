"""Acceptance of the lossless remote-write pipeline, through ``mtproxy --config`` in files mode.

Each test checks one sentence of DESIGN.md's "Remote write: lossless by construction" on
what real receivers hold afterwards (a tenant Prometheus with out-of-order ingestion off,
VictoriaMetrics, a Pushgateway), compared with the infrastructure Prometheus sample by
sample. The scenarios run side by side in one campaign (``campaign.py``); these tests read
its reports.
"""

from __future__ import annotations

import re

import pytest

from .campaign import (
    DEAD_SINK,
    INTERVAL_S,
    SAFETY_DELAY_S,
    SCRAPE_S,
    Campaign,
    CollectedMetricsReport,
    DeadSinkReport,
    LosslessReport,
    PushgatewayReport,
    StalenessReport,
    VictoriaMetricsReport,
)

pytestmark = pytest.mark.slow

ONE_CYCLE_S = INTERVAL_S + SAFETY_DELAY_S + SCRAPE_S
"""Worst case from a change at the source to its arrival: next scrape, safety delay, next cycle."""
SLACK_S = 2.5
"""Scheduling noise on a loaded two-core machine (eight Prometheus servers run at once)."""


def _assert_lossless(report: LosslessReport, *, cut_off_requests: int = 0) -> None:
    """Every tenant equals the source, and no batch of new samples was refused on the way.

    The one refusal allowed is that of a resend of a request whose answer never came but
    which the receiver had stored (its older samples are then out of order): the forwarder
    logs it as such, and it held nothing new.

    Args:
        cut_off_requests: Requests the test itself cut off (by killing the sender mid-body):
            the tenant answers them 400 "unexpected EOF" having stored nothing.
    """
    for name, diff in report.diffs.items():
        assert diff.source_samples > 100, f"{name}: too little data to judge: {diff.summary()}"
        assert diff.exact, f"{name} differs from the source: {diff.summary()}"
    already_stored = len(report.resent_already_stored)
    # a resend refused as already stored is logged as such, never as a dropped batch
    assert report.drops == [], f"the forwarder dropped batches: {report.drops[:3]}"
    for name, rejected in report.rejected_writes.items():
        assert rejected["undecodable_bodies"] <= cut_off_requests, f"{name}: {rejected}"
        assert rejected["refused_appends"] <= already_stored, f"{name} refused samples: {rejected}"
    assert sum(r["refused_appends"] for r in report.rejected_writes.values()) == already_stored
    assert sum(r["http_400"] - r["undecodable_bodies"] for r in report.rejected_writes.values()) == already_stored


def test_tenant_outage_loses_nothing_and_sends_nothing_twice(campaign: Campaign) -> None:
    report: LosslessReport = campaign.report("tenant-outage")
    assert report.kept_for_later > 0, "the tenant was never seen down: the outage did not happen"
    _assert_lossless(report)


def test_forwarder_killed_resumes_from_its_state_without_loss_or_duplicates(campaign: Campaign) -> None:
    report: LosslessReport = campaign.report("forwarder-killed")
    assert report.notes["journal_entries_at_kill"] > 0, (
        f"no kill landed among a cycle's sends, so resuming mid-window was not exercised: {report.notes}"
    )
    assert report.runs == report.notes["kill_attempts"] + 1
    _assert_lossless(report, cut_off_requests=report.notes["kill_attempts"])


def test_replica_outage_leaves_both_replicas_identical_to_the_source(campaign: Campaign) -> None:
    report: LosslessReport = campaign.report("replica-outage")
    assert set(report.diffs) == {"p-0", "p-1"}
    assert report.kept_for_later > 0, "p-1 was never seen down: the outage did not happen"
    _assert_lossless(report)


def test_series_removed_at_the_source_is_stale_at_the_tenant_within_one_cycle(campaign: Campaign) -> None:
    report: StalenessReport = campaign.report("staleness")
    assert report.removed_latency_s is not None, "the removed series never went stale at the tenant (60 s)"
    assert report.removed_latency_s <= ONE_CYCLE_S + SLACK_S, (
        f"stale after {report.removed_latency_s:.1f} s (source: {report.source_latency_s} s)"
    )
    assert report.others_present, "the series still at the source must stay live at the tenant"
    assert report.diff.exact, report.diff.summary()
    assert report.drops == []


def test_victoriametrics_with_basic_auth_receives_every_sample(campaign: Campaign) -> None:
    report: VictoriaMetricsReport = campaign.report("victoriametrics")
    assert report.received_series > 0
    assert report.diff.source_samples > 100
    assert report.diff.exact, report.diff.summary()
    assert report.good_drops == []


def test_wrong_password_is_one_counted_401_drop_per_batch_never_retried(campaign: Campaign) -> None:
    report: VictoriaMetricsReport = campaign.report("victoriametrics")
    assert report.wrong_password_statuses == [401]
    assert report.wrong_password_retries == 0
    # one batch of new samples per cycle, each refused once
    assert report.cycles_observed - 2 <= report.wrong_password_drops <= report.cycles_observed + 2, (
        f"{report.wrong_password_drops} drops in {report.cycles_observed:.1f} cycles"
    )


def test_dead_sink_leaves_the_other_jobs_sink_on_schedule(campaign: Campaign) -> None:
    report: DeadSinkReport = campaign.report(DEAD_SINK)
    assert report.dead_kept_for_later >= 3, "the dead sink was not being tried"
    assert max(report.lags_s) <= INTERVAL_S + SAFETY_DELAY_S + SLACK_S, (
        f"the live tenant fell behind the source: lags {[round(lag, 1) for lag in report.lags_s]}"
    )
    assert report.diff.exact, report.diff.summary()
    assert report.live_drops == []


def test_pushgateway_holds_the_newest_values_under_job_and_namespace(campaign: Campaign) -> None:
    report: PushgatewayReport = campaign.report("pushgateway")
    assert report.first_group is not None, "the Pushgateway never held the expected group and values"
    assert report.first_group["labels"] == {"job": "rw-e2e", "namespace": "team-g"}
    assert report.first_group["series"] == report.expected
    assert report.updated_latency_s is not None and report.updated_latency_s <= ONE_CYCLE_S + SLACK_S
    assert report.drops == []


def test_pushgateway_group_is_deleted_when_its_metricaccess_file_is_removed(campaign: Campaign) -> None:
    report: PushgatewayReport = campaign.report("pushgateway")
    assert report.deleted_latency_s is not None, "the group was still there 30 s after the file was removed"
    assert report.deleted_latency_s <= 5
    assert set(report.other_job_starts.values()) == {1}, (
        f"removing one file restarted other jobs: {report.other_job_starts}"
    )


def test_collected_metrics_lists_the_tenants_forwarded_series_and_nothing_of_others(campaign: Campaign) -> None:
    report: CollectedMetricsReport = campaign.report("collected-metrics")
    lines = report.own.splitlines()
    assert lines[0].startswith("# Job: team-d/forward (") and lines[0].endswith(" metrics)")
    count = int(lines[0].split("(")[1].split()[0])
    samples = [line for line in lines[1:] if line and not line.startswith("#")]
    assert count == len(samples) > 0
    for line in samples:
        assert re.fullmatch(r'[a-zA-Z_:][a-zA-Z0-9_:]*\{.*\} \S+ [0-9]+', line), line
        assert 'namespace="team-d"' in line, line
    assert "team-a" not in report.own and "team-e" not in report.own
    assert report.other == "# no metrics collected yet\n"
