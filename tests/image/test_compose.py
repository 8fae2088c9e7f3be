"""docker-compose.yml validates with the Docker Compose CLI (the project coming up healthy and
contained by the gateway is tests/e2e/test_compose_sandbox.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

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
