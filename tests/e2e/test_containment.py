"""A sandbox on its network reaches the API double and nothing else.

Each way out is tried against something that is really listening, and the same probe from
a container on an ordinary bridge network (the positive control) must get through, so a
"closed" verdict means the sandbox's network stopped it, not that nobody was there:
- the host: a TCP listener on all of the host's addresses (an internal network alone still
  lets containers reach the host through the bridge's address);
- the double's control address, on a network the sandbox does not join;
- DNS: a recorder set as the container's upstream resolver (`--dns`) must see no query from
  the sandbox (DNS is the classic tunnel out of a network without a route);
- IPv6: no default route.
And the double's log holds only the turn's expected requests, all from this sandbox.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_double import CONTROL_PORT, ApiDouble, Conversation, reply, text
from docker.models.containers import Container
from docker.models.networks import Network
from sandbox import Sandboxes
from script_container import address_on, start_script_container

import docker

# One line per probe, NAME=open|closed.
PROBE = r"""
probe() {  # probe NAME URL
    if curl -sS -I -o /dev/null --connect-timeout 2 -m 3 "$2" 2>/dev/null; then
        echo "$1=open"
    else
        echo "$1=closed"
    fi
}
[ -z "${DOUBLE_URL:-}" ] || probe double "$DOUBLE_URL/"
for target in $TARGETS; do probe "$target" "http://$target/"; done
getent hosts "$NAME" >/dev/null 2>&1 && echo dns=open || echo dns=closed
awk '$1 == "00000000000000000000000000000000" && $2 == "00" && $10 != "lo" {found=1}
     END {print (found ? "ipv6-default-route=open" : "ipv6-default-route=closed")}' \
    /proc/net/ipv6_route
"""


class HostListener:
    """Accepts TCP connections on every host address and remembers who connected."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("0.0.0.0", 0))  # noqa: S104 (the point of the test)
        self.port = self.sock.getsockname()[1]
        self.peers: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, (peer, _) = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer)
            conn.sendall(b"HTTP/1.0 204 No Content\r\n\r\n")
            conn.close()


@pytest.fixture
def host_listener() -> Iterator[HostListener]:
    listener = HostListener()
    yield listener
    listener.sock.close()


@pytest.fixture
def dns_recorder(
    client: docker.DockerClient,
    image_ref: str,
    control_network: Network,
    labels: dict[str, str],
) -> Iterator[Container]:
    recorder = start_script_container(
        client,
        image_ref,
        Path(__file__).parents[1] / "support" / "dns_recorder.py",
        [],
        name=f"agt-e2e-dns-{uuid.uuid4().hex[:8]}",
        networks={control_network: ()},
        labels=labels,
    )
    yield recorder
    recorder.remove(force=True)


def host_addresses() -> list[str]:
    """The host's own IPv4 addresses: its uplink, docker0 and every bridge."""
    listed = subprocess.run(
        ["ip", "-json", "-4", "address", "show"], capture_output=True, text=True, check=False
    )
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    return [
        info["local"]
        for interface in json.loads(out)
        for info in interface.get("addr_info", [])
        if not info["local"].startswith("127.")
    ]


def verdicts(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.split())


def queried(recorder: Container) -> set[str]:
    lines = recorder.logs(stdout=True, stderr=False).decode().splitlines()
    return {json.loads(line).get("name", "") for line in lines}


def test_the_sandbox_reaches_the_double_and_nothing_else(
    client: docker.DockerClient,
    image_ref: str,
    sandboxes: Sandboxes,
    double: ApiDouble,
    control_network: Network,
    labels: dict[str, str],
    workspace: Path,
    host_listener: HostListener,
    dns_recorder: Container,
) -> None:
    recorder_ip = address_on(dns_recorder, control_network)
    targets = [f"{double.control_ip}:{CONTROL_PORT}"]
    targets += [f"{ip}:{host_listener.port}" for ip in host_addresses()]
    env = {"TARGETS": " ".join(targets)}

    # Positive control: from an ordinary bridge network every target answers and the
    # recorder resolves the name, so the probes can tell open from closed.
    control_name = f"control-{uuid.uuid4().hex[:8]}.example"
    control = client.containers.run(
        image_ref,
        ["bash", "-c", PROBE],
        entrypoint=[],
        network=control_network.name,
        dns=[recorder_ip],
        environment={**env, "NAME": control_name},
        labels=labels,
        detach=True,
    )
    try:
        control.wait(timeout=120)
        seen_from_outside = verdicts(control.logs(stdout=True, stderr=False).decode())
    finally:
        control.remove(force=True)
    assert seen_from_outside.pop("ipv6-default-route") == "closed"  # no IPv6 on this bridge
    assert set(seen_from_outside.values()) == {"open"}, seen_from_outside
    assert control_name in queried(dns_recorder)

    double.play(Conversation([reply(text("Contained."))]))
    sandbox = sandboxes.start(str(workspace), dns=[recorder_ip])
    sandbox.container.reload()
    [ip] = [n["IPAddress"] for n in sandbox.container.attrs["NetworkSettings"]["Networks"].values()]
    peers_before = len(host_listener.peers)

    turn = sandbox.turn("hello")
    name = f"exfil-{uuid.uuid4().hex[:8]}.example"
    code, out, err, _ = sandbox.exec(
        ["bash", "-c", PROBE], env={**env, "NAME": name, "DOUBLE_URL": double.url}
    )

    assert turn.ok, str(turn)
    log = double.log()
    assert not log.problems(), log.problems()
    assert {r["client"] for r in log.requests} == {ip}
    assert code == 0, err
    seen_from_sandbox = verdicts(out)
    assert seen_from_sandbox.pop("double") == "open", "the sandbox must reach the API double"
    assert set(seen_from_sandbox) == set(seen_from_outside) | {"ipv6-default-route"}, out
    assert set(seen_from_sandbox.values()) == {"closed"}, seen_from_sandbox
    assert name not in queried(dns_recorder), "a DNS query left the sandbox's network"
    assert host_listener.peers[peers_before:] == [], "the sandbox connected to the host"
