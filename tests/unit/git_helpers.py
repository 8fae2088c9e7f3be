"""Throwaway git repositories for unit tests (local only, no network)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

GitRun = Callable[..., str]


def checked(argv: Sequence[str], *, cwd: Path | None = None, timeout: float = 120) -> str:
    """Run a helper command; its failure fails the test with the command's whole stderr."""
    result = subprocess.run(
        list(argv), cwd=cwd, text=True, capture_output=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{shlex.join(argv)} failed:\n{result.stderr}"
    return result.stdout


def _git(cwd: Path) -> GitRun:
    def run(*args: str) -> str:
        return checked(["git", *args], cwd=cwd).strip()

    return run


def make_repo(tmp_path: Path) -> tuple[Path, GitRun]:
    """A repo on main with VERSION=0.1.0 committed, and a bare origin it tracks."""
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    checked(["git", "init", "-q", "--bare", "-b", "main", str(origin)])
    checked(["git", "init", "-q", "-b", "main", str(work)])
    git = _git(work)
    git("config", "user.name", "Test")
    git("config", "user.email", "test@example.invalid")
    git("config", "commit.gpgsign", "false")
    git("config", "tag.gpgsign", "false")
    (work / "VERSION").write_text("0.1.0\n")
    git("add", "VERSION")
    git("commit", "-q", "-m", "chore: initial")
    git("remote", "add", "origin", str(origin))
    git("push", "-q", "origin", "main")
    return work, git


def commit(work: Path, git: GitRun, message: str, name: str = "file.txt") -> str:
    path = work / name
    path.write_text(path.read_text() + "x\n" if path.exists() else "x\n")
    git("add", name)
    git("commit", "-q", "-m", message)
    return git("rev-parse", "HEAD")
