"""The AgentGate server's way of using the image, and many sandboxes at once.

The contract (README, "Using it from an AgentGate server"), through the docker SDK:
1. the gateway: created with the key in its environment (or a secret file), hardened, on a
   network that leads out, joined to the sandbox network under the alias `gateway`; started,
   and waited for until healthy;
2. the sandbox: created with SANDBOX_SETTINGS on the sandbox network only (internal, no host
   address), wired to the gateway (gateway_wiring: a placeholder key), the workspace mounted;
   started, and waited for until healthy;
3. each turn: exec `claude -p ... --output-format json` as UID 1000; judge it by is_error and
   permission_denials;
4. stop (it exits at once, status 143) and remove with its volumes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from api_double import ApiDouble, Conversation, reply, text, tool
from docker.models.containers import Container
from docker.models.networks import Network
from sandbox import (
    GATEWAY_SETTINGS,
    SANDBOX_SETTINGS,
    Sandbox,
    Sandboxes,
    gateway_wiring,
    logs_of,
)

import docker

REAL_KEY = "sk-ant-contract-" + uuid.uuid4().hex


def wait_healthy(container: Container, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    container.reload()
    while (container.attrs["State"].get("Health") or {}).get("Status") != "healthy":
        assert time.monotonic() < deadline, f"not healthy in {timeout}s\n{logs_of(container)}"
        time.sleep(0.2)
        container.reload()


def test_the_server_contract(
    client: docker.DockerClient,
    image_ref: str,
    gateway_image: str,
    sandbox_network: Network,
    control_network: Network,
    double: ApiDouble,
    labels: dict[str, str],
    workspace: Path,
) -> None:
    double.play(
        Conversation(
            [
                reply(tool("Write", file_path="/workspace/task.txt", content="done\n")),
                reply(text("Task done.")),
            ]
        ),
        api_key=REAL_KEY,
    )
    name = f"agt-e2e-contract-{uuid.uuid4().hex[:8]}"
    created: list[Container] = []
    try:
        # 1. The gateway: the only holder of the key, the sandbox's only way out. Here its
        # "outside" is the control network, where the double serves as the model API.
        gateway = client.containers.create(
            gateway_image,
            name=f"{name}-gateway",
            environment={
                "ANTHROPIC_API_KEY": REAL_KEY,
                "GATEWAY_UPSTREAM": f"http://{double.control_ip}:8080",
            },
            network=control_network.name,
            labels=labels,
            **GATEWAY_SETTINGS,
        )
        created.append(gateway)
        sandbox_network.connect(gateway, aliases=["gateway"])
        gateway.start()
        wait_healthy(gateway)

        # 2. The sandbox: the internal network only, a placeholder key.
        sandbox = client.containers.create(
            image_ref,
            name=f"{name}-sandbox",
            network=sandbox_network.name,
            environment=gateway_wiring("gateway"),
            volumes={str(workspace): {"bind": "/workspace", "mode": "rw"}},
            labels=labels,
            **SANDBOX_SETTINGS,
        )
        created.append(sandbox)
        sandbox.start()
        wait_healthy(sandbox)

        # 3. A turn, as UID 1000.
        code, (out, err) = sandbox.exec_run(
            [
                "claude",
                "-p",
                "do the task",
                "--output-format",
                "json",
                "--allowedTools",
                "Read,Edit,Write",
                "--setting-sources",
                "user",
            ],
            user="1000:1000",
            demux=True,
        )
        assert code == 0, (out, err)
        result = json.loads(out)
        assert result["is_error"] is False, result
        assert result["permission_denials"] == [], result
        assert (workspace / "task.txt").read_text() == "done\n"
        assert {r["headers"]["x-api-key"] for r in double.log().requests} == {REAL_KEY}
        sandbox.reload()
        assert REAL_KEY not in json.dumps(sandbox.attrs), "the key reached the sandbox"

        # 4. Stop: at once, not after Docker's 10 s kill timeout.
        started = time.monotonic()
        sandbox.stop(timeout=10)
        assert time.monotonic() - started < 3, "stop must not wait for Docker's kill timeout"
        sandbox.reload()
        assert sandbox.attrs["State"]["ExitCode"] == 143
    finally:
        for container in reversed(created):
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
