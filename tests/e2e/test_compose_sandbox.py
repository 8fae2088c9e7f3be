"""docker-compose.yml as a user runs it: `docker compose up -d --wait agent` brings up the
gateway and the sandbox healthy, and a turn in the sandbox reaches the model API through the
gateway, which alone holds the key.

The Messages API double stands in for the model API: it joins the compose project's egress
network under the name the gateway is pointed at (AGENT_GATEWAY_UPSTREAM), and accepts only
the key compose handed the gateway.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_double import ApiDouble, Conversation, reply, text, tool

import docker

REPO = Path(__file__).resolve().parents[2]
REAL_KEY = "sk-ant-compose-" + uuid.uuid4().hex
UPSTREAM = "model-api.compose.test"


class Compose:
    def __init__(self, project: str, env: dict[str, str]) -> None:
        self.project = project
        self.env = env

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = ["docker", "compose", "-f", str(REPO / "docker-compose.yml"), "-p", self.project]
        return subprocess.run(
            [*argv, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture
def compose(
    image_ref: str, gateway_image: str, workspace: Path, api_double: ApiDouble
) -> Iterator[Compose]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        **{k: v for k, v in os.environ.items() if k.startswith("DOCKER_")},
        "AGENT_IMAGE": image_ref,
        "AGENT_GATEWAY_IMAGE": gateway_image,
        "AGENT_WORKSPACE_DIR": str(workspace),
        "AGENT_GATEWAY_UPSTREAM": f"http://{UPSTREAM}:8080",
        "ANTHROPIC_API_KEY": REAL_KEY,
    }
    project = Compose(f"agt-e2e-compose-{uuid.uuid4().hex[:8]}", env)
    try:
        yield project
    finally:
        egress = f"{project.project}_egress"
        with contextlib.suppress(docker.errors.NotFound):
            docker.from_env().networks.get(egress).disconnect(api_double.container, force=True)
        down = project("down", "-v", "--timeout", "5")
        assert down.returncode == 0, down.stderr


def test_compose_agent_is_up_healthy_and_contained_by_the_gateway(
    compose: Compose, client: docker.DockerClient, double: ApiDouble, workspace: Path
) -> None:
    up = compose("up", "-d", "--wait", "--no-build", "--pull", "never", "agent")
    assert up.returncode == 0, up.stderr
    agent = client.containers.get(compose("ps", "-q", "agent").stdout.strip())
    assert agent.attrs["State"]["Health"]["Status"] == "healthy"
    host = agent.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert agent.attrs["Config"]["User"] == "1000:1000"
    sandbox_net = f"{compose.project}_sandbox"
    assert list(agent.attrs["NetworkSettings"]["Networks"]) == [sandbox_net]
    network = client.networks.get(sandbox_net)
    assert network.attrs["Internal"] is True
    assert network.attrs["Options"]["com.docker.network.bridge.inhibit_ipv4"] == "true"

    # The model API, as the gateway sees it from its egress network.
    client.networks.get(f"{compose.project}_egress").connect(double.container, aliases=[UPSTREAM])
    double.play(
        Conversation(
            [
                reply(tool("Write", file_path="/workspace/c.txt", content="compose\n")),
                reply(text("Done via compose.")),
            ]
        ),
        api_key=REAL_KEY,
    )
    turn = compose(
        "exec",
        "-T",
        "-u",
        "1000:1000",
        "agent",
        "claude",
        "-p",
        "write it",
        "--output-format",
        "json",
        "--allowedTools",
        "Write",
    )

    assert turn.returncode == 0, turn.stdout + turn.stderr
    assert json.loads(turn.stdout)["result"] == "Done via compose."
    assert (workspace / "c.txt").read_text() == "compose\n"
    log = double.log()
    assert not log.problems(), log.problems()
    assert {r["headers"]["x-api-key"] for r in log.requests} == {REAL_KEY}
    agent.reload()
    assert REAL_KEY not in json.dumps(agent.attrs), "the key is in the sandbox's config"
