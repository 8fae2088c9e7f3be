"""docker/agent-entrypoint.sh, sourced on the host and exercised one function at a time.

Every run gets its own workspace, HOME, CLI config dir, credentials path, TMPDIR and git
config files under a temp dir, so nothing of the host (its HOME, its gitconfig) leaks in.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from shell_helpers import (
    ENTRYPOINT,
    IS_ROOT,
    give,
    run,
    shared_tmpdir,
    unprivileged_uid,
    write_shim,
)

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SECRET_MARKER = "sk-ant-test-SECRET-3f9c2a"

requires_jq = pytest.mark.skipif(
    shutil.which("jq") is None,
    reason="jq is not installed on this host (the image has it): apt-get install jq",
)


@dataclass
class Sandbox:
    root: Path

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmpdir(self) -> Path:
        return self.root / "tmp"

    @property
    def config_dir(self) -> Path:
        return self.home / ".config" / "claude"

    @property
    def credentials(self) -> Path:
        return self.home / ".claude" / ".credentials.json"

    @property
    def gitconfig(self) -> Path:
        return self.root / "git" / "config"

    @property
    def bindir(self) -> Path:
        return self.root / "bin"

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.bindir}:{SYSTEM_PATH}",
            "LANG": "C.UTF-8",
            "AGENT_WORKSPACE": str(self.workspace),
            "HOME": str(self.home),
            "CLAUDE_CONFIG_DIR": str(self.config_dir),
            "AGENT_CREDENTIALS_FILE": str(self.credentials),
            "TMPDIR": str(self.tmpdir),
            # Isolate git from the host: no system config, a global config of our own.
            "GIT_CONFIG_GLOBAL": str(self.gitconfig),
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        env.update(overrides)
        return env

    def call(self, script: str, *, unprivileged: bool = False, **env: str):
        """Source the entrypoint in a fresh bash and run SCRIPT (one function call, usually)."""
        # $0 must not be the script's path: that is how the entrypoint tells "run" from
        # "sourced", and it would run _main.
        argv = ["bash", "-c", f'source "$1"; shift\n{script}', "bash", str(ENTRYPOINT)]
        return run(argv, self.env(**env), unprivileged=unprivileged)

    def main(self, *args: str, unprivileged: bool = True, **env: str):
        """Run the entrypoint as a program, the way tini starts it."""
        return run(["bash", str(ENTRYPOINT), *args], self.env(**env), unprivileged=unprivileged)

    def git_global(self, *args: str) -> list[str]:
        result = run(["git", "config", "--file", str(self.gitconfig), *args], self.env())
        return result.stdout.splitlines()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with shared_tmpdir() as root:
        box = Sandbox(root)
        for path in (box.workspace, box.home, box.tmpdir, box.bindir, box.gitconfig.parent):
            path.mkdir()
        # The unprivileged runs (root -> nobody) own what a real agent would own.
        give(box.workspace, box.home, box.tmpdir, box.gitconfig.parent)
        yield box


def assert_one_line_error(result, code: int, *needles: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected a one-line error, got: {result.stderr!r}"
    assert lines[0].startswith("agent-entrypoint: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert result.stdout == ""


# --- agent_verify_workspace ---------------------------------------------------------------


def test_workspace_ok_is_silent(sandbox: Sandbox) -> None:
    result = sandbox.call("agent_verify_workspace", unprivileged=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_workspace_missing_exits_64_naming_the_path(sandbox: Sandbox) -> None:
    missing = sandbox.root / "no-such-workspace"
    result = sandbox.call("agent_verify_workspace", AGENT_WORKSPACE=str(missing))
    assert_one_line_error(result, 64, str(missing), "does not exist", "-v ")


def test_workspace_file_exits_65(sandbox: Sandbox) -> None:
    afile = sandbox.root / "a-file"
    afile.write_text("not a dir\n")
    result = sandbox.call("agent_verify_workspace", AGENT_WORKSPACE=str(afile))
    assert_one_line_error(result, 65, str(afile), "not a directory")


def test_workspace_not_writable_exits_66(sandbox: Sandbox) -> None:
    sandbox.workspace.chmod(0o555)
    result = sandbox.call("agent_verify_workspace", unprivileged=True)
    assert_one_line_error(
        result, 66, str(sandbox.workspace), "not writable", f"uid {unprivileged_uid()}"
    )


@pytest.mark.skipif(not IS_ROOT, reason="the root-only branch needs the tests to run as root")
def test_workspace_not_writable_is_accepted_for_root(sandbox: Sandbox) -> None:
    # Root skips the writability check: it is about to chown the workspace to the agent.
    sandbox.workspace.chmod(0o555)
    result = sandbox.call("agent_verify_workspace")
    assert (result.returncode, result.stderr) == (0, "")


# --- agent_setup_home -----------------------------------------------------------------------

PRINT_HOME = 'agent_setup_home\nprintf "%s\\n" "$HOME" "$CLAUDE_CONFIG_DIR"\nexport -p'


def _exported(stdout: str, name: str) -> bool:
    return any(line.startswith(f"declare -x {name}=") for line in stdout.splitlines())


def test_home_writable_is_kept_and_config_dir_created_private(sandbox: Sandbox) -> None:
    result = sandbox.call(PRINT_HOME, unprivileged=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    home, config_dir = result.stdout.splitlines()[:2]
    assert (home, config_dir) == (str(sandbox.home), str(sandbox.config_dir))
    assert _exported(result.stdout, "CLAUDE_CONFIG_DIR")
    assert stat.S_IMODE(sandbox.config_dir.stat().st_mode) == 0o700


@pytest.mark.parametrize("broken", ["read-only", "missing"])
def test_home_unwritable_falls_back_to_tmpdir(sandbox: Sandbox, broken: str) -> None:
    if broken == "read-only":
        sandbox.home.chmod(0o555)
    else:
        sandbox.home.rmdir()
    result = sandbox.call(PRINT_HOME, unprivileged=True)
    assert result.returncode == 0, result.stderr
    fallback = sandbox.tmpdir / f"agentgate-home-{unprivileged_uid()}"
    home, config_dir = result.stdout.splitlines()[:2]
    assert home == str(fallback)
    # The config dir was under the old HOME, so it moves along.
    assert config_dir == str(fallback / ".config" / "claude")
    assert _exported(result.stdout, "HOME")
    assert stat.S_IMODE(fallback.stat().st_mode) == 0o700
    warning = result.stderr.splitlines()
    assert len(warning) == 1
    assert warning[0].startswith("agent-entrypoint: warning: ")
    assert str(sandbox.home) in warning[0]
    assert "--tmpfs" in warning[0]


def test_home_and_tmpdir_unwritable_exits_68(sandbox: Sandbox) -> None:
    sandbox.home.chmod(0o555)
    sandbox.tmpdir.chmod(0o555)
    result = sandbox.call("agent_setup_home", unprivileged=True)
    assert_one_line_error(result, 68, str(sandbox.home), str(sandbox.tmpdir), "--tmpfs")


def test_config_dir_unwritable_exits_68(sandbox: Sandbox) -> None:
    locked = sandbox.root / "locked"
    locked.mkdir(mode=0o555)
    config_dir = locked / "claude"
    result = sandbox.call("agent_setup_home", unprivileged=True, CLAUDE_CONFIG_DIR=str(config_dir))
    assert_one_line_error(result, 68, str(config_dir), "CLAUDE_CONFIG_DIR")


# --- agent_check_credentials ---------------------------------------------------------------

CHECK_CREDENTIALS = "agent_setup_home\nagent_check_credentials"


def _write_credentials(sandbox: Sandbox, text: str, mode: int = 0o600) -> Path:
    sandbox.credentials.parent.mkdir(parents=True, exist_ok=True)
    sandbox.credentials.write_text(text)
    sandbox.credentials.chmod(mode)
    give(sandbox.credentials.parent, sandbox.credentials)
    return sandbox.credentials


def _assert_secret_not_printed(result) -> None:
    assert SECRET_MARKER not in result.stdout + result.stderr


def test_credentials_absent_is_fine(sandbox: Sandbox) -> None:
    result = sandbox.call(CHECK_CREDENTIALS, unprivileged=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not (sandbox.config_dir / ".credentials.json").exists()


@requires_jq
def test_credentials_valid_are_linked_into_config_dir(sandbox: Sandbox) -> None:
    creds = _write_credentials(sandbox, json.dumps({"token": SECRET_MARKER}))
    result = sandbox.call(CHECK_CREDENTIALS, unprivileged=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    link = sandbox.config_dir / ".credentials.json"
    assert link.is_symlink()
    assert os.readlink(link) == str(creds)
    # A second start (e.g. a persistent config volume) finds the link and changes nothing.
    again = sandbox.call(CHECK_CREDENTIALS, unprivileged=True)
    assert (again.returncode, again.stderr) == (0, "")
    assert os.readlink(link) == str(creds)


def test_credentials_directory_exits_67(sandbox: Sandbox) -> None:
    sandbox.credentials.mkdir(parents=True)
    result = sandbox.call(CHECK_CREDENTIALS, unprivileged=True)
    assert_one_line_error(result, 67, str(sandbox.credentials), "directory")


def test_credentials_unreadable_exits_67(sandbox: Sandbox) -> None:
    creds = _write_credentials(sandbox, json.dumps({"token": SECRET_MARKER}), mode=0o000)
    result = sandbox.call(CHECK_CREDENTIALS, unprivileged=True)
    assert_one_line_error(result, 67, str(creds), "not readable")
    _assert_secret_not_printed(result)


@requires_jq
@pytest.mark.parametrize(
    "content",
    [
        f'{{"token": "{SECRET_MARKER}"',
        f"token={SECRET_MARKER}\n",
        f'["{SECRET_MARKER}"]',
        "",
        f'["{SECRET_MARKER}"]\n{{"token": "x"}}\n',
    ],
    ids=["truncated-json", "not-json", "json-array", "empty", "two-documents"],
)
def test_credentials_malformed_exits_67_without_printing_them(
    sandbox: Sandbox, content: str
) -> None:
    creds = _write_credentials(sandbox, content)
    result = sandbox.call(CHECK_CREDENTIALS, unprivileged=True)
    assert_one_line_error(result, 67, str(creds), "JSON")
    _assert_secret_not_printed(result)


@requires_jq
def test_credentials_world_readable_warns_but_succeeds(sandbox: Sandbox) -> None:
    creds = _write_credentials(sandbox, json.dumps({"token": SECRET_MARKER}), mode=0o644)
    result = sandbox.call(CHECK_CREDENTIALS, unprivileged=True)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agent-entrypoint: warning: ")
    assert "world-readable" in lines[0]
    assert str(creds) in lines[0]
    _assert_secret_not_printed(result)
    assert (sandbox.config_dir / ".credentials.json").is_symlink()


# --- agent_setup_git ------------------------------------------------------------------------


def test_git_gets_safe_directory_and_identity_when_missing(sandbox: Sandbox) -> None:
    result = sandbox.call("agent_setup_git")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert sandbox.git_global("--get-all", "safe.directory") == [str(sandbox.workspace)]
    assert sandbox.git_global("--get", "user.name") == ["AgentGate Agent"]
    assert sandbox.git_global("--get", "user.email") == ["agent@agentgate.invalid"]
    # Idempotent: a restart does not pile up safe.directory entries.
    assert sandbox.call("agent_setup_git").returncode == 0
    assert sandbox.git_global("--get-all", "safe.directory") == [str(sandbox.workspace)]


def test_git_keeps_what_system_config_already_has(sandbox: Sandbox) -> None:
    system = sandbox.root / "gitconfig-system"
    system.write_text(
        f"[safe]\n\tdirectory = {sandbox.workspace}\n"
        "[user]\n\tname = Someone Else\n\temail = someone@example.invalid\n"
    )
    env = sandbox.env(GIT_CONFIG_SYSTEM=str(system))
    del env["GIT_CONFIG_NOSYSTEM"]
    argv = ["bash", "-c", 'source "$1"; agent_setup_git', "bash", str(ENTRYPOINT)]
    result = run(argv, env)
    assert (result.returncode, result.stderr) == (0, "")
    assert not sandbox.gitconfig.exists() or sandbox.gitconfig.read_text().strip() == ""


def test_git_identity_from_env_is_not_overridden(sandbox: Sandbox) -> None:
    result = sandbox.call(
        "agent_setup_git", GIT_AUTHOR_NAME="Env Person", GIT_AUTHOR_EMAIL="env@example.invalid"
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert sandbox.git_global("--get", "user.name") == []
    assert sandbox.git_global("--get", "user.email") == []
    assert sandbox.git_global("--get-all", "safe.directory") == [str(sandbox.workspace)]


def test_git_identity_from_global_config_is_kept(sandbox: Sandbox) -> None:
    sandbox.gitconfig.write_text("[user]\n\tname = Mine\n\temail = mine@example.invalid\n")
    result = sandbox.call("agent_setup_git")
    assert (result.returncode, result.stderr) == (0, "")
    assert sandbox.git_global("--get-all", "user.name") == ["Mine"]
    assert sandbox.git_global("--get-all", "user.email") == ["mine@example.invalid"]


# --- _main ----------------------------------------------------------------------------------


@pytest.fixture
def sleep_shim(sandbox: Sandbox) -> Path:
    """`sleep` that reports its PID and arguments instead of sleeping."""
    return write_shim(sandbox.bindir, "sleep", 'echo "sleep-shim pid=$$ args=$*"')


def test_sourcing_runs_nothing(sandbox: Sandbox, sleep_shim: Path) -> None:
    result = sandbox.call("echo sourced")
    assert (result.returncode, result.stdout, result.stderr) == (0, "sourced\n", "")


def test_main_without_command_keeps_alive_with_sleep_infinity(
    sandbox: Sandbox, sleep_shim: Path
) -> None:
    result = sandbox.main()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("sleep-shim ")
    assert result.stdout.strip().endswith("args=infinity")


def test_main_execs_the_command_in_place(sandbox: Sandbox) -> None:
    # `exec` all the way down (setpriv, bash, the command): the command's parent is this
    # Python process, not a shell the entrypoint left behind between tini and the workload.
    script = 'echo "ppid=$PPID"; printf "<%s>" "$@"'
    result = sandbox.main("sh", "-c", script, "sh", "a b", "c")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ppid={os.getpid()}\n<a b><c>"


def test_main_passes_the_exit_code_through(sandbox: Sandbox) -> None:
    result = sandbox.main("sh", "-c", "exit 7")
    assert result.returncode == 7


def test_main_stops_before_the_command_on_bad_workspace(sandbox: Sandbox) -> None:
    marker = sandbox.root / "ran"
    result = sandbox.main(
        "touch", str(marker), AGENT_WORKSPACE=str(sandbox.root / "missing-workspace")
    )
    assert result.returncode == 64
    assert not marker.exists()


@requires_jq
def test_main_passes_secrets_through_and_never_prints_them(sandbox: Sandbox) -> None:
    # Warnings on the way (HOME fallback, world-readable credentials) must not echo env.
    _write_credentials(sandbox, json.dumps({"token": "x"}), mode=0o644)
    oauth = "sk-ant-oat-test-SECRET-77aa01"
    result = sandbox.main(
        "sh",
        "-c",
        'printf "%s\\n" "$ANTHROPIC_API_KEY" "$CLAUDE_CODE_OAUTH_TOKEN"',
        HOME=str(sandbox.root / "no-home"),
        AGENT_CREDENTIALS_FILE=str(sandbox.credentials),
        ANTHROPIC_API_KEY=SECRET_MARKER,
        CLAUDE_CODE_OAUTH_TOKEN=oauth,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [SECRET_MARKER, oauth]
    assert "warning" in result.stderr  # the warnings did happen...
    assert SECRET_MARKER not in result.stderr  # ...without the secrets
    assert oauth not in result.stderr
