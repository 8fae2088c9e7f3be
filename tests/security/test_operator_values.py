"""Red team, item 4: a careless operator's values are refused before they do harm.

Each value once did damage: AGENT_WORKSPACE=/workspace/.. re-owned the root filesystem,
AGENT_WORKSPACE=-delete (with such a directory present) reached find as an expression and
deleted the host's checkout, AGENT_USER=root looped at 100% CPU while health said healthy,
BASH_ENV ran a workspace file as root before the drop, CLAUDE_CONFIG_DIR=/workspace chmodded
the host's checkout to 0700. Each is now a documented exit (78) with one line naming the fix,
and the host's files are as they were.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sandbox import Sandboxes

ROOT_START = {"user": "0:0", "cap_add": ["CHOWN", "SETUID", "SETGID", "SETPCAP"]}


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path below ROOT with its owner, group and mode."""
    found = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        found[str(path.relative_to(root))] = (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))
    return found


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ({"AGENT_WORKSPACE": "/workspace/.."}, "resolves to /"),
        ({"AGENT_WORKSPACE": "-delete"}, "not an absolute path"),
        ({"AGENT_USER": "root"}, "never runs as root"),
        ({"CLAUDE_CONFIG_DIR": "/workspace"}, "in the workspace"),
    ],
    ids=["workspace-dotdot", "workspace-dash-delete", "user-root", "config-dir-workspace"],
)
def test_a_harmful_setting_is_refused_and_the_host_is_untouched(
    sandboxes: Sandboxes,
    make_workspace: Callable[..., Path],
    setting: dict[str, str],
    needle: str,
) -> None:
    workspace = make_workspace(
        uid=4242, files={"-delete/keep": "x\n", "src/main.py": "print()\n", "README": "r\n"}
    )
    before = snapshot(workspace)
    started = time.monotonic()
    code, out, err = sandboxes.run(
        str(workspace), ["echo", "ran"], environment=setting, timeout=30, **ROOT_START
    )
    assert code == 78, err
    assert time.monotonic() - started < 30
    [line] = err.splitlines()
    assert line.startswith("agent-entrypoint: error: ")
    assert needle in line
    assert "ran" not in out
    assert snapshot(workspace) == before, "the refused start changed the host's files"


def test_bash_env_never_runs_during_a_root_start(
    sandboxes: Sandboxes, make_workspace: Callable[..., Path]
) -> None:
    workspace = make_workspace(uid=0, files={"planted.sh": "touch /workspace/bash-env-ran\n"})
    code, out, err = sandboxes.run(
        str(workspace),
        ["sh", "-c", 'echo "BASH_ENV=${BASH_ENV:-unset}"'],
        environment={"BASH_ENV": "/workspace/planted.sh", "ENV": "/workspace/planted.sh"},
        **ROOT_START,
    )
    assert code == 0, err
    assert not (workspace / "bash-env-ran").exists(), "BASH_ENV ran during the start"
    assert out == "BASH_ENV=unset\n"


def test_a_non_root_start_ignores_bash_env_in_the_entrypoint(
    sandboxes: Sandboxes, make_workspace: Callable[..., Path]
) -> None:
    workspace = make_workspace(files={"planted.sh": "touch /workspace/bash-env-ran\n"})
    for item in workspace.iterdir():
        os.lchown(item, 1000, 1000)
    code, _, err = sandboxes.run(
        str(workspace), ["true"], environment={"BASH_ENV": "/workspace/planted.sh"}
    )
    assert code == 0, err
    assert not (workspace / "bash-env-ran").exists()
