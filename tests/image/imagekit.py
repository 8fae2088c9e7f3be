"""Helpers for the image tests (imported by conftest.py and the test modules).

Every test owns its containers (unique names, force-removed at teardown even on failure),
every wait has a monotonic deadline and puts `docker logs` in its failure message, and every
exec is wrapped in coreutils `timeout` inside the container.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from docker.models.containers import Container
from sandbox import SANDBOX_SETTINGS

import docker

AGENT_UID = 1000
EXEC_TIMEOUT = 60
RUN_TIMEOUT = 60

# The hardened profile (tests/support/sandbox.py, the README's recipe) with no network at all:
# the image tests need none. The user is left to each test (the image's default is 1000:1000).
HARDENED: dict[str, Any] = {
    **{key: value for key, value in SANDBOX_SETTINGS.items() if key != "user"},
    "network_mode": "none",
}


def logs_of(container: Container) -> str:
    try:
        return container.logs(stdout=True, stderr=True).decode(errors="replace")
    except docker.errors.APIError as exc:
        return f"<no logs: {exc}>"


@dataclass
class Exited:
    code: int
    stdout: str
    stderr: str
    container_name: str

    @property
    def logs(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (
            f"container {self.container_name} exited {self.code}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


class Containers:
    """Starts containers for one test and removes every one of them at teardown."""

    def __init__(self, client: docker.DockerClient, image_ref: str, test_name: str) -> None:
        self.client = client
        self.image_ref = image_ref
        self.prefix = "agt-test-" + "".join(c if c.isalnum() else "-" for c in test_name)[:40]
        self.names: list[str] = []

    def _name(self) -> str:
        name = f"{self.prefix}-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        return name

    def start(self, command: Any = None, **kwargs: Any) -> Container:
        """A detached container; removed at teardown."""
        kwargs.setdefault("name", self._name())
        return self.client.containers.run(self.image_ref, command, detach=True, **kwargs)

    def run(self, command: Any = None, *, timeout: float = RUN_TIMEOUT, **kwargs: Any) -> Exited:
        """Run to completion within TIMEOUT seconds; stdout and stderr kept apart."""
        container = self.start(command, **kwargs)
        code = wait_exit(container, timeout)
        stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
        stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
        return Exited(code, stdout, stderr, container.name)

    def remove_all(self) -> None:
        for name in self.names:
            # NotFound: auto_remove got there first, or the container was never created.
            with contextlib.suppress(docker.errors.NotFound):
                self.client.containers.get(name).remove(force=True, v=True)


def wait_exit(container: Container, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        if container.status in {"exited", "dead"}:
            return int(container.attrs["State"]["ExitCode"])
        if time.monotonic() > deadline:
            pytest.fail(
                f"{container.name} still {container.status} after {timeout}s\n"
                f"--- docker logs ---\n{logs_of(container)}"
            )
        time.sleep(0.1)


def wait_for(
    container: Container,
    predicate: Callable[[dict], bool],
    timeout: float,
    what: str,
) -> dict:
    """Poll `docker inspect` until PREDICATE(attrs) holds; fail with the logs otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        attrs = container.attrs
        if predicate(attrs):
            return attrs
        if time.monotonic() > deadline:
            pytest.fail(
                f"{container.name}: not {what} within {timeout}s; state "
                f"{attrs['State']}\n--- docker logs ---\n{logs_of(container)}"
            )
        time.sleep(0.1)


# Deadlines bound how long a failure takes to show, on a host busy with other builds; the
# states themselves arrive in about a second on an idle one.
WAIT_TIMEOUT = 60


def wait_running(container: Container, timeout: float = WAIT_TIMEOUT) -> None:
    wait_for(container, lambda a: a["State"]["Status"] == "running", timeout, "running")


def wait_healthy(container: Container, timeout: float = WAIT_TIMEOUT) -> dict:
    """Until Docker reports the container healthy: the entrypoint has finished (its ready
    marker names the running workload) and the checks pass. Waiting for "running" is not
    enough: the entrypoint may still be preparing HOME when the first exec arrives."""
    return wait_for(container, lambda a: health_status(a) == "healthy", timeout, "healthy")


def health_status(attrs: dict) -> str | None:
    return (attrs["State"].get("Health") or {}).get("Status")


def health_outputs(attrs: dict) -> list[str]:
    return [
        entry.get("Output", "") for entry in (attrs["State"].get("Health") or {}).get("Log") or []
    ]


def exec_in(
    container: Container,
    script: str,
    *,
    user: str = "",
    timeout: int = EXEC_TIMEOUT,
    workdir: str | None = None,
) -> tuple[int, str]:
    """Run a bash script in a running container, bounded by `timeout` inside it."""
    argv = ["timeout", "-k", "5", str(timeout), "bash", "-c", script]
    code, output = container.exec_run(argv, user=user, workdir=workdir, demux=False)
    text = output.decode(errors="replace") if output else ""
    if code == 124:
        pytest.fail(
            f"exec timed out after {timeout}s in {container.name}: {shlex.join(argv)}\n"
            f"{text}\n--- docker logs ---\n{logs_of(container)}"
        )
    return code, text


def owned_path(path: Path, uid: int = AGENT_UID, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    elif os.geteuid() != uid:
        path.chmod(0o777)  # cannot chown without root: let any uid write instead
    return path


def bind(host: Path, target: str = "/workspace", mode: str = "rw") -> dict[str, dict[str, str]]:
    return {str(host): {"bind": target, "mode": mode}}
