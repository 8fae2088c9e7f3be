"""docker/agent-healthcheck.sh run on the host with stand-ins for node and claude.

PATH holds only a shim dir: `node` and `claude` are shell scripts the test controls, `id` is
linked from the host. So each check can be made to fail on its own, and the test sees the
reason the script prints (Docker stores it in State.Health.Log).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from shell_helpers import (
    HEALTHCHECK,
    give,
    run,
    shared_tmpdir,
    unprivileged_uid,
    write_shim,
)


@dataclass
class Health:
    root: Path
    bindir: Path
    workspace: Path
    claude_ran: Path

    def run(self, *, unprivileged: bool = False, **env: str):
        full_env = {"PATH": str(self.bindir), "AGENT_WORKSPACE": str(self.workspace), **env}
        return run(["/bin/sh", str(HEALTHCHECK)], full_env, unprivileged=unprivileged)


@pytest.fixture
def health() -> Iterator[Health]:
    with shared_tmpdir() as root:
        bindir = root / "bin"
        bindir.mkdir()
        workspace = root / "workspace"
        workspace.mkdir()
        give(workspace)
        for tool in ("id",):
            host_tool = shutil.which(tool)
            assert host_tool, f"{tool} is needed on the host"
            (bindir / tool).symlink_to(host_tool)
        claude_ran = root / "claude-ran"
        write_shim(bindir, "node", "exit 0")
        # The real CLI is a 245 MB binary: the check must not start it every 30 s.
        write_shim(bindir, "claude", f'touch "{claude_ran}"; echo "2.1.197 (Claude Code)"')
        yield Health(root, bindir, workspace, claude_ran)


def assert_unhealthy(result, *needles: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith("unhealthy: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def test_all_checks_pass(health: Health) -> None:
    result = health.run(unprivileged=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "healthy\n", "")


def test_does_not_start_the_cli(health: Health) -> None:
    assert health.run().returncode == 0
    assert not health.claude_ran.exists(), "the health check ran the claude binary"


def test_node_failing(health: Health) -> None:
    write_shim(health.bindir, "node", "echo boom >&2; exit 3")
    assert_unhealthy(health.run(), "node does not run")


def test_node_missing(health: Health) -> None:
    (health.bindir / "node").unlink()
    assert_unhealthy(health.run(), "node does not run")


def test_claude_missing_names_path(health: Health) -> None:
    (health.bindir / "claude").unlink()
    assert_unhealthy(health.run(), "claude", str(health.bindir))


def test_claude_not_executable(health: Health) -> None:
    (health.bindir / "claude").chmod(0o644)
    assert_unhealthy(health.run(), "no executable claude", str(health.bindir))


def test_workspace_missing(health: Health) -> None:
    missing = health.root / "nope"
    assert_unhealthy(health.run(AGENT_WORKSPACE=str(missing)), str(missing), "missing")


def test_workspace_is_a_file(health: Health) -> None:
    afile = health.root / "file"
    afile.write_text("x")
    assert_unhealthy(health.run(AGENT_WORKSPACE=str(afile)), str(afile), "not a directory")


def test_workspace_not_writable(health: Health) -> None:
    health.workspace.chmod(0o555)
    assert_unhealthy(
        health.run(unprivileged=True),
        str(health.workspace),
        "not writable",
        f"uid {unprivileged_uid()}",
    )


def test_default_workspace_is_slash_workspace(health: Health) -> None:
    if os.path.isdir("/workspace"):
        pytest.skip("this host has a /workspace; the default cannot be told apart")
    result = run(["/bin/sh", str(HEALTHCHECK)], {"PATH": str(health.bindir)})
    assert_unhealthy(result, "workspace /workspace")


def test_secret_env_is_never_printed(health: Health) -> None:
    (health.bindir / "claude").unlink()  # the failing message prints PATH; nothing else
    secret = "sk-ant-test-SECRET-healthcheck"
    result = health.run(ANTHROPIC_API_KEY=secret, CLAUDE_CODE_OAUTH_TOKEN=secret)
    assert result.returncode == 1
    assert secret not in result.stdout + result.stderr
