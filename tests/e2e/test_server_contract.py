"""The AgentGate server's way of using the image, and many sandboxes at once.

The contract (README, "Using it from an AgentGate server"): create the container with the
docker SDK and the hardened settings, start it, wait until Docker reports it healthy, run
each turn with exec as UID 1000, stop it (it exits at once), remove it with its volumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from api_double import ApiDouble, Conversation, reply, text, tool
from docker.models.networks import Network
from sandbox import SANDBOX_SETTINGS, Sandbox, Sandboxes, logs_of

import docker


def test_the_server_contract(
    client: docker.DockerClient,
    image_ref: str,
    sandbox_network: Network,
    double: ApiDouble,
    sandbox_env: dict[str, str],
    labels: dict[str, str],
    workspace: Path,
) -> None:
    double.play(
        Conversation(
            [
                reply(tool("Write", file_path="/workspace/task.txt", content="done\n")),
                reply(text("Task done.")),
            ]
        )
    )
    container = client.containers.create(
        image_ref,
        name=f"agt-e2e-server-contract-{time.monotonic_ns()}",
        network=sandbox_network.name,
        environment=sandbox_env,
        volumes={str(workspace): {"bind": "/workspace", "mode": "rw"}},
        labels=labels,
        **SANDBOX_SETTINGS,
    )
    try:
        container.start()
        deadline = time.monotonic() + 30
        while (container.attrs["State"].get("Health") or {}).get("Status") != "healthy":
            assert time.monotonic() < deadline, f"not healthy in 30 s\n{logs_of(container)}"
            time.sleep(0.2)
            container.reload()

        code, (out, err) = container.exec_run(
            ["claude", "-p", "do the task", "--output-format", "json", "--allowedTools", "Write"],
            user="1000:1000",
            demux=True,
        )

        assert code == 0, (out, err)
        assert b'"is_error":false' in out, out
        assert (workspace / "task.txt").read_text() == "done\n"
        started = time.monotonic()
        container.stop(timeout=10)
        assert time.monotonic() - started < 3, "stop must not wait for Docker's kill timeout"
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 143
    finally:
        container.remove(force=True, v=True)


def test_eight_sandboxes_in_parallel_each_complete_their_own_turn(
    sandboxes: Sandboxes, double: ApiDouble, make_workspace: Callable[..., Path]
) -> None:
    count = 8
    double.play(
        *(
            Conversation(
                [
                    reply(tool("Write", file_path=f"/workspace/from-{i}.txt", content=f"{i}\n")),
                    reply(text(f"Sandbox {i} done.")),
                ],
                marker=f"task for sandbox-{i}.",
            )
            for i in range(count)
        )
    )
    workspaces = [make_workspace(f"ws-{i}") for i in range(count)]
    with ThreadPoolExecutor(count) as pool:
        boxes: list[Sandbox] = list(pool.map(lambda ws: sandboxes.start(str(ws)), workspaces))
        turns = list(
            pool.map(
                lambda i: boxes[i].turn(f"task for sandbox-{i}.", "--allowedTools", "Write"),
                range(count),
            )
        )

    for i, turn in enumerate(turns):
        assert turn.ok, f"sandbox {i}: {turn}"
        assert turn.result["result"] == f"Sandbox {i} done."
        assert sorted(p.name for p in workspaces[i].iterdir()) == [f"from-{i}.txt"]
    log = double.log()
    assert not log.problems(), log.problems()
