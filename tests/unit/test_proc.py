"""agentimage.proc, the one way the tooling runs a host command: real processes, no Docker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentimage import proc
from agentimage.errors import AgentImageError, ExitCode

PY = sys.executable


def test_captures_both_streams_and_the_exit_status() -> None:
    result = proc.run(
        [PY, "-c", "import sys; print('out'); print('err', file=sys.stderr); exit(3)"]
    )
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok
    assert result.detail == "err"


def test_a_failure_names_the_command_and_its_last_stderr_line() -> None:
    script = (
        "import sys; print('first', file=sys.stderr); print('the cause', file=sys.stderr); exit(1)"
    )
    with pytest.raises(AgentImageError) as raised:
        proc.run([PY, "-c", script], failure="pushing x failed", code=ExitCode.PUBLISH_FAILED)
    assert raised.value.message == "pushing x failed: the cause"
    assert raised.value.code == ExitCode.PUBLISH_FAILED


def test_a_silent_failure_gives_its_exit_status() -> None:
    with pytest.raises(AgentImageError, match=r"^it failed: exit 4$"):
        proc.run([PY, "-c", "exit(4)"], failure="it failed")


def test_env_adds_to_ours_or_replaces_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROC_TEST_OURS", "kept")
    show = [PY, "-c", "import os; print(os.environ.get('PROC_TEST_OURS'), os.environ.get('X'))"]
    assert proc.run(show, env={"X": "1"}).stdout.split() == ["kept", "1"]
    assert proc.run(show, env={"X": "2"}, replace_env=True).stdout.split() == ["None", "2"]


def test_stdin_is_empty_so_nothing_waits_for_a_terminal() -> None:
    assert proc.run(["cat"], timeout=10).stdout == ""


def test_a_missing_program_is_named() -> None:
    with pytest.raises(proc.CommandNotFound, match="no-such-program-x not found on PATH") as raised:
        proc.run(["no-such-program-x"])
    assert raised.value.code == ExitCode.ENVIRONMENT


def test_a_time_limit_ends_the_command_and_everything_it_started(tmp_path: Path) -> None:
    """The command starts a grandchild in the background; both are gone after the limit."""
    pid_file = tmp_path / "grandchild.pid"
    script = f"sleep 300 & echo $! > {pid_file}; wait"
    started = time.monotonic()
    with pytest.raises(proc.CommandTimedOut) as raised:
        proc.run(
            ["sh", "-c", script], timeout=1, failure="the test step", code=ExitCode.TEST_FAILED
        )
    assert time.monotonic() - started < proc.KILL_GRACE
    assert raised.value.message == "the test step: sh did not finish within 1 s"
    assert raised.value.code == ExitCode.TEST_FAILED
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild):
        assert time.monotonic() < deadline, f"grandchild {grandchild} outlived the time limit"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has ended: only its parent (now gone) could have reaped it
    return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()


def test_tee_shows_each_line_as_it_comes_and_keeps_the_tail(
    capfd: pytest.CaptureFixture[str],
) -> None:
    script = "import sys\nfor i in range(100): print(i, file=sys.stderr if i % 2 else sys.stdout)"
    result = proc.run([PY, "-u", "-c", script], output="tee")
    shown = capfd.readouterr().err.split()
    assert shown == [str(i) for i in range(100)]  # both streams, in order, on our stderr
    assert result.stdout.split() == [str(i) for i in range(100 - proc.TAIL_LINES, 100)]
    assert result.stderr == ""


def test_inherit_leaves_the_output_to_the_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    result = proc.run([PY, "-c", "print('to the log')"], output="inherit")
    assert result.stdout == ""
    assert capfd.readouterr().out == "to the log\n"


@pytest.mark.parametrize("output", ["inherit", "capture", "tee"])
def test_ctrl_c_while_the_command_starts_stops_it(
    monkeypatch: pytest.MonkeyPatch, output: proc.Output
) -> None:
    """SIGINT landing inside Popen, after the fork: the command runs in its own process group
    (the terminal's Ctrl-C never reaches it), so proc must still stop it, then raise."""
    started: list[subprocess.Popen[str]] = []
    real_popen = subprocess.Popen

    def popen_then_ctrl_c(*args: object, **kwargs: object) -> subprocess.Popen[str]:
        process = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(process)
        signal.raise_signal(signal.SIGINT)  # handled before Popen would have returned
        return process

    monkeypatch.setattr(proc.subprocess, "Popen", popen_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        proc.run(["sleep", "300"], output=output)
    assert started[0].poll() is not None, "the command outlived the Ctrl-C"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_is_held_only_while_the_command_starts() -> None:
    held = proc.SigintHeld()
    assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    signal.raise_signal(signal.SIGINT)
    assert held.release() is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
