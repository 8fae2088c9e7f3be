"""The same Write turn under the identities an operator may choose: any UID, or root start."""

from __future__ import annotations

from pathlib import Path

from api_double import ApiDouble, Conversation, reply, text, tool
from sandbox import Sandboxes


def _write_turn(double: ApiDouble, name: str) -> None:
    double.play(
        Conversation(
            [
                reply(tool("Write", file_path=f"/workspace/{name}", content=f"{name}\n")),
                reply(text("Written.")),
            ]
        )
    )


def test_a_turn_as_an_arbitrary_uid(sandboxes: Sandboxes, double: ApiDouble, make_workspace):
    workspace: Path = make_workspace(uid=4242)
    _write_turn(double, "by-4242.txt")
    sandbox = sandboxes.start(
        str(workspace),
        user="4242:4242",
        tmpfs={"/tmp": "size=256m", "/home/agentgate": "size=64m,uid=4242,gid=4242"},
    )

    turn = sandbox.turn("write it", "--allowedTools", "Write")

    assert turn.ok, str(turn)
    written = workspace / "by-4242.txt"
    assert written.read_text() == "by-4242.txt\n"
    assert (written.stat().st_uid, written.stat().st_gid) == (4242, 4242)


def test_a_turn_after_a_root_start_runs_as_agentgate(
    sandboxes: Sandboxes, double: ApiDouble, make_workspace
) -> None:
    """Root start: the entrypoint gives the workspace to agentgate and drops to it, keeping no
    capability (bounding set included, which takes CAP_SETPCAP) and setting no_new_privs."""
    workspace: Path = make_workspace(uid=0, files={"README": "from root\n"})
    _write_turn(double, "after-root.txt")
    sandbox = sandboxes.start(
        str(workspace), user="0:0", cap_add=["CHOWN", "SETUID", "SETGID", "SETPCAP"]
    )

    turn = sandbox.turn("write it", "--allowedTools", "Write", user="1000:1000")

    assert turn.ok, str(turn)
    written = workspace / "after-root.txt"
    assert (written.stat().st_uid, written.stat().st_gid) == (1000, 1000)
    assert (workspace / "README").stat().st_uid == 1000
    _, out, _, _ = sandbox.exec(
        [
            "sh",
            "-c",
            "grep -E '^(Uid|Gid|CapBnd|NoNewPrivs)' /proc/$(cut -d' ' -f1 "
            "/proc/1/task/1/children)/status",
        ]
    )
    fields = dict(line.split(":\t", 1) for line in out.splitlines())
    assert fields["Uid"].split()[:2] == ["1000", "1000"], out
    assert fields["Gid"].split()[:2] == ["1000", "1000"], out
    assert int(fields["CapBnd"], 16) == 0, out
    assert fields["NoNewPrivs"].strip() == "1", out
