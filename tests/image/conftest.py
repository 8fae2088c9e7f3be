"""Fixtures for the image tests: the image under test comes from AGENT_IMAGE, never a build.

Helpers live in imagekit.py: test modules import them from there, not from conftest (with
several conftest.py files in one run, `from conftest import` finds the wrong one).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from docker.models.images import Image
from imagekit import AGENT_UID, Containers, owned_path

import docker
from agentimage import lines
from benchmarks import layers


@pytest.fixture(scope="session")
def client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker Engine reachable ({exc}); start dockerd or set DOCKER_HOST")
    yield client
    client.close()


@pytest.fixture(scope="session")
def image(client: docker.DockerClient) -> Image:
    ref = os.environ.get("AGENT_IMAGE")
    if not ref:
        pytest.fail(
            "AGENT_IMAGE is not set: build the image (`invoke build`) and run "
            "AGENT_IMAGE=agentgate/agent:dev pytest tests/image (or `nox -s image`)"
        )
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        pytest.fail(f"AGENT_IMAGE={ref} is not in the local image store; build or load it first")


@pytest.fixture(scope="session")
def image_ref(image: Image) -> str:
    return os.environ["AGENT_IMAGE"]


@pytest.fixture(scope="session")
def node_line() -> str:
    """The Node line the image under test was built for: AGENT_NODE_LINE (nox and the
    release set it), else the Dockerfile's default line."""
    known = lines.read()
    line = os.environ.get("AGENT_NODE_LINE") or known.default
    if line not in known.pins:
        pytest.fail(f"AGENT_NODE_LINE={line} is not a line of the Dockerfile ({known.names})")
    return line


@pytest.fixture(scope="session")
def saved_image(image_ref: str, tmp_path_factory: pytest.TempPathFactory) -> layers.Image:
    """Every layer of the image under test, read once from `docker image save` (files of
    1 MiB or more with their content digest); the archive is deleted once read."""
    archive = layers.save_image(image_ref, tmp_path_factory.mktemp("image-save") / "image.tar")
    try:
        return layers.read_archive(archive, hash_min_size=layers.MIB)
    finally:
        archive.unlink()


@pytest.fixture
def containers(
    client: docker.DockerClient, image_ref: str, request: pytest.FixtureRequest
) -> Iterator[Containers]:
    owned = Containers(client, image_ref, request.node.name)
    try:
        yield owned
    finally:
        owned.remove_all()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A host dir owned by 1000:1000 for the /workspace bind mount."""
    return owned_path(tmp_path / "workspace")


@pytest.fixture
def owned_dir(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a host dir below tmp_path owned by a given uid."""

    def make(name: str, uid: int = AGENT_UID, mode: int = 0o755) -> Path:
        if os.geteuid() != 0 and uid != os.geteuid():
            pytest.skip(f"creating a dir owned by uid {uid} needs root")
        return owned_path(tmp_path / name, uid, mode)

    return make
