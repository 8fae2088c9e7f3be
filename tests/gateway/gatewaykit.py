"""Helpers for the gateway tests (imported by conftest.py and the test modules).

A Gateway is the image under test started the hardened way, on the outside network (where
its upstream and the test origins live) and on the sandbox network under an alias of its
own. A Probe is a container from the agent image that sends real requests with curl. Every
container a test starts is removed at teardown; every wait has a monotonic deadline and puts
`docker logs` in its failure message; every exec is bounded by coreutils `timeout`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from docker.models.containers import Container
from docker.models.networks import Network
from sandbox import GATEWAY_SETTINGS, Sandbox, logs_of
from script_container import address_on, start_script_container

import docker

GATEWAY_UID = 1100
API_PORT = 8080
PROXY_PORT = 3128
ORIGIN = Path(__file__).with_name("origin_server.py")
ORIGIN_PORTS = (80, 443, 8080, 8443)
START_TIMEOUT = 30
EXIT_TIMEOUT = 30

# The gateway's credential, and what sandboxes present instead of it.
REAL_KEY = "sk-ant-api03-gateway-" + uuid.uuid4().hex
PLACEHOLDER_KEY = "sk-ant-placeholder-" + uuid.uuid4().hex
SECRET_TARGET = "/run/secrets/anthropic_api_key"

# Names on the outside network. Behind the forward proxy: origins under allowed and forbidden
# names; behind the model-API port: the double (api_double.ALIAS), or an origin that records
# HEAD requests too.
UPSTREAM_ALIAS = "upstream.agentgate.test"
ALLOWED = ("allowed.agentgate.test", "deep.sub.agentgate.test")
FORBIDDEN = ("forbidden.agentgate.test", "xsub.agentgate.test")
# Allowed names that resolve (through the gateway's /etc/hosts) to places squid must refuse.
REBOUND = {"loopback.agentgate.test": "127.0.0.1", "metadata.agentgate.test": "169.254.169.254"}
ALLOWED_DOMAINS = f"allowed.agentgate.test, .sub.agentgate.test {' '.join(REBOUND)}"


@dataclass(frozen=True)
class Testbed:
    """What every container of one test run shares: Docker, the images, the networks, the
    labels that mark the run, and the prefix of every container name."""

    client: docker.DockerClient
    agent_image: str  # curl and python3 for probes, origins and the double
    gateway_image: str
    sandbox: Network
    outside: Network
    control: Network
    labels: Mapping[str, str]
    prefix: str


@dataclass
class Gateway:
    container: Container
    alias: str

    @property
    def api_url(self) -> str:
        return f"http://{self.alias}:{API_PORT}"

    @property
    def proxy_url(self) -> str:
        return f"http://{self.alias}:{PROXY_PORT}"

    def logs(self) -> str:
        return logs_of(self.container)


@dataclass
class Exited:
    code: int
    logs: str

    def error_lines(self) -> list[str]:
        return [line for line in self.logs.splitlines() if line.strip()]


class Gateways:
    """Starts gateways and removes every one of them after."""

    def __init__(self, testbed: Testbed) -> None:
        self.testbed = testbed
        self.containers: list[Container] = []

    def create(self, environment: Mapping[str, str], **overrides: Any) -> Gateway:
        """A created, not yet started gateway on both networks; `alias` names it in the sandbox."""
        bed = self.testbed
        alias = f"gw-{uuid.uuid4().hex[:8]}"
        settings = {**GATEWAY_SETTINGS, **overrides}
        container = bed.client.containers.create(
            bed.gateway_image,
            name=f"{bed.prefix}-{alias}",
            environment=dict(environment),
            labels=dict(bed.labels),
            network=bed.outside.name,
            **settings,
        )
        self.containers.append(container)
        bed.sandbox.connect(container, aliases=[alias])
        return Gateway(container, alias)

    def start(self, environment: Mapping[str, str], **overrides: Any) -> Gateway:
        """A running gateway, returned once its health check passes."""
        gateway = self.create(environment, **overrides)
        gateway.container.start()
        wait_healthy(gateway.container)
        return gateway

    def run_to_exit(self, environment: Mapping[str, str], **overrides: Any) -> Exited:
        """Start a gateway that is expected to refuse its configuration; its code and logs."""
        gateway = self.create(environment, **overrides)
        gateway.container.start()
        return Exited(wait_exit(gateway.container), gateway.logs())

    def remove_all(self) -> None:
        for container in self.containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def wait_healthy(container: Container, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        state = container.attrs["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return
        if container.status in {"exited", "dead"} or time.monotonic() > deadline:
            raise AssertionError(
                f"{container.name} not healthy within {timeout}s: {json.dumps(state)}\n"
                f"--- docker logs ---\n{logs_of(container)}"
            )
        time.sleep(0.1)


def wait_exit(container: Container, timeout: float = EXIT_TIMEOUT) -> int:
    """The exit code, once the container ends (Docker's wait, bounded by TIMEOUT)."""
    try:
        return int(container.wait(timeout=timeout)["StatusCode"])
    except requests.exceptions.RequestException as exc:
        raise AssertionError(
            f"{container.name} still running after {timeout}s ({exc})\n"
            f"--- docker logs ---\n{logs_of(container)}"
        ) from exc


@dataclass
class Reply:
    """What curl saw: the HTTP status (0 when none), the proxy's CONNECT status, the body."""

    exit_code: int
    status: int
    connect_status: int
    body: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.body)

    def __str__(self) -> str:
        return (
            f"curl exit {self.exit_code}, status {self.status}, CONNECT {self.connect_status}\n"
            f"--- body ---\n{self.body}\n--- stderr ---\n{self.stderr}"
        )


class Probe(Sandbox):
    """A container from the agent image that makes requests with curl (and python3)."""

    def curl(self, *args: str, timeout: float = 30) -> Reply:
        marker = "\n@@agentgate-curl@@ "
        argv = [
            "curl", "-sS", "--max-time", str(int(timeout) - 5),
            "-w", marker + "%{http_code} %{http_connect}", *args,
        ]  # fmt: skip
        code, out, err, _ = self.exec(argv, timeout=timeout)
        body, _, codes = out.rpartition(marker)
        status, _, connect = codes.partition(" ")
        return Reply(code, int(status or 0), int(connect or 0), body, err)

    def python(self, script: str, *args: str, timeout: float = 60) -> str:
        code, out, err, _ = self.exec(["python3", "-c", script, *args], timeout=timeout)
        assert code == 0, f"python3 in {self.name} exited {code}\n{out}\n{err}"
        return out


def start_probe(testbed: Testbed, network: Network) -> Probe:
    """A keep-alive probe on NETWORK, unprivileged and read-only like everything here."""
    container = testbed.client.containers.run(
        testbed.agent_image,
        ["sleep", "infinity"],
        entrypoint=[],
        detach=True,
        name=f"{testbed.prefix}-probe-{uuid.uuid4().hex[:6]}",
        user="65534:65534",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        network=network.name,
        labels=dict(testbed.labels),
        healthcheck={"test": ["NONE"]},
    )
    return Probe(container)


class Origin:
    """A running origin_server.py; `requests()` is what it has seen, read from the host."""

    def __init__(self, container: Container, control_ip: str) -> None:
        self.container = container
        self.control_ip = control_ip

    def requests(self) -> list[dict[str, Any]]:
        url = f"http://{self.control_ip}:8080/__requests"
        with urllib.request.urlopen(url, timeout=10) as response:
            return list(json.loads(response.read())["requests"])

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until it accepts connections (it binds every port before serving any)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((self.control_ip, 8080), timeout=1).close()
                return
            except OSError as exc:
                self.container.reload()
                if self.container.status != "running" or time.monotonic() > deadline:
                    raise AssertionError(
                        f"origin {self.container.name} not serving within {timeout}s ({exc})\n"
                        f"--- docker logs ---\n{logs_of(self.container)}"
                    ) from exc
                time.sleep(0.1)


def secret_mount(path: Path) -> dict[str, dict[str, str]]:
    """PATH mounted read-only where compose mounts a secret named anthropic_api_key."""
    return {str(path): {"bind": SECRET_TARGET, "mode": "ro"}}


class Origins:
    """Starts origin servers on the outside network (plus control) and removes them after."""

    def __init__(self, testbed: Testbed) -> None:
        self.testbed = testbed
        self.started: list[Origin] = []

    def start(
        self, name: str, aliases: tuple[str, ...], *, tls: Mapping[str, str] | None = None
    ) -> Origin:
        """Origin NAME answering under ALIASES on ORIGIN_PORTS (HTTPS with TLS's PEM env)."""
        bed = self.testbed
        container = start_script_container(
            bed.client,
            bed.agent_image,
            ORIGIN,
            [name, *(["--tls"] if tls else []), *map(str, ORIGIN_PORTS)],
            name=f"{bed.prefix}-origin-{name}-{uuid.uuid4().hex[:6]}",
            networks={bed.outside: aliases, bed.control: ()},
            labels=bed.labels,
            environment=dict(tls or {}),
            tmpfs={"/tmp": "size=1m"},
        )
        origin = Origin(container, address_on(container, bed.control))
        self.started.append(origin)
        origin.wait_ready()
        return origin

    def remove_all(self) -> None:
        for origin in self.started:
            with contextlib.suppress(docker.errors.NotFound):
                origin.container.remove(force=True)
