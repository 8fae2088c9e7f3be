"""docker-compose.yml: it validates, and its hardened `agent` service comes up healthy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from imagekit import health_status

import docker

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("docker") is None, reason="the docker CLI (with compose) is not installed"
    ),
]


def _compose(project: str, env: dict[str, str], *args: str, timeout: float = 60):
    argv = ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", project, *args]
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def compose_env(image_ref: str, workspace: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        **{k: v for k, v in os.environ.items() if k.startswith("DOCKER_")},
        "AGENT_IMAGE": image_ref,
        "AGENT_WORKSPACE_DIR": str(workspace),
    }


def test_compose_config_validates(compose_env: dict[str, str]) -> None:
    result = _compose("agt-test-config", compose_env, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert "agent" in config["services"]
    assert config["services"]["agent"]["read_only"] is True


def test_compose_agent_comes_up_healthy(
    compose_env: dict[str, str], client: docker.DockerClient
) -> None:
    project = f"agt-test-{uuid.uuid4().hex[:8]}"
    try:
        up = _compose(project, compose_env, "up", "-d", "agent")
        assert up.returncode == 0, up.stderr
        ps = _compose(project, compose_env, "ps", "-q", "agent")
        container = client.containers.get(ps.stdout.strip())
        deadline = time.monotonic() + 10
        while health_status(container.attrs) != "healthy":
            if time.monotonic() > deadline:
                logs = container.logs().decode(errors="replace")
                pytest.fail(
                    f"compose agent not healthy in 10 s: {container.attrs['State']}\n{logs}"
                )
            time.sleep(0.2)
            container.reload()
        host = container.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert container.attrs["Config"]["User"] == "1000:1000"
    finally:
        down = _compose(project, compose_env, "down", "-v", "--timeout", "5")
        assert down.returncode == 0, down.stderr
