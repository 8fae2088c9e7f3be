"""The vulnerability gate: grype against each platform's SBOM, before anything is signed or
recorded in git.

A scan is only as good as its database, and none can be downloaded on hosts without
internet access. So the gate runs where grype and a current database are installed, and
otherwise says plainly that no scan ran; it never reports a scan it did not do. With
`release.vulnerability_scan: required` (CI that has a database) a missing scanner stops the
release instead.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from agentimage import proc
from agentimage.errors import AgentImageError, ExitCode

SCANNER = "grype"
MODES = ("auto", "required", "off")
SEVERITIES = ("negligible", "low", "medium", "high", "critical")
DB_TIMEOUT = 30


@dataclass(frozen=True)
class Gate:
    scanner: str  # the grype to run; "" when no scan runs
    reason: str  # why no scan runs ("" when one does)
    fail_on: str = "high"


def check_mode(mode: str) -> str:
    return _one_of(mode, MODES, "vulnerability scan mode", "release.vulnerability_scan")


def check_severity(severity: str) -> str:
    return _one_of(severity, SEVERITIES, "severity", "release.vulnerability_fail_on")


def _one_of(value: str, allowed: tuple[str, ...], what: str, setting: str) -> str:
    if value not in allowed:
        raise AgentImageError(
            f"{what} {value!r} is unknown; use one of {', '.join(allowed)} ({setting})"
        )
    return value


def gate(mode: str, fail_on: str) -> Gate:
    """Whether the release can scan here. `required` without a scanner is an error."""
    check_mode(mode)
    check_severity(fail_on)
    if mode == "off":
        return Gate("", "turned off (release.vulnerability_scan: off)", fail_on)
    found = shutil.which(SCANNER)
    reason = ""
    if not found:
        reason = "grype is not installed, and no vulnerability database is reachable here"
    else:
        status = proc.run([found, "db", "status"], timeout=DB_TIMEOUT)
        if not status.ok:
            reason = f"grype has no usable vulnerability database ({status.detail})"
    if reason and mode == "required":
        raise AgentImageError(
            f"the vulnerability scan is required but cannot run: {reason}; install grype and "
            "run grype db update where its database can be downloaded",
            ExitCode.ENVIRONMENT,
        )
    return Gate("" if reason else str(found), reason, fail_on)


def scan_argv(scanner: str, sbom: Path, fail_on: str) -> list[str]:
    """grype reads our CycloneDX SBOM; it exits 1 when a finding reaches `fail_on`."""
    return [scanner, f"sbom:{sbom}", "--fail-on", fail_on, "--output", "table"]


# The database is updated on purpose (grype db update), never in the middle of a release.
SCAN_ENV = {"GRYPE_DB_AUTO_UPDATE": "false", "GRYPE_CHECK_FOR_APP_UPDATE": "false"}
