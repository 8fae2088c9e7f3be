"""Red team, item 7: bounded writable space, and what comes back from a sandbox.

- Every writable mount is bounded: /tmp and HOME by their tmpfs size, /dev/shm by Docker's
  64 MiB, and all of them by the container's memory limit (tmpfs pages are charged to it).
  /dev/shm and /dev/mqueue live in the container's own IPC namespace: another sandbox on the
  same host does not see them.
- A repository that comes back from a session is hostile: its .git/config can name commands
  (core.fsmonitor, filters, hooks) that plain `git status` on the host would run. The server
  imports the agent's commits by fetching into a fresh repository of its own, which runs none
  of them; the positive control shows `git status` in the returned checkout would.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sandbox import Sandboxes


@pytest.mark.parametrize(
    ("mount", "limit_mib"), [("/tmp", 256), ("/home/agentgate", 64), ("/dev/shm", 64)]
)
def test_writable_mounts_are_bounded(
    sandboxes: Sandboxes, workspace: Path, mount: str, limit_mib: int
) -> None:
    sandbox = sandboxes.start(str(workspace))
    script = f"dd if=/dev/zero of={mount}/fill bs=1M count={limit_mib + 32} 2>&1; echo rc=$?"
    _, out, _, _ = sandbox.exec(["sh", "-c", script])
    assert "No space left on device" in out, out
    _, size, _, _ = sandbox.exec(["sh", "-c", f"du -sm {mount}/fill | cut -f1"])
    assert int(size) <= limit_mib, out


def test_ipc_mounts_are_private_to_each_sandbox(sandboxes: Sandboxes, make_workspace) -> None:
    first = sandboxes.start(str(make_workspace("one")))
    second = sandboxes.start(str(make_workspace("two")))
    first.exec(["sh", "-c", "echo secret > /dev/shm/left-behind"])
    code, _, _, _ = second.exec(["test", "-e", "/dev/shm/left-behind"])
    assert code != 0, "one sandbox saw another's /dev/shm"


# Relative paths: the planted commands run from the repository's top, in the sandbox and on
# the host alike.
PLANT = r"""
set -e
cd /workspace
git init -q -b main
echo data > file
git add file
git commit -q -m "agent work"
git config core.fsmonitor "touch .fsmonitor-ran; false"
git config filter.evil.clean "touch .filter-ran; cat"
echo "* filter=evil" > .gitattributes
printf '#!/bin/sh\ntouch .hook-ran\n' > .git/hooks/post-checkout
chmod +x .git/hooks/post-checkout
echo changed > file
"""

RAN = (".fsmonitor-ran", ".filter-ran", ".hook-ran")


def _host_git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """git on the host as an unprivileged user, with no config of the host's own."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "git", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_server_imports_a_returned_repository_without_running_its_config(
    sandboxes: Sandboxes, workspace: Path, tmp_path: Path
) -> None:
    sandbox = sandboxes.start(str(workspace))
    code, _, err, _ = sandbox.exec(["sh", "-c", PLANT])
    assert code == 0, err
    sandbox.container.stop(timeout=5)
    for item in [workspace, *workspace.rglob("*")]:
        os.lchown(item, 65534, 65534)  # as if the host user owned the returned checkout
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    os.chown(trusted, 65534, 65534)
    for parent in [tmp_path, *tmp_path.parents][:3]:  # pytest's private dirs: let it through
        parent.chmod(parent.stat().st_mode | 0o005)

    # The documented import: a fresh repository fetches the agent's commits.
    steps = [
        ("init", "-q", "-b", "main"),
        ("fetch", "--no-tags", f"{workspace}/.git", "+refs/heads/main:refs/agent/main"),
        ("log", "--format=%s", "refs/agent/main"),
    ]
    for step in steps:
        result = _host_git(*step, cwd=trusted)
        assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "agent work"
    assert not [name for name in RAN if (workspace / name).exists()]

    # Positive control: the same repository, used in place, runs what the agent planted.
    status = _host_git("-c", f"safe.directory={workspace}", "status", cwd=workspace)
    assert status.returncode == 0, status.stderr
    assert (workspace / ".fsmonitor-ran").exists(), "positive control: the plant did not work"
