"""Who carries out a release's side effects: the host, or a recorder for the dry run.

The release steps call only these methods, so `--dry-run` runs the very same step code with
a RecordingRunner and prints what it recorded: the plan cannot drift from what runs. Every
call names what the dry run should assume it returned (`dry_stdout`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from agentimage import gitrun, imagebuild, versioning
from agentimage.buildx import BuildSpec, buildx_argv
from agentimage.errors import AgentImageError, ExitCode
from agentimage.proc import last_line, quote

KILL_GRACE = 10  # seconds a timed-out or interrupted command gets after SIGTERM


def say(message: str) -> None:
    print(f"release: {message}", file=sys.stderr, flush=True)


def command_line(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """argv as a user could paste it, with the variables it is given in front."""
    prefix = " ".join(f"{name}={quote([value])}" for name, value in (env or {}).items())
    return f"{prefix} {quote(argv)}".strip()


def version_write(path: Path, version: versioning.Version) -> str:
    return f"echo {version} > {path.name}  # temp file + rename"


class HostRunner:
    """Runs everything for real; logs each command as `release: $ ...` (not the plan's reads:
    echo=False), the same lines a dry run prints."""

    dry = False

    def __init__(self, *, echo: bool = True) -> None:
        self.echo = echo

    def run(
        self,
        argv: Sequence[str],
        *,
        failure: str,
        code: ExitCode,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stream: bool = False,
        dry_stdout: str = "",
    ) -> str:
        """Run argv in its own process group (so a timeout or Ctrl-C ends all it started);
        stdout is returned, or shown as it comes with stream=True. A failure raises
        AgentImageError(failure + the command's last stderr line, code)."""
        if self.echo:
            say(f"$ {command_line(argv, env)}")
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            text=True,
            stdout=None if stream else subprocess.PIPE,
            stderr=None if stream else subprocess.PIPE,
            process_group=0,
        )
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(process)
            raise AgentImageError(
                f"{failure}: {argv[0]} did not finish within {timeout:.0f} s", code
            ) from None
        except BaseException:
            _stop(process)
            raise
        if process.returncode != 0:
            detail = last_line(err) or f"exit {process.returncode}"
            raise AgentImageError(f"{failure}: {detail}", code)
        return out or ""

    def build(self, spec: BuildSpec, variant: str, cwd: Path) -> str:
        say(f"$ {quote(buildx_argv(spec))}")
        return imagebuild.run_build(spec, variant, cwd)

    def write_version(self, path: Path, version: versioning.Version) -> None:
        say(f"$ {version_write(path, version)}")
        versioning.write_version_file(path, version)

    def git(
        self, root: Path, *args: str, timeout: float | None = None, dry_stdout: str = ""
    ) -> str:
        say(f"$ {quote(['git', *args])}")
        return gitrun.run(root, *args, timeout=timeout)

    def say(self, message: str) -> None:
        say(message)


def _stop(process: subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.communicate(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class RecordingRunner:
    """Records every side effect as the command line a user could run; runs nothing."""

    dry = True
    commands: list[str] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        dry_stdout: str = "",
        **_how: object,  # failure, code, timeout, cwd, stream: how the host would run it
    ) -> str:
        self.commands.append(command_line(argv, env))
        return dry_stdout

    def build(self, spec: BuildSpec, variant: str, cwd: Path) -> str:
        self.commands.append(quote(buildx_argv(spec)))
        return ""

    def write_version(self, path: Path, version: versioning.Version) -> None:
        self.commands.append(version_write(path, version))

    def git(
        self, root: Path, *args: str, timeout: float | None = None, dry_stdout: str = ""
    ) -> str:
        self.commands.append(quote(["git", *args]))
        return dry_stdout

    def say(self, message: str) -> None:
        return None

    def take(self) -> list[str]:
        """The commands recorded since the last take."""
        taken, self.commands = self.commands, []
        return taken
