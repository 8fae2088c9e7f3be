"""Running host commands: the one place the tooling starts a process, bounds it and reports it.

Each command runs in a process group of its own, so a time limit or a Ctrl-C ends all it
started (docker's helpers, a test command's children): SIGTERM first, SIGKILL after a grace.
Its stdin is /dev/null: in a background process group, reading the terminal would stop it.
A failure names the command and its own last word on stderr.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from agentimage.errors import AgentImageError, ExitCode

KILL_GRACE = 10  # seconds a timed-out or interrupted command gets between SIGTERM and SIGKILL
TAIL_LINES = 60  # lines of a teed command's output kept for its error message

# capture: stdout and stderr returned; inherit: both go where ours go (a test run's log);
# tee: both merged, copied line by line to our stderr, the last TAIL_LINES returned as stdout
Output = Literal["capture", "inherit", "tee"]


class CommandNotFound(AgentImageError):
    """The program is not on PATH."""


class CommandTimedOut(AgentImageError):
    """The command did not finish within its time limit and was stopped."""


@dataclass(frozen=True)
class Finished:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def detail(self) -> str:
        """Why it failed in its own words: its last line on stderr, else its exit status."""
        return last_line(self.stderr) or f"exit {self.returncode}"


def quote(argv: Sequence[str]) -> str:
    """The argv as one shell command line a user can copy and paste (a word with a line
    break, such as a tag message, in bash's $'...' quoting, so the line stays one line)."""
    return " ".join(_ansi_c(word) if "\n" in word else shlex.quote(word) for word in argv)


def _ansi_c(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"$'{escaped}'"


def last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    replace_env: bool = False,
    timeout: float | None = None,
    output: Output = "capture",
    failure: str = "",
    code: ExitCode = ExitCode.ENVIRONMENT,
) -> Finished:
    """Run argv to its end; `env` holds variables set on top of ours (replace_env: all the
    command gets).

    A non-zero exit raises AgentImageError(f"{failure}: {detail}", code) when `failure` is
    given; without one the caller judges the Finished result. A missing program raises
    CommandNotFound, a time limit CommandTimedOut (with `code`), whatever `failure` says.
    """
    what = failure or quote(argv)
    stderr = {"capture": subprocess.PIPE, "inherit": None, "tee": subprocess.STDOUT}[output]
    held = SigintHeld()
    try:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=_environment(env, replace_env),
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=None if output == "inherit" else subprocess.PIPE,
            stderr=stderr,
            process_group=0,
        )
    except FileNotFoundError as exc:
        held.release()
        raise CommandNotFound(
            f"{argv[0]} not found on PATH; install it or fix PATH", ExitCode.ENVIRONMENT
        ) from exc
    except BaseException:
        held.release()
        raise
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    copier = None
    try:
        if held.release():
            raise KeyboardInterrupt  # Ctrl-C came while it started: stop it, then stop
        copier = _start_tee(process.stdout, tail) if output == "tee" else None
        if copier is None:
            out, err = process.communicate(timeout=timeout)
        else:
            process.wait(timeout=timeout)
            copier.join()
            out, err = "".join(tail), ""
    except subprocess.TimeoutExpired:
        stop(process, drain=copier is None)
        raise CommandTimedOut(
            f"{what}: {argv[0]} did not finish within {timeout:.0f} s", code
        ) from None
    except BaseException:
        stop(process, drain=copier is None)
        raise
    finished = Finished(tuple(argv), process.returncode, out or "", err or "")
    if failure and not finished.ok:
        raise AgentImageError(f"{failure}: {finished.detail}", code)
    return finished


class SigintHeld:
    """Holds a Ctrl-C that lands while a child starts, from creation until release().

    The child runs in its own process group, so the terminal's SIGINT never reaches it. A
    KeyboardInterrupt raised inside Popen, after the fork, would lose the only handle on a
    child that then runs on (a test command holding the terminal's output for minutes). Held,
    it is raised by the caller once the child can be stopped. Only the main thread receives
    signals, and only Python's default handler is replaced; otherwise nothing is held."""

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: object = None
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._hold)

    def _hold(self, _signum: int, _frame: object) -> None:
        self.interrupted = True

    def release(self) -> bool:
        """Put the previous handler back (once); whether a Ctrl-C was held meanwhile."""
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]
            self._previous = None
        return self.interrupted


def _environment(env: Mapping[str, str] | None, replace: bool) -> dict[str, str] | None:
    if env is None:
        return {} if replace else None
    return dict(env) if replace else {**os.environ, **env}


def _start_tee(stream: IO[str] | None, tail: deque[str]) -> threading.Thread:
    def copy() -> None:
        assert stream is not None
        for line in stream:
            sys.stderr.write(line)
            sys.stderr.flush()
            tail.append(line)

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def stop(process: subprocess.Popen[str], *, drain: bool = True) -> None:
    """End the process group: SIGTERM, then SIGKILL after KILL_GRACE seconds. `drain` reads
    what is left in its pipes meanwhile (False when a tee thread already reads them)."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            if drain:
                process.communicate(timeout=wait)
            else:
                process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
