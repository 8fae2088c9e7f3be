"""Checks that run before anything is built: each failure is one line with the fix."""

from __future__ import annotations

import json
import shutil
import subprocess

from agentimage.errors import AgentImageError, ExitCode
from agentimage.registry import Registry

TIMEOUT = 20


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], text=True, capture_output=True, check=False, timeout=TIMEOUT
    )


def docker_client() -> str:
    path = shutil.which("docker")
    if not path:
        raise AgentImageError(
            "docker client not found on PATH; "
            "install docker-cli (see scripts/provision-docker-engine.sh)",
            ExitCode.ENVIRONMENT,
        )
    return path


def docker_engine() -> dict[str, object]:
    """`docker info` as a dict; raises when the engine does not answer."""
    docker_client()
    try:
        result = _docker("info", "--format", "{{json .}}")
    except subprocess.TimeoutExpired as exc:
        raise AgentImageError(
            f"Docker engine did not answer within {TIMEOUT} s; check dockerd", ExitCode.ENVIRONMENT
        ) from exc
    info: dict[str, object] = {}
    if result.returncode == 0:
        try:
            info = json.loads(result.stdout)
        except ValueError:
            info = {}
    server_errors = info.get("ServerErrors") if info else None
    if result.returncode != 0 or not info or server_errors or not info.get("ServerVersion"):
        raise AgentImageError(
            "Docker engine not reachable (is dockerd running and DOCKER_HOST right?); "
            "start it with scripts/provision-docker-engine.sh",
            ExitCode.ENVIRONMENT,
        )
    return info


def containerd_store(info: dict[str, object]) -> bool:
    """True when the engine uses the containerd image store (it can hold multi-platform images)."""
    status = info.get("DriverStatus") or []
    text = json.dumps(status) + str(info.get("Driver", ""))
    return "io.containerd.snapshotter" in text


def buildx(builder: str = "") -> None:
    result = _docker("buildx", "version")
    if result.returncode != 0:
        raise AgentImageError(
            "docker buildx is missing; install docker-buildx (the build needs BuildKit secrets)",
            ExitCode.ENVIRONMENT,
        )
    if builder:
        inspect = _docker("buildx", "inspect", builder)
        if inspect.returncode != 0:
            raise AgentImageError(
                f"buildx builder {builder!r} does not exist; list builders with docker buildx ls",
                ExitCode.ENVIRONMENT,
            )


def multi_platform_load(platforms: tuple[str, ...], info: dict[str, object]) -> None:
    if len(platforms) > 1 and not containerd_store(info):
        raise AgentImageError(
            "loading a multi-platform image needs the containerd image store; enable "
            '"containerd-snapshotter" in /etc/docker/daemon.json or use invoke buildx --push',
            ExitCode.ENVIRONMENT,
        )


def registry(host: str, *, need_push: bool = True) -> Registry:
    client = Registry(host)
    client.ping(need_push=need_push)
    return client


def build_environment(
    builder: str = "", platforms: tuple[str, ...] = (), load: bool = True
) -> dict[str, object]:
    """Client, engine, buildx (and the builder), then the load-store check."""
    docker_client()
    info = docker_engine()
    buildx(builder)
    if load:
        multi_platform_load(platforms, info)
    return info
