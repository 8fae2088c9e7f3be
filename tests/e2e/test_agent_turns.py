"""Real Claude Code turns in the hardened sandbox: the agent edits and commits the workspace.

Each turn is `claude -p` run with `docker exec` in a keep-alive sandbox, against the
Messages API double, which plays the model's side: it asks for a tool, the CLI runs the tool
in the container and sends the result back, the double ends the turn.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from api_double import CUT, ApiDouble, Conversation, reply, result_text, text, tool, tool_results
from sandbox import Sandboxes


def host_git(workspace: Path, *args: str) -> str:
    """Read the agent's repository from the host without running anything it configured.

    The repository came back from an untrusted sandbox: no hooks, no fsmonitor, no pager,
    no system or global config, and trust granted for this one call only.
    """
    argv = [
        "git",
        "--no-pager",
        "-c",
        f"safe.directory={workspace}",
        "-c",
        "core.fsmonitor=false",
        "-c",
        "core.hooksPath=/dev/null",
        "-C",
        str(workspace),
        *args,
    ]
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_write_turn_creates_a_file_owned_by_the_workspace_owner(
    sandboxes: Sandboxes, double: ApiDouble, workspace: Path
) -> None:
    content = "written by the agent\nsecond line\n"
    double.play(
        Conversation(
            [
                reply(
                    text("Creating it."),
                    tool("Write", file_path="/workspace/hello.txt", content=content),
                ),
                reply(text("Created hello.txt.")),
            ]
        )
    )
    sandbox = sandboxes.start(str(workspace))

    turn = sandbox.turn("create hello.txt", "--allowedTools", "Write")

    assert turn.ok, str(turn)
    assert turn.result["result"] == "Created hello.txt."
    assert turn.result["num_turns"] == 2
    created = workspace / "hello.txt"
    assert created.read_text() == content
    assert (created.stat().st_uid, created.stat().st_gid) == (1000, 1000)
    log = double.log()
    assert not log.problems(), log.problems()
    first, second = log.played()
    assert first["path"] == "/v1/messages?beta=true"
    assert first["body"]["stream"] is True
    assert "Write" in {t["name"] for t in first["body"]["tools"]}
    [result] = tool_results(second)
    assert not result.get("is_error"), result
    assert "hello.txt" in result_text(result)


def test_accept_edits_mode_lets_a_turn_write_without_allowed_tools(
    sandboxes: Sandboxes, double: ApiDouble, workspace: Path
) -> None:
    """The operator's --permission-mode survives the image's policy on every line."""
    double.play(
        Conversation(
            [
                reply(tool("Write", file_path="/workspace/mode.txt", content="accepted\n")),
                reply(text("Written.")),
            ]
        )
    )
    sandbox = sandboxes.start(str(workspace))

    turn = sandbox.turn("write it", "--permission-mode", "acceptEdits")

    assert turn.ok, str(turn)
    assert turn.result["permission_denials"] == [], turn.result["permission_denials"]
    assert (workspace / "mode.txt").read_text() == "accepted\n"


def test_read_then_edit_turn_changes_an_existing_file(
    sandboxes: Sandboxes, double: ApiDouble, make_workspace
) -> None:
    workspace = make_workspace(files={"notes.txt": "colour: red\nsize: 3\n"})
    double.play(
        Conversation(
            [
                reply(tool("Read", file_path="/workspace/notes.txt")),
                reply(
                    tool(
                        "Edit",
                        file_path="/workspace/notes.txt",
                        old_string="red",
                        new_string="blue",
                    )
                ),
                reply(text("Changed the colour.")),
            ]
        )
    )
    sandbox = sandboxes.start(str(workspace))

    turn = sandbox.turn("make it blue", "--allowedTools", "Edit")

    assert turn.ok, str(turn)
    assert (workspace / "notes.txt").read_text() == "colour: blue\nsize: 3\n"
    log = double.log()
    assert not log.problems(), log.problems()
    _, after_read, after_edit = log.played()
    [read] = tool_results(after_read)
    assert "colour: red" in result_text(read), read
    [edit] = tool_results(after_edit)
    assert not edit.get("is_error"), edit


def _repository(make_workspace) -> Path:
    workspace = make_workspace(files={"app.py": "print('hello')\n"})
    subprocess.run(["git", "init", "-q", "-b", "main", str(workspace)], check=True)
    subprocess.run(["chown", "-R", "1000:1000", str(workspace)], check=True)
    return workspace


def _commit_turn(double: ApiDouble, message: str) -> None:
    command = f"cd /workspace && git add app.py && git commit -q -m '{message}' && git log -1"
    double.play(
        Conversation(
            [reply(tool("Bash", command=command, description="Commit")), reply(text("Committed."))]
        )
    )


def test_bash_turn_commits_as_the_agent(
    sandboxes: Sandboxes, double: ApiDouble, make_workspace
) -> None:
    workspace = _repository(make_workspace)
    _commit_turn(double, "Add app.py")
    sandbox = sandboxes.start(str(workspace))

    turn = sandbox.turn("commit app.py", "--allowedTools", "Bash")

    assert turn.ok, str(turn)
    assert not double.log().problems(), double.log().problems()
    line = host_git(workspace, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s").strip()
    agent = "AgentGate Agent <agent@agentgate.invalid>"
    assert line == f"{agent}|{agent}|Add app.py"
    assert host_git(workspace, "status", "--porcelain") == ""


def test_bash_turn_commits_with_the_identity_the_operator_gives(
    sandboxes: Sandboxes, double: ApiDouble, make_workspace
) -> None:
    workspace = _repository(make_workspace)
    _commit_turn(double, "Add app.py for Ada")
    identity = {
        "GIT_AUTHOR_NAME": "Ada Lovelace",
        "GIT_AUTHOR_EMAIL": "ada@example.org",
        "GIT_COMMITTER_NAME": "AgentGate",
        "GIT_COMMITTER_EMAIL": "bot@example.org",
    }
    sandbox = sandboxes.start(str(workspace), environment=identity)

    turn = sandbox.turn("commit app.py", "--allowedTools", "Bash")

    assert turn.ok, str(turn)
    line = host_git(workspace, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s").strip()
    assert line == "Ada Lovelace <ada@example.org>|AgentGate <bot@example.org>|Add app.py for Ada"


def test_stream_json_lines_parse_and_the_result_closes_the_stream(
    sandboxes: Sandboxes, double: ApiDouble, workspace: Path
) -> None:
    double.play(
        Conversation(
            [
                reply(tool("Write", file_path="/workspace/s.txt", content="s\n")),
                reply(text("Streamed.")),
            ]
        )
    )
    sandbox = sandboxes.start(str(workspace))

    turn = sandbox.turn("stream it", "--verbose", "--allowedTools", "Write", output="stream-json")

    assert turn.code == 0, str(turn)
    events = [json.loads(line) for line in turn.stdout.splitlines() if line.strip()]
    # The first event of the session is its init; the 2.1.33x CLI may send other system
    # events (ui_invalidate) before it, never a message.
    kinds = [e["type"] for e in events]
    inits = [i for i, e in enumerate(events) if (e["type"], e.get("subtype")) == ("system", "init")]
    assert len(inits) == 1, kinds
    assert set(kinds[: inits[0]]) <= {"system"}, kinds
    init = events[inits[0]]
    assert {"Write", "Read", "Edit", "Bash"} <= set(init["tools"]), init["tools"]
    assert init["cwd"] == "/workspace"
    assert kinds.count("result") == 1, kinds
    assert kinds[-1] == "result", kinds
    assert {"assistant", "user"} <= set(kinds), kinds  # the tool call and its result
    result = events[-1]
    assert result["is_error"] is False, result
    assert result["result"] == "Streamed.", result
    assert (workspace / "s.txt").read_text() == "s\n"


def test_a_stream_cut_after_message_start_is_retried_without_streaming(
    sandboxes: Sandboxes, double: ApiDouble, workspace: Path
) -> None:
    double.play(Conversation([CUT, reply(text("Recovered."))]))
    sandbox = sandboxes.start(str(workspace))

    turn = sandbox.turn("survive a dropped stream")

    assert turn.ok, str(turn)
    assert turn.result["result"] == "Recovered."
    cut, retry = double.log().played()
    assert cut["body"]["stream"] is True
    assert not retry["body"].get("stream"), "the retry of a dropped stream does not stream"
