"""Running host commands (git, docker) with argument lists and one-line failures."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from agentimage.errors import AgentImageError, ExitCode


def quote(argv: Sequence[str]) -> str:
    """The argv as a shell command line a user can copy and paste."""
    return shlex.join(argv)


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
    failure: str = "",
    code: ExitCode = ExitCode.ENVIRONMENT,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv; on a non-zero exit raise AgentImageError(failure + last stderr line)."""
    try:
        result = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            text=True,
            capture_output=capture,
            check=False,
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        raise AgentImageError(
            f"{argv[0]} not found on PATH; install it or fix PATH", ExitCode.ENVIRONMENT
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise AgentImageError(
            f"{quote(argv)} did not finish within {timeout:.0f} s; check the host", code
        ) from exc
    if result.returncode != 0 and failure:
        detail = last_line(result.stderr if capture else "")
        raise AgentImageError(f"{failure}{': ' + detail if detail else ''}", code)
    return result


def last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""
