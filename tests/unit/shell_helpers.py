"""Run the image's shell scripts on the host, as the current user or as an unprivileged one.

The entrypoint and the health check are bash/POSIX sh that tests source or run directly. Some
checks (`[[ -w ]]`, `[[ -r ]]`) are always true for root, and CI runs as root: those cases run
under `setpriv` as UID/GID 65534 (nobody), which needs root; as a non-root user they simply
run as that user, who is already unprivileged.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "docker" / "agent-entrypoint.sh"
HEALTHCHECK = REPO / "docker" / "agent-healthcheck.sh"
NOBODY = 65534
TIMEOUT = 30

IS_ROOT = os.geteuid() == 0
SETPRIV = shutil.which("setpriv")


def unprivileged_prefix() -> list[str]:
    """The argv prefix that runs a command as a user for whom permission bits apply."""
    if not IS_ROOT:
        return []
    if SETPRIV is None:
        pytest.skip("running as root without setpriv: cannot run a permission check as non-root")
    return [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def unprivileged_uid() -> int:
    return NOBODY if IS_ROOT else os.geteuid()


def give(*paths: Path) -> None:
    """Make paths belong to the unprivileged user (no-op when we are that user already)."""
    if IS_ROOT:
        for path in paths:
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)


def run(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    unprivileged: bool = False,
    timeout: float = TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    prefix = unprivileged_prefix() if unprivileged else []
    return subprocess.run(
        [*prefix, *argv],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def shared_tmpdir() -> Iterator[Path]:
    """A temp dir every user can traverse (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="agentgate-unit-"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        # Tests lock dirs (chmod 0555); unlock them so a non-root run can delete them too.
        for dirpath, _, _ in os.walk(path):
            os.chmod(dirpath, 0o700)
        shutil.rmtree(path, ignore_errors=True)


def write_shim(bindir: Path, name: str, body: str) -> Path:
    """An executable sh script on a PATH dir, standing in for a real program."""
    shim = bindir / name
    shim.write_text(f"#!/bin/sh\n{body}\n")
    shim.chmod(0o755)
    return shim
