"""Every suite: under the nox sessions (AGENTGATE_NO_SKIPS=1) a skipped test fails the run.

A developer may run a subset by hand and see skips (no Docker engine, not root, no
AGENT_IMAGE); `nox -s verify`, and so CI, never passes with a test that did not run: the
skip's own reason, naming what was missing, becomes the failure.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

NO_SKIPS = "AGENTGATE_NO_SKIPS"


def skips_fail() -> bool:
    return os.environ.get(NO_SKIPS) == "1"


def _as_failure(report: pytest.TestReport | pytest.CollectReport) -> None:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped, but {NO_SKIPS}=1 lets nothing skip: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if skips_fail() and report.skipped and not hasattr(report, "wasxfail"):
        _as_failure(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if skips_fail() and report.skipped:
        _as_failure(report)
    return report
