"""The API failing: overload is ridden out, a bad key ends the turn clearly, no key leaks."""

from __future__ import annotations

import time
from pathlib import Path

from api_double import OVERLOADED, ApiDouble, Conversation, reply, text
from sandbox import Sandboxes, logs_of


def test_overloaded_twice_then_the_turn_completes(
    sandboxes: Sandboxes, double: ApiDouble, workspace: Path
) -> None:
    double.play(Conversation([OVERLOADED, OVERLOADED, reply(text("Third time lucky."))]))
    sandbox = sandboxes.start(str(workspace))

    turn = sandbox.turn("try hard")

    assert turn.ok, str(turn)
    assert turn.result["result"] == "Third time lucky."
    log = double.log()
    assert not log.problems(), log.problems()
    assert len(log.played()) == 3


def test_a_rejected_key_ends_the_turn_with_an_error_naming_it_and_is_never_printed(
    sandboxes: Sandboxes, double: ApiDouble, workspace: Path, sandbox_key: str
) -> None:
    double.play(Conversation([]), api_key="sk-ant-the-only-key-the-api-accepts")
    sandbox = sandboxes.start(str(workspace))

    turn = sandbox.turn("anything", env={"CLAUDE_CODE_MAX_RETRIES": "0"})

    assert turn.code != 0, str(turn)
    assert turn.result["is_error"] is True, str(turn)
    assert turn.result["api_error_status"] == 401, str(turn)
    assert "API key" in turn.result["result"], str(turn)
    refused = double.log().requests
    assert refused
    assert all(r.get("refused") == 401 for r in refused)
    assert refused[0]["headers"]["x-api-key"] == sandbox_key  # it was sent, to the API only
    # Nowhere a person or a log collector looks: the turn's output, the container's logs,
    # the health log (wait for at least one health check to have run).
    deadline = time.monotonic() + 30
    while not (sandbox.container.attrs["State"].get("Health") or {}).get("Log"):
        assert time.monotonic() < deadline, "no health check ran within 30 s"
        time.sleep(0.2)
        sandbox.container.reload()
    health = str(sandbox.container.attrs["State"]["Health"])
    for place, content in [
        ("stdout", turn.stdout),
        ("stderr", turn.stderr),
        ("docker logs", logs_of(sandbox.container)),
        ("health log", health),
    ]:
        assert sandbox_key not in content, f"the API key appears in {place}"
