"""docker/agent-healthcheck.sh run on the host with stand-ins for node and claude.

PATH holds only a shim dir: `node` and `claude` are shell scripts the test controls, `id` and
`setpriv` are linked from the host. So each check can be made to fail on its own, and the
test sees the reason the script prints (Docker stores it in State.Health.Log). The ready
marker names this test process (alive, with its real start time) unless a test says
otherwise; AGENT_USER is `nobody`, the host having no `agentgate`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from shell_helpers import (
    HEALTHCHECK,
    IS_ROOT,
    NOBODY,
    give,
    run,
    shared_tmpdir,
    unprivileged_uid,
    write_shim,
)


def start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat: the process's start time in clock ticks since boot."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19]


@dataclass
class Health:
    root: Path
    bindir: Path
    workspace: Path
    claude_ran: Path

    @property
    def ready(self) -> Path:
        return self.root / "ready"

    def run(self, *, unprivileged: bool = True, prefix: tuple[str, ...] = (), **env: str):
        full_env = {
            "PATH": str(self.bindir),
            "AGENT_WORKSPACE": str(self.workspace),
            "AGENT_READY_FILE": str(self.ready),
            "AGENT_USER": "nobody",
            **env,
        }
        argv = [*prefix, str(HEALTHCHECK)]
        return run(argv, full_env, unprivileged=unprivileged)


@pytest.fixture
def health() -> Iterator[Health]:
    with shared_tmpdir() as root:
        bindir = root / "bin"
        bindir.mkdir()
        workspace = root / "workspace"
        workspace.mkdir()
        give(workspace)
        for tool in ("id", "setpriv"):
            host_tool = shutil.which(tool)
            assert host_tool, f"{tool} is needed on the host"
            (bindir / tool).symlink_to(host_tool)
        claude_ran = root / "claude-ran"
        write_shim(bindir, "node", "exit 0")
        # The real CLI is a 245 MB binary: the check must not start it every 30 s.
        write_shim(bindir, "claude", f'touch "{claude_ran}"; echo "9.8.7 (Claude Code)"')
        box = Health(root, bindir, workspace, claude_ran)
        box.ready.write_text(f"{os.getpid()} {start_time(os.getpid())}\n")
        yield box


def assert_unhealthy(result, *needles: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith("unhealthy: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def test_all_checks_pass(health: Health) -> None:
    result = health.run()
    assert (result.returncode, result.stdout, result.stderr) == (0, "healthy\n", "")


def test_starting_until_the_entrypoint_writes_its_marker(health: Health) -> None:
    health.ready.unlink()
    assert_unhealthy(health.run(), "starting", str(health.ready))


def test_marker_naming_a_process_that_exited(health: Health) -> None:
    gone = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    health.ready.write_text(f"{gone.stdout.strip()} 1\n")
    assert_unhealthy(health.run(), "has exited")


def test_marker_from_an_earlier_run_with_a_reused_pid_is_stale(health: Health) -> None:
    """A restarted container reuses PIDs; /tmp may keep the old marker if it is no tmpfs."""
    health.ready.write_text(f"{os.getpid()} {int(start_time(os.getpid())) - 1}\n")
    assert_unhealthy(health.run(), "stale")


def test_root_drops_to_the_agent_before_it_checks_anything(health: Health) -> None:
    """After a root start Docker runs the check as root: it must run as the agent instead
    (as root, the workspace would look writable whatever its mode)."""
    if not IS_ROOT:
        pytest.skip("needs root to start the check as root")
    health.workspace.chmod(0o555)
    assert_unhealthy(health.run(unprivileged=False), "not writable", f"uid {NOBODY}")


def test_root_that_cannot_drop_is_unhealthy(health: Health) -> None:
    if not IS_ROOT:
        pytest.skip("needs root to start the check as root")
    result = health.run(
        unprivileged=False, prefix=("setpriv", "--bounding-set=-setuid", "--inh-caps=-all")
    )
    assert_unhealthy(result, "cannot drop to nobody")


def test_root_refuses_a_root_agent_user(health: Health) -> None:
    if not IS_ROOT:
        pytest.skip("needs root to start the check as root")
    assert_unhealthy(health.run(unprivileged=False, AGENT_USER="root"), "AGENT_USER=root")


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
        health.run(),
        str(health.workspace),
        "not writable",
        f"uid {unprivileged_uid()}",
    )


def test_default_workspace_is_slash_workspace(health: Health) -> None:
    if os.path.isdir("/workspace"):
        pytest.skip("this host has a /workspace; the default cannot be told apart")
    env = {"PATH": str(health.bindir), "AGENT_READY_FILE": str(health.ready)}
    result = run(["/bin/sh", str(HEALTHCHECK)], env, unprivileged=True)
    assert_unhealthy(result, "workspace /workspace")


def test_secret_env_is_never_printed(health: Health) -> None:
    (health.bindir / "claude").unlink()  # the failing message prints PATH; nothing else
    secret = "sk-ant-test-SECRET-healthcheck"
    result = health.run(ANTHROPIC_API_KEY=secret, CLAUDE_CODE_OAUTH_TOKEN=secret)
    assert result.returncode == 1
    assert secret not in result.stdout + result.stderr
