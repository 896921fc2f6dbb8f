"""The end-to-end campaign, run once per session and Prometheus build for every test that asks for it.

It is a sync fixture (it calls ``trio.run`` itself) because pytest-trio's async fixtures
are function-scoped, and the scenarios share servers and 30-second outages: run one by
one they would take several minutes, side by side about a minute and a half.

It runs twice: every Prometheus of it (the infrastructure one and the tenants) is Debian's
2.42 in one run and Prometheus 3 (``make testbin``) in the other, so the forwarding is
proved on the Prometheus users run today as well.
"""

from __future__ import annotations

import pytest
from realservers import use_binaries
from realservers.testbin import PROMETHEUS_FLAVOURS, prometheus_build

from .campaign import Campaign, run_campaign


@pytest.fixture(scope="session", params=PROMETHEUS_FLAVOURS)
def campaign(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    with use_binaries(prometheus_build(request)):
        return run_campaign(tmp_path_factory)
