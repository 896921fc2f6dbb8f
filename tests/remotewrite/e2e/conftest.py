"""The end-to-end campaign, run once per session for every test that asks for it.

It is a sync fixture (it calls ``trio.run`` itself) because pytest-trio's async fixtures
are function-scoped, and the scenarios share servers and 30-second outages: run one by
one they would take several minutes, side by side about a minute and a half.
"""

from __future__ import annotations

import pytest

from .campaign import Campaign, run_campaign


@pytest.fixture(scope="session")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    return run_campaign(tmp_path_factory)
