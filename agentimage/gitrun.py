"""Running git for a release: prompts reach the user's terminal, Ctrl-C never cuts git in half.

With a terminal in the foreground, git gets it: its process group becomes the terminal's
foreground group while it runs, so HTTPS credential prompts, SSH passphrases and GPG's
pinentry work, and a Ctrl-C typed at a prompt goes to git (the caller then decides from the
real state what to keep). Without one (CI, a pipe, a background job), git runs in its own
session with prompts disabled, so a missing credential fails at once with a message naming
the fix instead of hanging; a Ctrl-C sent to our process group does not reach it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import git

from agentimage.errors import AgentImageError, ExitCode

GIT_GRACE = 60  # seconds an interrupted git command gets to finish (a push is atomic)
NEEDS_A_PROMPT = (
    "terminal prompts disabled",
    "could not read username",
    "could not read password",
    "permission denied (publickey",
    "host key verification failed",
    "gpg failed to sign",
    "inappropriate ioctl for device",
    "no pinentry",
)
NO_TERMINAL_FIX = (
    "git needed a password or passphrase and there was no terminal to ask on; run invoke "
    "release from a terminal, or set up a git credential helper, ssh-agent or gpg-agent"
)


def foreground_terminal() -> int | None:
    """A descriptor of our controlling terminal when we are its foreground job, else None."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        if os.tcgetpgrp(fd) == os.getpgrp():
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


@contextmanager
def interrupts_held() -> Iterator[list[int]]:
    """Hold SIGINT (Ctrl-C) through a short critical section: starting git, or a rollback."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: held.append(signum))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)


def _give_terminal(tty: int, pgid: int) -> None:
    """tcsetpgrp from a background group raises SIGTTOU unless it is ignored meanwhile."""
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(tty, pgid)
    except OSError:
        pass  # the terminal went away: git simply cannot prompt
    finally:
        signal.signal(signal.SIGTTOU, previous)


def _start(
    argv: list[str], root: Path, env: Mapping[str, str], tty: int | None
) -> subprocess.Popen[str]:
    common = {"cwd": root, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    if tty is None:
        quiet = {**env, "GIT_TERMINAL_PROMPT": "0"}
        return subprocess.Popen(
            argv, env=quiet, stdin=subprocess.DEVNULL, start_new_session=True, **common
        )
    process = subprocess.Popen(argv, env=dict(env), process_group=0, **common)
    _give_terminal(tty, process.pid)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGCONT)  # in case it read the terminal before it was its
    return process


def run(root: Path, *args: str, timeout: float | None = None) -> str:
    """Run git; return its stdout. Raises git.GitCommandError, AgentImageError on a timeout,
    or KeyboardInterrupt after an interrupted git has finished (or was killed after a grace)."""
    argv = ["git", *args]
    tty = foreground_terminal()
    try:
        with interrupts_held() as held:  # never lose track of a git started as Ctrl-C arrives
            process = _start(argv, root, os.environ, tty)
        try:
            if held:
                raise KeyboardInterrupt
            out, err = process.communicate(timeout=timeout)
        except KeyboardInterrupt:
            print(
                f"release: interrupted: letting git {args[0]} finish before deciding what to keep",
                file=sys.stderr,
                flush=True,
            )
            _finish(process, GIT_GRACE)
            raise
        except subprocess.TimeoutExpired:
            _finish(process, 0)
            raise AgentImageError(
                f"git {args[0]} did not finish within {timeout:.0f} s; check the remote, or "
                "raise --push-timeout",
                ExitCode.PUBLISH_FAILED,
            ) from None
    finally:
        if tty is not None:
            _give_terminal(tty, os.getpgrp())
            os.close(tty)
    if process.returncode < 0 and -process.returncode == signal.SIGINT:
        raise KeyboardInterrupt  # Ctrl-C typed while git held the terminal
    if process.returncode != 0:
        raise git.GitCommandError(argv, process.returncode, err, out)
    return out


def _finish(process: subprocess.Popen[str], grace: float) -> None:
    try:
        process.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # git and what it started (ssh, gpg, hooks)
        process.communicate()


def error_line(exc: git.GitCommandError) -> str:
    """git's own last line, and the fix when it failed for want of a prompt."""
    lines = [
        line.strip().removeprefix("stderr: ").strip("' ")
        for line in str(exc.stderr or exc).splitlines()
    ]
    lines = [line for line in lines if line]
    # what the remote said (a hook's or a protected branch's reason), then git's verdict
    said = [line for line in lines if line.startswith("remote: ") and line != "remote:"][:3]
    verdict = [line for line in lines if "rejected]" in line or line.startswith("fatal:")]
    line = "; ".join(said + verdict[:1]) or (lines[-1] if lines else "git failed")
    if any(marker in str(exc.stderr).lower() for marker in NEEDS_A_PROMPT):
        return f"{line}; {NO_TERMINAL_FIX}"
    return line
