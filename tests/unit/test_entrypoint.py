"""docker/agent-entrypoint.sh, sourced on the host and exercised one function at a time.

Every run gets its own workspace, HOME, credentials path, TMPDIR and ready marker under a
temp dir, and git reads no system config, so nothing of the host leaks in. The host has no
`agentgate` user: AGENT_USER is `nobody` (UID 65534), the user the unprivileged runs use.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from shell_helpers import (
    ENTRYPOINT,
    IS_ROOT,
    NOBODY,
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
needs_root = pytest.mark.skipif(not IS_ROOT, reason="exercises the root start: run as root")


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
        return self.home / ".claude"

    @property
    def credentials(self) -> Path:
        return self.root / "secrets" / "claude-credentials.json"

    @property
    def gitconfig(self) -> Path:
        return self.home / ".gitconfig"

    @property
    def ready(self) -> Path:
        return self.tmpdir / "ready"

    @property
    def bindir(self) -> Path:
        return self.root / "bin"

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.bindir}:{SYSTEM_PATH}",
            "LANG": "C.UTF-8",
            "AGENT_WORKSPACE": str(self.workspace),
            "AGENT_USER": "nobody",
            "HOME": str(self.home),
            "AGENT_CREDENTIALS_FILE": str(self.credentials),
            "AGENT_READY_FILE": str(self.ready),
            "TMPDIR": str(self.tmpdir),
            "GIT_CONFIG_NOSYSTEM": "1",  # isolate git from the host's system config
        }
        env.update(overrides)
        return {k: v for k, v in env.items() if v != "<unset>"}

    def call(self, script: str, *, unprivileged: bool = False, **env: str):
        """Source the entrypoint in a fresh bash and run SCRIPT (one function call, usually).

        The settings checks run first, as _main runs them: later functions rely on the
        values they set (the resolved workspace, the agent's UID and HOME).
        """
        # $0 must not be the script's path: that is how the entrypoint tells "run" from
        # "sourced", and it would run _main.
        prelude = 'source "$1"; shift\n'
        if not script.startswith("agent_check_"):
            prelude += "agent_check_workspace_setting; agent_check_user_setting\n"
        argv = ["bash", "-c", prelude + script, "bash", str(ENTRYPOINT)]
        return run(argv, self.env(**env), unprivileged=unprivileged)

    def main(self, *args: str, unprivileged: bool = True, prefix: tuple[str, ...] = (), **env):
        """Run the entrypoint as a program, the way tini starts it."""
        return run([*prefix, str(ENTRYPOINT), *args], self.env(**env), unprivileged=unprivileged)

    def git_global(self, *args: str) -> list[str]:
        result = run(["git", "config", "--file", str(self.gitconfig), *args], self.env())
        return result.stdout.splitlines()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with shared_tmpdir() as root:
        box = Sandbox(root)
        for path in (box.workspace, box.home, box.tmpdir, box.bindir, box.credentials.parent):
            path.mkdir()
        # The unprivileged runs (root -> nobody) own what a real agent would own.
        give(box.workspace, box.home, box.tmpdir)
        yield box


def assert_one_line_error(result, code: int, *needles: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected a one-line error, got: {result.stderr!r}"
    assert lines[0].startswith("agent-entrypoint: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert result.stdout == ""


# --- agent_check_workspace_setting ----------------------------------------------------------

SHOW_WORKSPACE = 'agent_check_workspace_setting; printf "%s\\n" "$AGENT_WORKSPACE"'


def test_workspace_setting_ok_is_silent_and_resolved(sandbox: Sandbox) -> None:
    link = sandbox.root / "ws-link"
    link.symlink_to(sandbox.workspace)
    result = sandbox.call(SHOW_WORKSPACE, AGENT_WORKSPACE=str(link))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"{sandbox.workspace}\n"


def test_workspace_missing_exits_64_naming_the_path(sandbox: Sandbox) -> None:
    missing = sandbox.root / "no-such-workspace"
    result = sandbox.call("agent_check_workspace_setting", AGENT_WORKSPACE=str(missing))
    assert_one_line_error(result, 64, str(missing), "does not exist", "-v ")


def test_workspace_file_exits_65(sandbox: Sandbox) -> None:
    afile = sandbox.root / "a-file"
    afile.write_text("not a dir\n")
    result = sandbox.call("agent_check_workspace_setting", AGENT_WORKSPACE=str(afile))
    assert_one_line_error(result, 65, str(afile), "not a directory")


@pytest.mark.parametrize("value", ["-delete", "relative/dir", "./workspace"])
def test_workspace_not_absolute_exits_78(sandbox: Sandbox, value: str) -> None:
    """`-delete` once reached find as an expression and deleted the host's workspace."""
    (sandbox.workspace / "keep").write_text("x")
    result = sandbox.call("agent_check_workspace_setting", AGENT_WORKSPACE=value)
    assert_one_line_error(result, 78, "not an absolute path")
    assert (sandbox.workspace / "keep").exists()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("/", "resolves to /, a system directory"),
        ("{ws}/..{up}", "resolves to /, a system directory"),
        ("/etc", "resolves to /etc, a system directory"),
        ("/home", "resolves to /home, a system directory"),
        ("{etc_link}", "resolves to /etc, a system directory"),
        ("/usr/local/bin", "inside /usr"),
        ("/proc/self", "inside /proc"),
    ],
    ids=["root", "dotdot-to-root", "etc", "home", "symlink-to-etc", "usr-local-bin", "proc"],
)
def test_workspace_system_directory_exits_78(sandbox: Sandbox, value: str, reason: str) -> None:
    """/workspace/.. once gave the whole root filesystem to the agent."""
    etc_link = sandbox.root / "etc-link"
    etc_link.symlink_to("/etc")
    up = "/.." * len(sandbox.root.parts)
    value = value.format(ws=sandbox.workspace, up=up, etc_link=etc_link)
    result = sandbox.call("agent_check_workspace_setting", AGENT_WORKSPACE=value)
    assert_one_line_error(result, 78, f"AGENT_WORKSPACE={value}", reason)


# --- agent_check_user_setting ---------------------------------------------------------------


def test_user_setting_reads_the_passwd_entry(sandbox: Sandbox) -> None:
    result = sandbox.call('agent_check_user_setting; echo "$AGENT_UID:$AGENT_GID:$AGENT_HOME"')
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"{NOBODY}:{NOBODY}:/nonexistent\n"


@pytest.mark.parametrize(("user", "needle"), [("root", "is root"), ("no-such-user", "no passwd")])
def test_user_setting_refuses_root_and_unknown_users_with_78(
    sandbox: Sandbox, user: str, needle: str
) -> None:
    """AGENT_USER=root once made the drop re-run itself as root, forever, at 100% CPU."""
    result = sandbox.call("agent_check_user_setting", AGENT_USER=user)
    assert_one_line_error(result, 78, f"AGENT_USER={user}", needle)


# --- agent_verify_workspace -----------------------------------------------------------------


def test_workspace_ok_is_silent(sandbox: Sandbox) -> None:
    result = sandbox.call("agent_verify_workspace", unprivileged=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_workspace_not_writable_exits_66(sandbox: Sandbox) -> None:
    sandbox.workspace.chmod(0o555)
    result = sandbox.call("agent_verify_workspace", unprivileged=True)
    assert_one_line_error(
        result, 66, str(sandbox.workspace), "not writable", f"uid {unprivileged_uid()}"
    )


@needs_root
def test_workspace_not_writable_is_accepted_for_root(sandbox: Sandbox) -> None:
    # Root skips the writability check: it is about to give the workspace to the agent.
    sandbox.workspace.chmod(0o555)
    result = sandbox.call("agent_verify_workspace")
    assert (result.returncode, result.stderr) == (0, "")


# --- root start: agent_prepare_workspace_as_root ---------------------------------------------


def test_glob_quote_escapes_find_metacharacters(sandbox: Sandbox) -> None:
    result = sandbox.call("agent_glob_quote 'a*b?c[d]e\\f g'")
    assert result.stdout == "a\\*b\\?c\\[d\\]e\\\\f g"


def _in_private_mounts(script: str) -> list[str]:
    """Run SCRIPT as root in a private mount namespace (so its bind mounts vanish after)."""
    return ["unshare", "--mount", "--propagation", "private", "bash", "-c", script]


@needs_root
def test_mounts_below_lists_nested_mounts_with_escapes_decoded(sandbox: Sandbox) -> None:
    inner = sandbox.workspace / "with space"
    inner.mkdir()
    source = sandbox.root / "elsewhere"
    source.mkdir()
    script = (
        f'mount --bind "{source}" "{inner}" && source "{ENTRYPOINT}" && '
        f'agent_mounts_below "{sandbox.workspace}"'
    )
    result = run(_in_private_mounts(script), sandbox.env())
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [str(inner)]


@pytest.fixture
def hostile_workspace(sandbox: Sandbox) -> dict[str, Path]:
    """A workspace built the way an attacker (or a careless clone) would build it."""
    ws = sandbox.workspace
    outside = sandbox.root / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host file\n")
    nested_source = sandbox.root / "nested-source"
    nested_source.mkdir()
    (nested_source / "inner").write_text("another mount\n")
    (ws / "sub").mkdir()
    (ws / "sub" / "plain").write_text("x\n")
    (ws / "we ird*[name]").write_text("x\n")
    (ws / "link-to-outside").symlink_to(outside)
    (ws / "link-to-secret").symlink_to(outside / "secret")
    os.link(outside / "secret", ws / "hard-link")
    (ws / "nested").mkdir()
    for path in [ws, *ws.rglob("*"), outside, outside / "secret", nested_source]:
        os.lchown(path, 0, 0)
    return {
        "outside": outside,
        "secret": outside / "secret",
        "nested_source": nested_source,
        "inner": nested_source / "inner",
    }


@needs_root
def test_root_start_gives_the_workspace_without_following_links_or_mounts(
    sandbox: Sandbox, hostile_workspace: dict[str, Path]
) -> None:
    ws = sandbox.workspace
    script = (
        f'mount --bind "{hostile_workspace["nested_source"]}" "{ws}/nested" && '
        f'source "{ENTRYPOINT}" && agent_check_workspace_setting && agent_check_user_setting '
        "&& agent_prepare_workspace_as_root && agent_prepare_workspace_as_root"
    )
    result = run(_in_private_mounts(script), sandbox.env())
    assert (result.returncode, result.stderr) == (0, "")

    def owner(path: Path) -> int:
        return path.lstat().st_uid

    for given in [ws, ws / "sub", ws / "sub" / "plain", ws / "we ird*[name]"]:
        assert owner(given) == NOBODY, given
    # Never followed, never changed: symlinks and what they point at, hard-linked files,
    # and everything on the nested mount.
    for kept in [ws / "link-to-outside", ws / "link-to-secret", *hostile_workspace.values()]:
        assert owner(kept) == 0, kept
    assert owner(ws / "hard-link") == 0


@needs_root
def test_root_start_without_chown_exits_66(sandbox: Sandbox) -> None:
    (sandbox.workspace / "f").write_text("x")
    os.chown(sandbox.workspace / "f", 0, 0)
    result = run(
        [
            "setpriv",
            "--bounding-set=-chown",
            "--inh-caps=-chown",
            "bash",
            "-c",
            f'source "{ENTRYPOINT}"; agent_check_workspace_setting; agent_check_user_setting; '
            "agent_prepare_workspace_as_root",
        ],
        sandbox.env(),
    )
    assert_one_line_error(result, 66, "cannot give", "CAP_CHOWN")


# --- root start: agent_drop_privileges ------------------------------------------------------

STATUS = "grep -E '^(Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs):' /proc/self/status"


def _status(stdout: str) -> dict[str, str]:
    return {k: v.strip() for k, v in (line.split(":", 1) for line in stdout.splitlines())}


@needs_root
def test_root_start_drops_to_the_agent_with_no_capabilities_and_no_new_privs(
    sandbox: Sandbox,
) -> None:
    result = sandbox.main("sh", "-c", STATUS, unprivileged=False)
    assert result.returncode == 0, result.stderr
    status = _status(result.stdout)
    assert status["Uid"].split() == [str(NOBODY)] * 4
    assert status["Gid"].split() == [str(NOBODY)] * 4
    for capability_set in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[capability_set], 16) == 0, (capability_set, status)
    assert status["NoNewPrivs"] == "1"


@needs_root
@pytest.mark.parametrize("missing", ["setpcap", "setuid", "setgid"])
def test_root_start_without_the_capabilities_to_drop_exits_69(
    sandbox: Sandbox, missing: str
) -> None:
    """setpriv silently keeps the bounding set without CAP_SETPCAP: the entrypoint refuses."""
    marker = sandbox.root / "ran"
    result = sandbox.main(
        "touch",
        str(marker),
        unprivileged=False,
        prefix=("setpriv", f"--bounding-set=-{missing}", "--inh-caps=-all"),
    )
    assert_one_line_error(result, 69, "CAP_SETPCAP", "--user")
    assert not marker.exists()


@needs_root
def test_root_start_ignores_bash_env(sandbox: Sandbox) -> None:
    """BASH_ENV once ran a workspace file as root before the drop."""
    planted = sandbox.workspace / "planted.sh"
    ran = sandbox.root / "planted-ran"
    planted.write_text(f'touch "{ran}"\n')
    result = sandbox.main(
        "sh",
        "-c",
        'echo "BASH_ENV=${BASH_ENV:-unset} ENV=${ENV:-unset}"',
        unprivileged=False,
        BASH_ENV=str(planted),
        ENV=str(planted),
    )
    assert result.returncode == 0, result.stderr
    assert not ran.exists(), "BASH_ENV ran during the start"
    assert result.stdout == "BASH_ENV=unset ENV=unset\n"


# --- agent_setup_home and agent_setup_config_dir ---------------------------------------------

PRINT_HOME = 'agent_setup_home; agent_setup_config_dir\nprintf "%s\\n" "$HOME"\nexport -p'


def _exported(stdout: str, name: str) -> bool:
    return any(line.startswith(f"declare -x {name}=") for line in stdout.splitlines())


def test_home_writable_is_kept_and_config_dir_created_private(sandbox: Sandbox) -> None:
    result = sandbox.call(PRINT_HOME, unprivileged=True)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[0] == str(sandbox.home)
    assert not _exported(result.stdout, "CLAUDE_CONFIG_DIR")  # the CLI's default, ~/.claude
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
    assert result.stdout.splitlines()[0] == str(fallback)
    assert (fallback / ".claude").is_dir()
    assert _exported(result.stdout, "HOME")
    assert stat.S_IMODE(fallback.stat().st_mode) == 0o700
    [warning] = result.stderr.splitlines()
    assert warning.startswith("agent-entrypoint: warning: ")
    assert str(sandbox.home) in warning
    assert "--tmpfs" in warning


def test_home_unwritable_uses_the_agents_home_when_that_is_writable(sandbox: Sandbox) -> None:
    """A UID without a passwd entry gets HOME=/ from Docker; a tmpfs on the agent's home
    given to that UID is the HOME docker exec sessions use too."""
    agents_home = sandbox.root / "agents-home"
    agents_home.mkdir()
    give(agents_home)
    passwd_home = f"agent_check_user_setting; AGENT_HOME={agents_home}\n"
    result = sandbox.call(passwd_home + PRINT_HOME, unprivileged=True, HOME="/")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[0] == str(agents_home)


def test_home_and_tmpdir_unwritable_exits_68(sandbox: Sandbox) -> None:
    sandbox.home.chmod(0o555)
    sandbox.tmpdir.chmod(0o555)
    result = sandbox.call("agent_setup_home", unprivileged=True)
    assert_one_line_error(result, 68, str(sandbox.home), str(sandbox.tmpdir), "--tmpfs")


def test_config_dir_unwritable_exits_68(sandbox: Sandbox) -> None:
    locked = sandbox.root / "locked"
    locked.mkdir(mode=0o555)
    config_dir = locked / "claude"
    result = sandbox.call(
        "agent_setup_home; agent_setup_config_dir",
        unprivileged=True,
        CLAUDE_CONFIG_DIR=str(config_dir),
    )
    assert_one_line_error(result, 68, str(config_dir), "not writable")


@pytest.mark.parametrize("where", ["workspace", "below", "symlink-into"])
def test_config_dir_in_the_workspace_exits_78(sandbox: Sandbox, where: str) -> None:
    """CLAUDE_CONFIG_DIR=/workspace once chmodded the host's checkout to 0700."""
    target = {"workspace": sandbox.workspace, "below": sandbox.workspace / ".cfg"}.get(where)
    if target is None:
        (sandbox.workspace / "cfg").mkdir()
        target = sandbox.home / "cfg"
        target.symlink_to(sandbox.workspace / "cfg")
    before = stat.S_IMODE(sandbox.workspace.stat().st_mode)
    result = sandbox.call(
        "agent_check_config_dir_setting", unprivileged=True, CLAUDE_CONFIG_DIR=str(target)
    )
    assert_one_line_error(result, 78, f"CLAUDE_CONFIG_DIR={target}", "in the workspace")
    assert stat.S_IMODE(sandbox.workspace.stat().st_mode) == before


def test_config_dir_relative_exits_78(sandbox: Sandbox) -> None:
    result = sandbox.call(
        "agent_check_config_dir_setting", unprivileged=True, CLAUDE_CONFIG_DIR="cfg"
    )
    assert_one_line_error(result, 78, "CLAUDE_CONFIG_DIR=cfg", "absolute")


# --- agent_check_credentials ---------------------------------------------------------------

CHECK_CREDENTIALS = "agent_setup_home; agent_setup_config_dir; agent_check_credentials"


def _write_credentials(sandbox: Sandbox, text: str, mode: int = 0o600) -> Path:
    sandbox.credentials.write_text(text)
    sandbox.credentials.chmod(mode)
    give(sandbox.credentials)
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
    # A second start (e.g. a persistent HOME volume) finds the link and changes nothing.
    again = sandbox.call(CHECK_CREDENTIALS, unprivileged=True)
    assert (again.returncode, again.stderr) == (0, "")
    assert os.readlink(link) == str(creds)


@requires_jq
def test_credentials_mounted_inside_a_root_owned_config_dir_exit_67(sandbox: Sandbox) -> None:
    """Docker creates the missing parents of a bind mount as root: a file mounted at
    ~/.claude/.credentials.json leaves the CLI a ~/.claude it cannot write."""
    inside = sandbox.config_dir / ".credentials.json"
    sandbox.config_dir.mkdir()
    inside.write_text(json.dumps({"token": SECRET_MARKER}))
    if IS_ROOT:
        os.chown(sandbox.config_dir, 0, 0)
    sandbox.config_dir.chmod(0o755)
    result = sandbox.call(CHECK_CREDENTIALS, unprivileged=True, AGENT_CREDENTIALS_FILE=str(inside))
    assert_one_line_error(result, 67, str(inside), "/run/secrets/claude-credentials.json")
    _assert_secret_not_printed(result)


def test_credentials_directory_exits_67(sandbox: Sandbox) -> None:
    sandbox.credentials.mkdir()
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
    [line] = result.stderr.splitlines()
    assert line.startswith("agent-entrypoint: warning: ")
    assert "world-readable" in line
    assert str(creds) in line
    _assert_secret_not_printed(result)
    assert (sandbox.config_dir / ".credentials.json").is_symlink()


# --- agent_setup_git ------------------------------------------------------------------------


def test_git_identity_goes_into_the_agents_own_config(sandbox: Sandbox) -> None:
    result = sandbox.call("agent_setup_git", unprivileged=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert sandbox.git_global("--get", "user.name") == ["AgentGate Agent"]
    assert sandbox.git_global("--get", "user.email") == ["agent@agentgate.invalid"]
    # The agent owns the workspace: git trusts it without a safe.directory entry.
    assert sandbox.git_global("--get-all", "safe.directory") == []


@needs_root
def test_git_trusts_a_workspace_the_agent_does_not_own_once(sandbox: Sandbox) -> None:
    os.chown(sandbox.workspace, 0, 0)
    sandbox.workspace.chmod(0o777)
    for _ in range(2):  # a restart does not pile up entries
        result = sandbox.call("agent_setup_git", unprivileged=True)
        assert (result.returncode, result.stderr) == (0, "")
    assert sandbox.git_global("--get-all", "safe.directory") == [str(sandbox.workspace)]


def test_git_identity_from_env_is_not_overridden(sandbox: Sandbox) -> None:
    result = sandbox.call(
        "agent_setup_git",
        unprivileged=True,
        GIT_AUTHOR_NAME="Env Person",
        GIT_AUTHOR_EMAIL="env@example.invalid",
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert sandbox.git_global("--get", "user.name") == []
    assert sandbox.git_global("--get", "user.email") == []


def test_git_identity_from_an_existing_global_config_is_kept(sandbox: Sandbox) -> None:
    sandbox.gitconfig.write_text("[user]\n\tname = Mine\n\temail = mine@example.invalid\n")
    give(sandbox.gitconfig)
    result = sandbox.call("agent_setup_git", unprivileged=True)
    assert (result.returncode, result.stderr) == (0, "")
    assert sandbox.git_global("--get-all", "user.name") == ["Mine"]
    assert sandbox.git_global("--get-all", "user.email") == ["mine@example.invalid"]


@pytest.mark.parametrize("planted", ["fifo", "garbage"])
def test_git_setup_never_reads_the_workspace_repository(sandbox: Sandbox, planted: str) -> None:
    """A FIFO at .git/config once hung the start forever; garbage there failed it (128)."""
    git_dir = sandbox.workspace / ".git"
    git_dir.mkdir()
    if planted == "fifo":
        os.mkfifo(git_dir / "config")
    else:
        (git_dir / "config").write_text("[core\n\tbroken = = =\n")
    give(git_dir, git_dir / "config")
    sandbox.gitconfig.write_text("[user]\n\tname = Mine\n")  # forces a `git config` read
    give(sandbox.gitconfig)
    script = f'cd "{sandbox.workspace}" && agent_setup_git'
    result = sandbox.call(script, unprivileged=True)
    assert (result.returncode, result.stderr) == (0, "")
    assert sandbox.git_global("--get", "user.email") == ["agent@agentgate.invalid"]


# --- readiness ------------------------------------------------------------------------------


def test_ready_marker_names_this_process_by_pid_and_start_time(sandbox: Sandbox) -> None:
    result = sandbox.call('agent_mark_ready; echo $$; cat "/proc/$$/stat"', unprivileged=True)
    assert (result.returncode, result.stderr) == (0, "")
    pid, stat_line = result.stdout.splitlines()
    start_time = stat_line.rsplit(") ", 1)[1].split()[19]  # field 22 of /proc/<pid>/stat
    assert sandbox.ready.read_text().split() == [pid, start_time]


def test_ready_marker_unwritable_exits_68(sandbox: Sandbox) -> None:
    sandbox.tmpdir.chmod(0o555)
    result = sandbox.call("agent_mark_ready", unprivileged=True)
    assert_one_line_error(result, 68, str(sandbox.ready), "--tmpfs")


# --- _main ----------------------------------------------------------------------------------


@pytest.fixture
def sleep_shim(sandbox: Sandbox) -> Path:
    """`sleep` that reports its PID and arguments instead of sleeping."""
    return write_shim(sandbox.bindir, "sleep", 'echo "sleep-shim pid=$$ args=$*"')


def test_sourcing_runs_nothing(sandbox: Sandbox, sleep_shim: Path) -> None:
    result = sandbox.call("echo sourced")
    assert (result.returncode, result.stdout, result.stderr) == (0, "sourced\n", "")
    assert not sandbox.ready.exists()


def test_main_without_command_keeps_alive_with_sleep_infinity(
    sandbox: Sandbox, sleep_shim: Path
) -> None:
    result = sandbox.main()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("sleep-shim ")
    assert result.stdout.strip().endswith("args=infinity")
    # The keep-alive is the process the ready marker names.
    pid = result.stdout.split("pid=")[1].split()[0]
    assert sandbox.ready.read_text().split()[0] == pid


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


def test_main_runs_claude_for_arguments_that_start_with_a_dash(sandbox: Sandbox) -> None:
    """`docker run IMAGE --version` once failed with bash's `exec: -v: invalid option`."""
    write_shim(sandbox.bindir, "claude", 'printf "claude-shim"; printf " %s" "$@"')
    result = sandbox.main("--version", "--print")
    assert (result.returncode, result.stdout) == (0, "claude-shim --version --print"), result


def test_main_stops_before_the_command_on_bad_workspace(sandbox: Sandbox) -> None:
    marker = sandbox.root / "ran"
    result = sandbox.main(
        "touch", str(marker), AGENT_WORKSPACE=str(sandbox.root / "missing-workspace")
    )
    assert result.returncode == 64
    assert not marker.exists()
    assert not sandbox.ready.exists()


def test_main_ignores_bash_env_as_any_user(sandbox: Sandbox) -> None:
    ran = sandbox.root / "bash-env-ran"
    planted = sandbox.workspace / "planted.sh"
    planted.write_text(f'touch "{ran}"\n')
    give(planted)
    result = sandbox.main("true", BASH_ENV=str(planted))
    assert result.returncode == 0, result.stderr
    assert not ran.exists()


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
        ANTHROPIC_API_KEY=SECRET_MARKER,
        CLAUDE_CODE_OAUTH_TOKEN=oauth,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [SECRET_MARKER, oauth]
    assert "warning" in result.stderr  # the warnings did happen...
    assert SECRET_MARKER not in result.stderr  # ...without the secrets
    assert oauth not in result.stderr


def test_shebang_is_bash_in_privileged_mode() -> None:
    """`bash -p` is what makes BASH_ENV, ENV and exported functions inert at start."""
    assert ENTRYPOINT.read_text().splitlines()[0] == "#!/bin/bash -p"
    probe = subprocess.run(
        ["/bin/bash", "-p", "-c", "shopt -o privileged"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "on" in probe.stdout
