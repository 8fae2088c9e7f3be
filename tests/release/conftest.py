"""Fixtures for end-to-end releases: a temp git repo with a bare origin, a local registry.

Helpers live in releasekit.py. These tests need a Docker engine with buildx and the
base-image mirror (see scripts/); without one they skip, which fails under nox
(AGENTGATE_NO_SKIPS). Run: `pytest tests/release` (minutes: real builds and releases).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from releasekit import ROOT, LocalRegistry, ReleaseRepo, make_release_repo, remove_local_images

from agentimage import proc
from agentimage.errors import AgentImageError

sys.path.insert(0, str(ROOT / "tests" / "unit"))  # shared helpers: the loopback npm registry
from cli_helpers import fake_npm_registry


def _docker_missing() -> str:
    """Why the release tests cannot run here, or '' when a Docker engine answers."""
    try:
        info = proc.run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20)
    except AgentImageError as exc:
        return exc.message
    return "" if info.ok and info.stdout.strip() else f"docker info: {info.detail}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    mine = [item for item in items if here in Path(str(item.fspath)).parents]
    if not mine:
        return
    missing = _docker_missing()
    for item in mine:
        item.add_marker(pytest.mark.slow)
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"needs a running Docker engine ({missing})"))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway registry on a free loopback port, stopped at the end: 'HOST:PORT'."""
    shared = LocalRegistry(tmp_path_factory.mktemp("registry"))
    shared.start()
    try:
        yield shared.address
    finally:
        shared.kill()


@pytest.fixture(scope="session")
def npm_registry() -> Iterator[str]:
    """The CLI-version check asks this loopback npm registry, not the public one."""
    with fake_npm_registry() as url:
        yield url


@pytest.fixture
def release_repo(tmp_path: Path, registry: str, npm_registry: str) -> Iterator[ReleaseRepo]:
    repo = make_release_repo(tmp_path, registry, npm_registry)
    yield repo
    remove_local_images(registry, repo.image)


@pytest.fixture
def private_registry(tmp_path: Path) -> Iterator[Callable[..., LocalRegistry]]:
    """Start registries only this test uses (to kill, restart or lock down); all stopped after."""
    started: list[LocalRegistry] = []

    def start(
        name: str = "private", extra_config: str = "", storage_config: str = ""
    ) -> LocalRegistry:
        registry = LocalRegistry(
            tmp_path / name, extra_config=extra_config, storage_config=storage_config
        )
        registry.start()
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.kill()
