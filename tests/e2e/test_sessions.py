"""Sessions under --read-only: a second turn continues the first, in the same container and
across a restart when the CLI's config dir is a volume; exec without a terminal returns."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from api_double import ApiDouble, Conversation, reply, text
from sandbox import Sandboxes, Turn, wait_until_ready

AGENT_HOME = "/home/agentgate"
# What a CLI that cannot write its state prints; none of it may appear under --read-only.
WRITE_ERRORS = re.compile(r"EROFS|EACCES|read-only file system|permission denied", re.I)


def assert_clean(turn: Turn) -> None:
    assert turn.ok, str(turn)
    assert not WRITE_ERRORS.search(turn.stderr), str(turn)


def _two_turn_script(double: ApiDouble, word: str) -> None:
    double.play(Conversation([reply(text(f"Noted: {word}.")), reply(text(f"It was {word}."))]))


def _second_request_remembers(double: ApiDouble, word: str) -> None:
    log = double.log()
    assert not log.problems(), log.problems()
    first, second = log.played()
    assert f"Noted: {word}." not in json.dumps(first["body"]["messages"])
    history = json.dumps(second["body"]["messages"])
    assert f"remember the word {word}" in history
    assert f"Noted: {word}." in history


def test_a_second_turn_continues_the_first_in_the_same_container(
    sandboxes: Sandboxes, double: ApiDouble, workspace: Path
) -> None:
    word = "kumquat"
    _two_turn_script(double, word)
    sandbox = sandboxes.start(str(workspace))

    first = sandbox.turn(f"remember the word {word}")
    second = sandbox.turn("which word was it?", "--continue")

    assert_clean(first)
    assert_clean(second)
    assert second.result["session_id"] == first.result["session_id"]
    _second_request_remembers(double, word)


def test_a_session_survives_a_restart_with_home_on_a_volume(
    sandboxes: Sandboxes, double: ApiDouble, workspace: Path
) -> None:
    word = "quince"
    _two_turn_script(double, word)
    # HOME holds the CLI's state (~/.claude.json, ~/.claude): a volume there instead of the
    # tmpfs keeps it, and the volume starts as a copy of the image's /home/agentgate.
    volumes = {sandboxes.volume(): {"bind": AGENT_HOME, "mode": "rw"}}
    sandbox = sandboxes.start(str(workspace), volumes=volumes, tmpfs={"/tmp": "size=256m"})

    first = sandbox.turn(f"remember the word {word}")
    sandbox.container.restart(timeout=10)  # /tmp's tmpfs is emptied, the volume stays
    wait_until_ready(sandbox.container)
    second = sandbox.turn("which word was it?", "--resume", first.result.get("session_id", ""))

    assert_clean(first)
    assert_clean(second)
    assert second.result["session_id"] == first.result["session_id"]
    _second_request_remembers(double, word)


@pytest.mark.parametrize("interactive", [False, True], ids=["no-stdin", "stdin-closed"])
def test_exec_without_a_terminal_returns(
    sandboxes: Sandboxes, double: ApiDouble, workspace: Path, interactive: bool
) -> None:
    """What a server's `docker exec` looks like: no TTY, stdin absent or at EOF at once."""
    double.play(Conversation([reply(text("No terminal needed."))]))
    sandbox = sandboxes.start(str(workspace))
    argv = [
        "docker",
        "exec",
        *(["-i"] if interactive else []),
        sandbox.name,
        "claude",
        "-p",
        "hello",
        "--output-format",
        "json",
    ]

    try:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"docker exec hung for 60 s: {exc.stdout!r} {exc.stderr!r}")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"] == "No terminal needed."
