"""Bad input to the image (issue 5): each gives its documented exit code and a one-line error.

Exit codes from docker/agent-entrypoint.sh: 64 workspace missing, 65 not a directory,
66 not writable, 67 credentials unusable, 68 no writable home, 69 cannot drop root.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from imagekit import HARDENED, Containers, Exited, bind, exec_in, wait_healthy

from agentimage import lines

CREDENTIALS = "/run/secrets/claude-credentials.json"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root on the host to create files owned by other uids"
)


def assert_one_line_error(result: Exited, code: int, *needles: str) -> None:
    assert result.code == code, str(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr\n{result}"
    assert lines[0].startswith("agent-entrypoint: error: "), str(result)
    for needle in needles:
        assert needle in lines[0], f"{needle!r} missing\n{result}"
    assert "ran" not in result.stdout, f"the command ran despite the error\n{result}"


RAN = ["echo", "ran"]


def test_workspace_missing(containers: Containers) -> None:
    result = containers.run(RAN, environment={"AGENT_WORKSPACE": "/no/such/workspace"})
    assert_one_line_error(result, 64, "/no/such/workspace", "does not exist", "-v ")


def test_workspace_is_a_file(containers: Containers, tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x\n")
    result = containers.run(
        RAN,
        environment={"AGENT_WORKSPACE": "/srv/ws"},
        volumes={str(afile): {"bind": "/srv/ws", "mode": "rw"}},
    )
    assert_one_line_error(result, 65, "/srv/ws", "not a directory")


def test_workspace_read_only(containers: Containers, workspace: Path) -> None:
    result = containers.run(RAN, volumes=bind(workspace, mode="ro"))
    assert_one_line_error(result, 66, "/workspace", "not writable", "read-write")


@needs_root
def test_workspace_owned_by_another_uid(containers: Containers, owned_dir: Callable) -> None:
    other = owned_dir("other", uid=4242)
    result = containers.run(RAN, volumes=bind(other), **HARDENED)
    assert_one_line_error(result, 66, "/workspace", "uid 1000")


@needs_root
def test_root_start_chowns_workspace_and_drops(containers: Containers, owned_dir) -> None:
    ws = owned_dir("rootws", uid=0)
    (ws / "sub").mkdir()
    (ws / "sub" / "file").write_text("root's\n")
    result = containers.run(
        ["bash", "-c", 'id -un; id -G; echo "$HOME"; stat -c %u:%g /workspace /workspace/sub/file'],
        user="0:0",
        volumes=bind(ws),
    )
    assert result.code == 0, str(result)
    assert result.stdout.split() == [
        "agentgate",
        "1000",
        "/home/agentgate",
        "1000:1000",
        "1000:1000",
    ], str(result)
    assert (ws / "sub" / "file").stat().st_uid == 1000
    assert result.stderr == "", str(result)


@needs_root
def test_root_start_with_read_only_foreign_workspace(containers: Containers, owned_dir) -> None:
    ws = owned_dir("rootro", uid=0)
    result = containers.run(RAN, user="0:0", volumes=bind(ws, mode="ro"))
    assert_one_line_error(result, 66, "/workspace", "--user 1000:1000")


def test_root_start_without_setuid_capability(containers: Containers, workspace: Path) -> None:
    # Nothing to chown (the workspace is the agent's), but no CAP_SETUID to drop root.
    result = containers.run(RAN, user="0:0", cap_drop=["ALL"], volumes=bind(workspace))
    assert_one_line_error(result, 69, "--user 1000:1000")


COMMIT = """
    set -eu
    cd /workspace
    git init -q
    echo x > f
    git add f
    git commit -q -m c
    git log --format=%an
    claude --version
    echo "HOME=$HOME"
"""


@needs_root
def test_user_without_passwd_entry_with_tmpfs_home(containers: Containers, owned_dir) -> None:
    ws = owned_dir("ws4242", uid=4242)
    profile = {**HARDENED, "tmpfs": {"/tmp": "", "/home/agentgate": "uid=4242,gid=4242"}}
    result = containers.run(["bash", "-c", COMMIT], user="4242:4242", volumes=bind(ws), **profile)
    assert result.code == 0, str(result)
    assert result.stdout.splitlines()[0] == "AgentGate Agent", str(result)
    assert "HOME=/home/agentgate" in result.stdout
    assert result.stderr == "", str(result)


@needs_root
def test_user_without_passwd_entry_falls_back_to_tmp(containers: Containers, owned_dir) -> None:
    ws = owned_dir("ws4242b", uid=4242)
    profile = {**HARDENED, "tmpfs": {"/tmp": ""}}
    result = containers.run(["bash", "-c", COMMIT], user="4242:4242", volumes=bind(ws), **profile)
    assert result.code == 0, str(result)
    assert "HOME=/tmp/agentgate-home-4242" in result.stdout, str(result)
    warning = result.stderr.splitlines()
    assert len(warning) == 1, str(result)
    assert "warning" in warning[0], str(result)
    assert "--tmpfs" in warning[0], str(result)


def test_no_writable_home_at_all_exits_68(containers: Containers, workspace: Path) -> None:
    # --read-only without any tmpfs: a clear error, never a hang (containers.run is bounded).
    profile = {key: value for key, value in HARDENED.items() if key != "tmpfs"}
    result = containers.run(RAN, volumes=bind(workspace), timeout=30, **profile)
    assert_one_line_error(result, 68, "/home/agentgate", "--tmpfs")


# --- credentials ----------------------------------------------------------------------------


def _credentials(tmp_path: Path, content: str, mode: int = 0o600, uid: int = 1000) -> Path:
    path = tmp_path / "credentials.json"
    path.write_text(content)
    path.chmod(mode)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    return path


def _with_credentials(source: Path, workspace: Path) -> dict:
    return {**bind(workspace), str(source): {"bind": CREDENTIALS, "mode": "ro"}}


def test_credentials_linked_into_config_dir(
    containers: Containers, workspace: Path, tmp_path: Path
) -> None:
    creds = _credentials(tmp_path, json.dumps({"claudeAiOauth": {"accessToken": "tok-1"}}))
    container = containers.start(volumes=_with_credentials(creds, workspace), **HARDENED)
    wait_healthy(container)
    code, out = exec_in(
        container,
        'readlink "$HOME/.claude/.credentials.json"; '
        'jq -r .claudeAiOauth.accessToken "$HOME/.claude/.credentials.json"',
    )
    assert code == 0, out
    assert out.split() == [CREDENTIALS, "tok-1"]
    assert container.logs().decode() == "", "a valid 0600 credentials file needs no message"


def test_cli_logs_in_with_mounted_credentials(
    containers: Containers, workspace: Path, tmp_path: Path, node_line: str
) -> None:
    """Subscription mode end to end: the CLI itself reports the read-only mount as a login.

    Only on the default line: the 2.1.33x CLI of the current line ignores a
    credentials file while CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST is set (which keeps a
    repository from redirecting the API), so there the mount is reported as no login and
    the gateway must hold the credentials (README, "Credentials"). Should a CLI release
    honour the file again, this fails and the README's note goes."""
    oauth = {
        "accessToken": "sk-ant-oat01-test",
        "refreshToken": "sk-ant-ort01-test",
        "expiresAt": 4102444800000,  # 2100-01-01: never refreshed, so no network is needed
        "scopes": ["user:inference", "user:profile"],
    }
    creds = _credentials(tmp_path, json.dumps({"claudeAiOauth": oauth}))
    logged_in = containers.start(volumes=_with_credentials(creds, workspace), **HARDENED)
    anonymous = containers.start(volumes=bind(workspace), **HARDENED)
    for container in (logged_in, anonymous):
        wait_healthy(container)
    status = {}
    for name, container in (("mounted", logged_in), ("none", anonymous)):
        code, out = exec_in(container, "claude auth status")  # exits 1 when logged out
        status[name] = (code, json.loads(out)["loggedIn"])
    honoured = node_line == lines.read().default
    assert status == {"mounted": (0, True) if honoured else (1, False), "none": (1, False)}


@pytest.mark.parametrize(
    "content", ['{"claudeAiOauth": {"accessToken": "tok-SECRET-2"', ""], ids=["truncated", "empty"]
)
def test_credentials_malformed_exits_67(
    containers: Containers, workspace: Path, tmp_path: Path, content: str
) -> None:
    creds = _credentials(tmp_path, content)
    result = containers.run(RAN, volumes=_with_credentials(creds, workspace), **HARDENED)
    assert_one_line_error(result, 67, CREDENTIALS, "JSON")
    assert "tok-SECRET-2" not in result.logs


def test_credentials_world_readable_warns(
    containers: Containers, workspace: Path, tmp_path: Path
) -> None:
    creds = _credentials(tmp_path, json.dumps({"x": "tok-SECRET-3"}), mode=0o644)
    result = containers.run(RAN, volumes=_with_credentials(creds, workspace), **HARDENED)
    assert result.code == 0, str(result)
    assert result.stdout == "ran\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, str(result)
    assert "warning" in lines[0], str(result)
    assert "world-readable" in lines[0], str(result)
    assert "tok-SECRET-3" not in result.logs


def test_credentials_mounted_inside_the_cli_config_dir_exit_67_naming_the_fix(
    containers: Containers, workspace: Path, tmp_path: Path
) -> None:
    """Docker creates the parents of a bind mount as root: a file mounted at
    ~/.claude/.credentials.json would leave the CLI a ~/.claude it cannot write."""
    creds = _credentials(tmp_path, json.dumps({"x": "tok-SECRET-5"}))
    inside = "/home/agentgate/.claude/.credentials.json"
    result = containers.run(
        RAN,
        volumes={**bind(workspace), str(creds): {"bind": inside, "mode": "ro"}},
        environment={"AGENT_CREDENTIALS_FILE": inside},
        **HARDENED,
    )
    assert_one_line_error(result, 67, inside, CREDENTIALS)
    assert "tok-SECRET-5" not in result.logs


def test_credentials_directory_exits_67(
    containers: Containers, workspace: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "creds-dir"
    directory.mkdir()
    result = containers.run(RAN, volumes=_with_credentials(directory, workspace), **HARDENED)
    assert_one_line_error(result, 67, CREDENTIALS, "directory")


@needs_root
def test_credentials_unreadable_exits_67(
    containers: Containers, workspace: Path, tmp_path: Path
) -> None:
    creds = _credentials(tmp_path, json.dumps({"x": "tok-SECRET-4"}), mode=0o600, uid=0)
    result = containers.run(RAN, volumes=_with_credentials(creds, workspace), **HARDENED)
    assert_one_line_error(result, 67, CREDENTIALS, "not readable")
    assert "tok-SECRET-4" not in result.logs
