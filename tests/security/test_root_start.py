"""Red team, item 1: a root start cannot be turned into root for the agent.

Started as root (`--user 0`), the entrypoint gives the workspace to agentgate and drops to it.
The attacks: a workspace whose symlinks point at /etc and /usr/local/bin (once, the chown
handed the health-check script and the CLI to the agent, and the next root health check ran
the agent's code), a hard link to a host file outside the workspace, a nested bind mount of
another host directory, AGENT_WORKSPACE naming a symlink; then, as the agent, planting code for
a root process to run. Each must leave every root-owned file root's and every process the
agent can reach without privileges.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from sandbox import Sandbox, Sandboxes

# The minimum a root start needs: chown the workspace, change ids, clear the bounding set.
ROOT_START = {"user": "0:0", "cap_add": ["CHOWN", "SETUID", "SETGID", "SETPCAP"]}
AGENT = "1000:1000"
SYSTEM_FILES = (
    "/etc",
    "/etc/passwd",
    "/usr/local/bin",
    "/usr/local/bin/agent-healthcheck.sh",
    "/usr/local/bin/agent-entrypoint.sh",
    "/opt/claude-code",
    "/etc/claude-code/managed-settings.json",
)


def owners(sandbox: Sandbox, paths: tuple[str, ...]) -> dict[str, str]:
    code, out, err, _ = sandbox.exec(["stat", "-c", "%n %u:%g", *paths])
    assert code == 0, err
    return dict(line.rsplit(" ", 1) for line in out.splitlines())


def status_of_keepalive(sandbox: Sandbox) -> dict[str, str]:
    keepalive = "/proc/$(cut -d' ' -f1 /proc/1/task/1/children)/status"
    script = f"grep -E '^(Uid|CapBnd|CapEff|NoNewPrivs):' {keepalive}"
    _, out, _, _ = sandbox.exec(["sh", "-c", script])
    return {k: v.strip() for k, v in (line.split(":", 1) for line in out.splitlines())}


def test_hostile_links_and_mounts_are_never_followed(
    sandboxes: Sandboxes, make_workspace: Callable[..., Path], tmp_path: Path
) -> None:
    workspace = make_workspace(uid=0, files={"README": "hostile\n"})
    outside = tmp_path / "host-file"
    outside.write_text("owned by root on the host\n")
    os.link(outside, workspace / "hard-link")  # what a `git clone` of a local repo makes
    (workspace / "etc").symlink_to("/etc")
    (workspace / "bin").symlink_to("/usr/local/bin")
    (workspace / "cli").symlink_to("/opt/claude-code")
    nested = tmp_path / "nested"
    nested.mkdir()
    (nested / "other").write_text("another host directory\n")
    (workspace / "nested").mkdir()
    volumes = {str(nested): {"bind": "/workspace/nested", "mode": "rw"}}

    sandbox = sandboxes.start(str(workspace), volumes=volumes, **ROOT_START)

    assert set(owners(sandbox, SYSTEM_FILES).values()) == {"0:0"}
    assert (workspace / "README").stat().st_uid == 1000  # the workspace itself was given
    assert outside.stat().st_uid == 0, "a hard link's target on the host was re-owned"
    assert (nested / "other").stat().st_uid == 0, "the nested mount was re-owned"
    assert nested.stat().st_uid == 0
    # And the agent cannot write where root runs code from.
    for target in ("/usr/local/bin/agent-healthcheck.sh", "/etc/passwd"):
        code, _, _, _ = sandbox.exec(["sh", "-c", f"echo pwned >> {target}"], user=AGENT)
        assert code != 0, f"the agent could write {target}"


def test_the_workload_keeps_no_capability_and_cannot_gain_one(
    sandboxes: Sandboxes, make_workspace: Callable[..., Path]
) -> None:
    sandbox = sandboxes.start(str(make_workspace(uid=0)), **ROOT_START)
    status = status_of_keepalive(sandbox)
    assert status["Uid"].split()[:2] == ["1000", "1000"], status
    assert int(status["CapEff"], 16) == 0, status
    assert int(status["CapBnd"], 16) == 0, status
    assert status["NoNewPrivs"] == "1", status


def test_the_health_check_runs_as_the_agent_after_a_root_start(
    sandboxes: Sandboxes, make_workspace: Callable[..., Path]
) -> None:
    """Docker runs health checks as the container's user: root here. If it stayed root, the
    agent's workspace would always look writable to it; it must report the agent's view."""
    workspace = make_workspace(uid=0)
    sandbox = sandboxes.start(str(workspace), **ROOT_START)
    code, _, err, _ = sandbox.exec(["chmod", "0555", "/workspace"], user=AGENT)
    assert code == 0, err
    deadline = time.monotonic() + 30
    while True:
        sandbox.container.reload()
        health = sandbox.container.attrs["State"]["Health"]
        outputs = [entry["Output"] for entry in health.get("Log") or []]
        if any("not writable by uid 1000" in out for out in outputs):
            break
        assert time.monotonic() < deadline, f"no check ran as uid 1000: {outputs}"
        time.sleep(0.5)


def test_a_setuid_file_the_agent_plants_never_becomes_roots(
    sandboxes: Sandboxes, make_workspace: Callable[..., Path]
) -> None:
    """The old chain: the agent plants a setuid copy of bash and waits for a root process to
    take it over; on the host, a setuid-root file in the checkout is root for anyone."""
    workspace = make_workspace(uid=0)
    sandbox = sandboxes.start(str(workspace), **ROOT_START)
    code, _, err, _ = sandbox.exec(
        ["sh", "-c", "cp /bin/bash /workspace/rootbash && chmod 4755 /workspace/rootbash"],
        user=AGENT,
    )
    assert code == 0, err
    # Let root-side processes have their chance: the health check, a restart (root start).
    sandbox.exec(["agent-healthcheck.sh"], user="0:0")
    sandbox.container.restart(timeout=5)
    planted = workspace / "rootbash"
    assert planted.stat().st_uid == 1000
    # Even the setuid bit the agent set is worthless: no_new_privs ignores it in the sandbox.
    code, out, _, _ = sandbox.exec(["/workspace/rootbash", "-p", "-c", "id -u"], user=AGENT)
    assert out.strip() == "1000", out


def test_agent_workspace_naming_a_symlink_to_the_system_is_refused(
    sandboxes: Sandboxes, make_workspace: Callable[..., Path]
) -> None:
    workspace = make_workspace(uid=0)
    (workspace / "usr").symlink_to("/usr")
    code, _, err = sandboxes.run(
        str(workspace), ["true"], environment={"AGENT_WORKSPACE": "/workspace/usr"}, **ROOT_START
    )
    assert code == 78, err
    assert "resolves to /usr" in err
