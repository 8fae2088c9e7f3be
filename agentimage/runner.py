"""Who carries out a release's side effects: the host, or a recorder for the dry run.

The release steps call only these methods, so `--dry-run` runs the very same step code with
a RecordingRunner and prints what it recorded: the plan cannot drift from what runs. Every
call names what the dry run should assume it returned (`dry_stdout`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentimage import gitrun, imagebuild, proc, versioning
from agentimage.buildx import BuildSpec, buildx_argv
from agentimage.errors import ExitCode
from agentimage.proc import quote


def say(message: str) -> None:
    print(f"release: {message}", file=sys.stderr, flush=True)


def command_line(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """argv as a user could paste it, with the variables it is given in front."""
    prefix = " ".join(f"{name}={quote([value])}" for name, value in (env or {}).items())
    return f"{prefix} {quote(argv)}".strip()


def version_write(path: Path, version: versioning.Version) -> str:
    return f"echo {version} > {path.name}  # temp file + rename"


def text_write(path: Path, note: str) -> str:
    return f"write {path.name}  # {note}; temp file + rename"


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
        """Run argv (proc.run: its own process group, so a timeout or Ctrl-C ends all it
        started); stdout is returned, or shown as it comes with stream=True. A failure raises
        AgentImageError(failure + the command's last stderr line, code)."""
        if self.echo:
            say(f"$ {command_line(argv, env)}")
        output = "inherit" if stream else "capture"
        return proc.run(
            argv, cwd=cwd, env=env, timeout=timeout, output=output, failure=failure, code=code
        ).stdout

    def build(self, spec: BuildSpec, variant: str, cwd: Path) -> str:
        say(f"$ {quote(buildx_argv(spec))}")
        return imagebuild.run_build(spec, variant, cwd)

    def write_version(self, path: Path, version: versioning.Version) -> None:
        say(f"$ {version_write(path, version)}")
        versioning.write_version_file(path, version)

    def write_text(self, path: Path, text: str | Callable[[], str], note: str) -> None:
        """Write text (or what the callable makes: it reads what earlier commands produced,
        so a dry run never calls it)."""
        say(f"$ {text_write(path, note)}")
        versioning.write_atomically(path, text if isinstance(text, str) else text())

    def git(
        self, root: Path, *args: str, timeout: float | None = None, dry_stdout: str = ""
    ) -> str:
        say(f"$ {quote(['git', *args])}")
        return gitrun.run(root, *args, timeout=timeout)

    def say(self, message: str) -> None:
        say(message)


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

    def write_text(self, path: Path, text: str | Callable[[], str], note: str) -> None:
        self.commands.append(text_write(path, note))

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
