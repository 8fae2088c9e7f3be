"""Red team, item 5: nothing in the workspace can hang or break the start.

A FIFO at .git/config once hung the entrypoint forever while health said healthy; garbage
there made it exit 128. `docker run IMAGE --version` failed in bash's exec. And health said
healthy whether or not the entrypoint had finished.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from docker.models.containers import Container
from sandbox import Sandboxes, logs_of


def wait_health(container: Container, wanted: str, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        health = container.attrs["State"].get("Health") or {}
        if health.get("Status") == wanted:
            return [entry["Output"] for entry in health.get("Log") or []]
        if time.monotonic() > deadline:
            pytest.fail(f"not {wanted} within {timeout}s: {health}\n{logs_of(container)}")
        time.sleep(0.2)


@pytest.mark.parametrize("planted", ["fifo", "garbage"])
def test_a_hostile_git_config_neither_hangs_nor_fails_the_start(
    sandboxes: Sandboxes, make_workspace: Callable[..., Path], planted: str
) -> None:
    workspace = make_workspace(files={".git/HEAD": "ref: refs/heads/main\n"})
    config = workspace / ".git" / "config"
    if planted == "fifo":
        os.mkfifo(config)
    else:
        config.write_text("[core\n\trepositoryformatversion = = =\n\x00\n")
    os.lchown(config, 1000, 1000)
    sandbox = sandboxes.start(str(workspace), wait=False)
    wait_health(sandbox.container, "healthy")
    code, out, _, _ = sandbox.exec(["sh", "-c", "echo works"], timeout=10)
    assert (code, out) == (0, "works\n")


def test_docker_run_with_flags_runs_the_cli(
    sandboxes: Sandboxes, workspace: Path, image_ref: str
) -> None:
    code, out, err = sandboxes.run(str(workspace), ["--version"])
    assert code == 0, err
    assert out.endswith("(Claude Code)\n"), out


def test_health_is_never_healthy_before_the_entrypoint_has_finished(
    sandboxes: Sandboxes, workspace: Path
) -> None:
    """The container runs, node and claude work, the workspace is writable, but the
    entrypoint never ran (as if it hung): health must not call that healthy."""
    sandbox = sandboxes.start(
        str(workspace),
        wait=False,
        entrypoint=["tini", "--"],
        command=["sleep", "infinity"],
        healthcheck={
            "test": ["CMD", "agent-healthcheck.sh"],
            "interval": 300_000_000,
            "timeout": 5_000_000_000,
            "retries": 1,
            "start_period": 1_000_000,
        },
    )
    outputs = wait_health(sandbox.container, "unhealthy")
    assert all("starting: the entrypoint has not finished" in out for out in outputs), outputs
