"""The most isolated profile: the sandbox under gVisor (runsc) with no network at all, the
model API reached through the gateway's Unix socket (Anthropic's secure-deployment guide).

runsc on these hosts cannot give a container a network of its own, so provisioning registers
it with --network=none and --host-uds=open (scripts/provision-docker-engine.sh). The gateway
serves its model-API port on a socket in a volume the sandbox mounts read-only; the CLI talks
to it with ANTHROPIC_UNIX_SOCKET. There is no proxy in this profile: the agent can reach the
model API and nothing else, not even a package registry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_double import ApiDouble, Conversation, reply, text, tool
from docker.models.networks import Network
from gatewaykit import PLACEHOLDER_KEY, REAL_KEY, SECRET_TARGET, Gateway, Gateways, secret_mount
from sandbox import Sandboxes

import docker

SOCKET_DIR = "/run/agentgate-gateway"
SOCKET = f"{SOCKET_DIR}/api.sock"


@pytest.fixture(scope="module")
def runsc(client: docker.DockerClient) -> str:
    if "runsc" not in client.info().get("Runtimes", {}):
        pytest.fail(
            "Docker has no runsc runtime: run scripts/provision-docker-engine.sh (it installs "
            "gVisor and registers it with --network=none --host-uds=open)"
        )
    return "runsc"


@pytest.fixture
def socket_volume(client: docker.DockerClient, labels: dict[str, str]) -> Iterator[str]:
    volume = client.volumes.create(f"agt-gw-socket-{uuid.uuid4().hex[:8]}", labels=labels)
    yield str(volume.name)
    for user in client.containers.list(all=True, filters={"volume": volume.name}):
        user.remove(force=True)  # the gateway and the sandbox, if their fixtures have not yet
    volume.remove(force=True)


@pytest.fixture
def socket_gateway(
    gateways: Gateways, api_double: ApiDouble, key_file: Path, socket_volume: str
) -> Gateway:
    return gateways.start(
        {
            "ANTHROPIC_API_KEY_FILE": SECRET_TARGET,
            "GATEWAY_UPSTREAM": api_double.url,
            "GATEWAY_API_SOCKET": SOCKET,
        },
        volumes={**secret_mount(key_file), socket_volume: {"bind": SOCKET_DIR, "mode": "rw"}},
    )


@pytest.fixture
def sandboxes(
    client: docker.DockerClient,
    image_ref: str,
    sandbox_network: Network,
    labels: dict[str, str],
) -> Iterator[Sandboxes]:
    env = {
        "ANTHROPIC_UNIX_SOCKET": SOCKET,
        "ANTHROPIC_BASE_URL": "http://gateway",  # the host part names nothing: the socket does
        "ANTHROPIC_API_KEY": PLACEHOLDER_KEY,
        "CLAUDE_CODE_MAX_RETRIES": "2",
    }
    box = Sandboxes(client, image_ref, sandbox_network, env, labels, "agt-gw-gvisor")
    try:
        yield box
    finally:
        box.remove_all()


def test_a_turn_under_gvisor_with_no_network_through_the_gateway_socket(
    runsc: str,
    sandboxes: Sandboxes,
    socket_gateway: Gateway,
    socket_volume: str,
    double: ApiDouble,
    make_workspace: Callable[..., Path],
) -> None:
    workspace = make_workspace()
    double.play(
        Conversation(
            [
                reply(tool("Write", file_path="/workspace/g.txt", content="gvisor\n")),
                reply(text("Written under gVisor.")),
            ],
            marker="gvisor-turn",
        ),
        api_key=REAL_KEY,
    )
    sandbox = sandboxes.start(
        str(workspace),
        runtime=runsc,
        network_mode="none",
        volumes={socket_volume: {"bind": SOCKET_DIR, "mode": "ro"}},
    )

    turn = sandbox.turn("write it (gvisor-turn)", "--allowedTools", "Write")

    assert turn.ok, f"{turn}\n--- gateway logs ---\n{socket_gateway.logs()}"
    assert (workspace / "g.txt").read_text() == "gvisor\n"
    assert (workspace / "g.txt").stat().st_uid == 1000
    played = double.log().played("gvisor-turn")
    assert [r["headers"]["x-api-key"] for r in played] == [REAL_KEY, REAL_KEY]
    # The kernel the sandbox sees is gVisor's, and it has no network interface but loopback.
    _, kernel, _, _ = sandbox.exec(["sh", "-c", "dmesg | head -1"])
    assert "gVisor" in kernel, kernel
    _, devices, _, _ = sandbox.exec(["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1"])
    assert devices.split() == ["lo"], devices
    sandbox.container.reload()
    assert REAL_KEY not in json.dumps(sandbox.container.attrs)
    _, environ, _, _ = sandbox.exec(["sh", "-c", "cat /proc/[0-9]*/environ | tr '\\0' '\\n'"])
    assert REAL_KEY not in environ
    assert f"ANTHROPIC_API_KEY={PLACEHOLDER_KEY}" in environ
