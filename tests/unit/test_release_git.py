"""git as a person runs it: prompts reach the terminal (or fail at once without one), tags
are signed as git is configured to sign them. Real git, a real gpg key, a real HTTP remote
asking for a password, a real pseudo-terminal; no Docker.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import CliRepo, fake_npm_registry, make_cli_repo
from git_helpers import checked, make_repo
from git_http import PASSWORD, USER, GitHttpRemote, git_http_remote
from release_helpers import commands, plan, pushed, run

from agentimage.gitrun import NO_TERMINAL_FIX

DEADLINE = 60


@pytest.fixture(scope="module")
def npm_registry() -> Iterator[str]:
    with fake_npm_registry() as url:
        yield url


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(cli: CliRepo) -> dict[str, str]:
    """No credential helper or askpass of the host's: git can only ask the terminal."""
    env = {**os.environ, **cli.env, "GIT_CONFIG_NOSYSTEM": "1"}
    env["GIT_CONFIG_GLOBAL"] = str(cli.path.parent / "empty-gitconfig")
    for name in ("GIT_ASKPASS", "SSH_ASKPASS", "GIT_TERMINAL_PROMPT"):
        env.pop(name, None)
    return env


def _dry_run_argv() -> list[str]:
    # a closed registry port: the dry run still plans (and lists that failure last)
    registry = f"127.0.0.1:{_closed_port()}"
    return [sys.executable, "-m", "invoke", "release", "--bump", "patch", "--dry-run",
            "--registry", registry]  # fmt: skip


@pytest.fixture
def http_cli(tmp_path: Path, npm_registry: str) -> Iterator[tuple[CliRepo, GitHttpRemote]]:
    """A clone whose origin is served over HTTP behind a password."""
    cli = make_cli_repo(tmp_path, npm_registry)
    with git_http_remote(cli.origin) as remote:
        cli.git("remote", "set-url", "origin", remote.url)
        yield cli, remote


def test_without_a_terminal_a_password_prompt_fails_at_once_naming_the_fix(http_cli) -> None:
    cli, remote = http_cli
    started = time.monotonic()
    result = subprocess.run(
        _dry_run_argv(),
        cwd=cli.path,
        env=_environment(cli),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        start_new_session=True,  # no controlling terminal, as under CI
        check=False,
    )
    assert time.monotonic() - started < 30, "it waited for a prompt nobody can answer"
    assert result.returncode == 3, result.stderr
    first = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
    assert "git remote 'origin' is unreachable or missing" in first
    assert "terminal prompts disabled" in first
    assert NO_TERMINAL_FIX in first
    assert "release v0.1.1" in result.stdout  # the dry run still shows the whole plan
    assert remote.accepted == []


def _converse(fd: int, answers: dict[str, str]) -> str:
    """Read the terminal until EOF, answering each prompt once; return all it showed."""
    shown, pending = b"", dict(answers)
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
        for prompt, answer in list(pending.items()):
            if prompt.encode() in shown:
                os.write(fd, f"{answer}\n".encode())
                del pending[prompt]
    else:
        pytest.fail(f"no end of output within {DEADLINE} s:\n{shown.decode(errors='replace')}")
    return shown.decode(errors="replace")


def test_with_a_terminal_git_asks_there_and_the_answer_reaches_the_remote(http_cli) -> None:
    cli, remote = http_cli
    argv, env = _dry_run_argv(), _environment(cli)
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session whose controlling terminal is the pty
        os.chdir(cli.path)
        os.execve(argv[0], argv, env)  # noqa: S606 (argv is ours)
    try:
        shown = _converse(fd, {"Username for": USER, "Password for": PASSWORD})
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    assert "Username for 'http://127.0.0.1" in shown
    assert "/origin.git/info/refs" in remote.accepted  # git authenticated with what was typed
    assert "release v0.1.1" in shown
    assert "git push --atomic origin refs/heads/main refs/tags/v0.1.1" in shown
    assert "git remote 'origin' is unreachable" not in shown
    assert os.waitstatus_to_exitcode(status) == 6, shown  # only the closed registry failed


@pytest.fixture
def signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway GPG key without passphrase in a private GNUPGHOME; its agent is stopped
    afterwards."""
    if not shutil.which("gpg"):
        pytest.fail("gpg is not installed; install gnupg (scripts/provision.sh does)")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    checked(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
         "Release Test <release@example.invalid>", "ed25519", "sign", "never"],
        timeout=DEADLINE,
    )  # fmt: skip
    listing = checked(["gpg", "--list-secret-keys", "--with-colons"], timeout=DEADLINE)
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")
    )
    try:
        yield fingerprint
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], capture_output=True, check=False)


def test_tags_are_signed_as_tag_gpgsign_and_user_signingkey_say(
    tmp_path: Path, signing_key: str
) -> None:
    work, git_run = make_repo(tmp_path / "repo")
    git_run("config", "tag.gpgSign", "true")
    git_run("config", "user.signingKey", signing_key)
    fake = pushed(work, git_run)
    result = plan(work, fake)
    tag_command = f"git tag -s -u {signing_key} v0.1.1 -m $'release v0.1.1\\n\\n"
    assert any(c.startswith(tag_command) for c in commands(work, result))
    run(work, result, fake)
    verified = subprocess.run(
        ["git", "tag", "-v", "v0.1.1"], cwd=work, capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0, verified.stderr
    assert "Good signature" in verified.stderr
    assert "refs/tags/v0.1.1" in git_run("ls-remote", "origin")


def test_without_tag_gpgsign_tags_are_annotated_not_signed(tmp_path: Path) -> None:
    work, git_run = make_repo(tmp_path / "repo")
    fake = pushed(work, git_run)
    result = plan(work, fake)
    assert any(
        c.startswith("git tag -a v0.1.1 -m $'release v0.1.1\\n\\n") for c in commands(work, result)
    )
    run(work, result, fake)
    assert git_run("cat-file", "-t", "v0.1.1") == "tag"
    assert "BEGIN PGP SIGNATURE" not in git_run("cat-file", "-p", "v0.1.1")
