"""Agent sandboxes as AgentGate runs them: hardened containers on a network they cannot leave.

SANDBOX_SETTINGS is the docker SDK form of the README's hardened `docker run` recipe and the
compose `agent` service (tests/unit/test_static_invariants.py keeps the three in step). A
Sandbox is a keep-alive container; `turn()` runs one `claude -p` in it with `docker exec`,
the way the AgentGate server does.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from docker.models.containers import Container
from docker.models.networks import Network

import docker

AGENT_UID = 1000
TEST_LABEL = "io.agentgate.test"
TURN_TIMEOUT = 120

# The hardened run: read-only root, no capabilities, no privilege escalation, only the
# workspace and two size-bounded tmpfs mounts writable, bounded processes and memory.
SANDBOX_SETTINGS: dict[str, Any] = {
    "user": f"{AGENT_UID}:{AGENT_UID}",
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "tmpfs": {
        "/tmp": "size=256m",
        "/home/agentgate": f"size=64m,uid={AGENT_UID},gid={AGENT_UID}",
    },
    "pids_limit": 256,
    "mem_limit": "1g",
}

# The gateway's own hardened run: read-only root, no capabilities, /tmp the only writable path.
GATEWAY_SETTINGS: dict[str, Any] = {
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "tmpfs": {"/tmp": "size=64m"},
    "pids_limit": 128,
    "mem_limit": "512m",
}

# How a sandbox is wired to a gateway reachable as GATEWAY: the model API through its :8080
# (the placeholder key is replaced there), everything else through its allowlisting :3128,
# and the gateway itself exempt from the proxy. docker-compose.yml says the same.
PLACEHOLDER_KEY = "placeholder-the-gateway-injects-the-real-key"


def gateway_wiring(gateway: str = "gateway") -> dict[str, str]:
    proxy = f"http://{gateway}:3128"
    return {
        "ANTHROPIC_BASE_URL": f"http://{gateway}:8080",
        "ANTHROPIC_API_KEY": PLACEHOLDER_KEY,
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "http_proxy": proxy,
        "https_proxy": proxy,
        "NO_PROXY": gateway,
        "no_proxy": gateway,
    }


_FLAGS = {
    "user": "--user",
    "cap_drop": "--cap-drop",
    "security_opt": "--security-opt",
    "pids_limit": "--pids-limit",
    "mem_limit": "--memory",
}


def docker_run_flags(settings: dict[str, Any]) -> list[str]:
    """SETTINGS as `docker run` flags: what the README's recipe must say."""
    flags: list[str] = []
    for key, value in settings.items():
        if key == "read_only":
            flags += ["--read-only"] if value else []
        elif key == "tmpfs":
            for target, options in value.items():
                flags += ["--tmpfs", f"{target}:{options}" if options else target]
        else:
            for item in value if isinstance(value, list) else [value]:
                flags += [_FLAGS[key], str(item)]
    return flags


# A bridge network with no way out: `internal` removes the route to the world, and
# inhibit_ipv4 leaves the host's side of the bridge without an address, so the sandbox
# cannot reach services listening on the host either (an internal network alone allows that).
SANDBOX_NETWORK_OPTIONS = {"com.docker.network.bridge.inhibit_ipv4": "true"}


def create_sandbox_network(
    client: docker.DockerClient, name: str, labels: Mapping[str, str]
) -> Network:
    return client.networks.create(
        name, driver="bridge", internal=True, options=SANDBOX_NETWORK_OPTIONS, labels=dict(labels)
    )


@dataclass
class Turn:
    """One `claude -p` run: exit code, both streams, and the parsed JSON result if any."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Judged as the CLI documents it: is_error and permission_denials, not the subtype."""
        return (
            self.code == 0
            and self.result.get("is_error") is False
            and not self.result.get("permission_denials")
        )

    def __str__(self) -> str:
        return (
            f"claude exited {self.code} after {self.seconds:.2f}s\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def logs_of(container: Container) -> str:
    try:
        return container.logs(stdout=True, stderr=True).decode(errors="replace")
    except docker.errors.APIError as exc:
        return f"<no logs: {exc}>"


class Sandbox:
    """A running keep-alive agent container."""

    def __init__(self, container: Container) -> None:
        self.container = container

    @property
    def name(self) -> str:
        return str(self.container.name)

    def exec(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        user: str = "",
        timeout: float = TURN_TIMEOUT,
    ) -> tuple[int, str, str, float]:
        """Run ARGV with a time limit enforced inside the container; (code, out, err, s)."""
        bounded = ["timeout", "-k", "5", str(int(timeout)), *argv]
        started = time.monotonic()
        code, (out, err) = self.container.exec_run(
            bounded, environment=dict(env or {}), user=user, demux=True
        )
        seconds = time.monotonic() - started
        stdout = (out or b"").decode(errors="replace")
        stderr = (err or b"").decode(errors="replace")
        if code == 124:
            raise AssertionError(
                f"{shlex.join(argv)} timed out after {timeout}s in {self.name}\n{stdout}\n"
                f"{stderr}\n--- docker logs ---\n{logs_of(self.container)}"
            )
        return int(code), stdout, stderr, seconds

    def turn(
        self,
        prompt: str,
        *flags: str,
        output: str = "json",
        env: Mapping[str, str] | None = None,
        user: str = "",
        timeout: float = TURN_TIMEOUT,
    ) -> Turn:
        """One agent turn, `claude -p PROMPT --output-format OUTPUT FLAGS...`."""
        argv = ["claude", "-p", prompt, "--output-format", output, *flags]
        code, stdout, stderr, seconds = self.exec(argv, env=env, user=user, timeout=timeout)
        turn = Turn(code, stdout, stderr, seconds)
        if output == "json" and stdout.strip():
            try:
                turn.result = json.loads(stdout)
            except ValueError:
                turn.result = {}
        return turn


class Sandboxes:
    """Starts sandboxes for one test and removes every one of them (and its volumes) after."""

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        network: Network,
        env: Mapping[str, str],
        labels: Mapping[str, str],
        prefix: str,
    ) -> None:
        self.client = client
        self.image = image
        self.network = network
        self.env = dict(env)
        self.labels = dict(labels)
        self.prefix = prefix
        self.containers: list[Container] = []
        self.volumes: list[str] = []

    def volume(self) -> str:
        """A named volume, removed after the containers that use it."""
        name = f"{self.prefix}-{uuid.uuid4().hex[:8]}"
        self.client.volumes.create(name, labels=self.labels)
        self.volumes.append(name)
        return name

    def start(self, workspace: str, *, wait: bool = True, **overrides: Any) -> Sandbox:
        """A hardened keep-alive sandbox with WORKSPACE (a host path) at /workspace."""
        settings: dict[str, Any] = {**SANDBOX_SETTINGS, **overrides}
        environment = {**self.env, **settings.pop("environment", {})}
        volumes = {workspace: {"bind": "/workspace", "mode": "rw"}, **settings.pop("volumes", {})}
        # A sandbox with no network at all (network_mode="none") joins no network.
        network = {} if "network_mode" in settings else {"network": self.network.name}
        container = self.client.containers.run(
            self.image,
            settings.pop("command", None),
            detach=True,
            name=f"{self.prefix}-{uuid.uuid4().hex[:8]}",
            **network,
            environment=environment,
            volumes=volumes,
            labels=self.labels,
            **settings,
        )
        self.containers.append(container)
        sandbox = Sandbox(container)
        if wait:
            wait_until_ready(container)
        return sandbox

    def run(
        self, workspace: str, command: Sequence[str], *, timeout: float = 60, **overrides: Any
    ) -> tuple[int, str, str]:
        """Run COMMAND to completion in a sandbox: (exit code, stdout, stderr)."""
        sandbox = self.start(workspace, wait=False, command=list(command), **overrides)
        try:
            code = sandbox.container.wait(timeout=timeout)["StatusCode"]
        except Exception as exc:  # requests' ReadTimeout: the container still runs
            raise AssertionError(
                f"{sandbox.name} still running after {timeout}s\n{logs_of(sandbox.container)}"
            ) from exc
        out = sandbox.container.logs(stdout=True, stderr=False).decode(errors="replace")
        err = sandbox.container.logs(stdout=False, stderr=True).decode(errors="replace")
        return int(code), out, err

    def remove_all(self) -> None:
        for container in self.containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        for name in self.volumes:
            self.client.volumes.get(name).remove(force=True)


def wait_until_ready(container: Container, timeout: float = 30, poll: float = 0.1) -> None:
    """Until the image's own health check passes when run now: the entrypoint has handed
    over to the workload (its ready marker names it) and the sandbox works. Running it with
    exec sees that at once; Docker's next scheduled check may be up to a second away."""
    deadline = time.monotonic() + timeout
    output = b""
    while True:
        container.reload()
        if container.status == "running":
            code, output = container.exec_run(["agent-healthcheck.sh"])
            if code == 0:
                return
        if container.status in {"exited", "dead"} or time.monotonic() > deadline:
            raise AssertionError(
                f"{container.name} not ready within {timeout}s: {container.attrs['State']}\n"
                f"health check: {output.decode(errors='replace')}\n"
                f"--- docker logs ---\n{logs_of(container)}"
            )
        time.sleep(poll)
