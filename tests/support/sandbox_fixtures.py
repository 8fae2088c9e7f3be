"""Fixtures for suites that run real agent sandboxes (tests/e2e, tests/security): the image
under test, a network the sandbox cannot leave, the Messages API double on it, and hardened
sandboxes that each test owns. A suite's conftest.py imports them all.

Everything created carries the label io.agentgate.test=<run id> and is removed at teardown;
the session ends by checking that nothing with that label is left.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_double import ALIAS, ApiDouble, start_api_double
from docker.models.networks import Network
from sandbox import AGENT_UID, TEST_LABEL, Sandboxes, create_sandbox_network

import docker

# What the sandbox presents as its API key: the double accepts any key unless a test names
# the one it expects. Bounded retries keep a failing turn from backing off for minutes (the
# CLI retries 401 and 5xx ten times by default, about three minutes).
SANDBOX_KEY = "sk-ant-e2e-" + uuid.uuid4().hex
SANDBOX_MAX_RETRIES = "2"


@pytest.fixture(scope="session")
def client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker Engine reachable ({exc}); start dockerd or set DOCKER_HOST")
    yield client
    client.close()


def image_from_env(client: docker.DockerClient, variable: str, how: str) -> str:
    """The image VARIABLE names, which must be in the local image store (HOW says how to set
    it); a missing one fails the run, never skips it."""
    ref = os.environ.get(variable)
    if not ref:
        pytest.fail(f"{variable} is not set: {how}")
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{variable}={ref} is not in the local image store; build or load it first")
    return ref


@pytest.fixture(scope="session")
def image_ref(client: docker.DockerClient) -> str:
    return image_from_env(client, "AGENT_IMAGE", "run `nox -s e2e`, or build and set AGENT_IMAGE")


@pytest.fixture(scope="session")
def gateway_image(client: docker.DockerClient) -> str:
    how = "run `nox -s gateway` (or e2e, security), or build docker/Dockerfile.gateway and set it"
    return image_from_env(client, "GATEWAY_IMAGE", how)


@pytest.fixture(scope="session")
def run_id() -> str:
    return "e2e-" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def labels(run_id: str) -> dict[str, str]:
    return {TEST_LABEL: run_id}


@pytest.fixture(scope="session")
def sandbox_network(
    client: docker.DockerClient, run_id: str, labels: dict[str, str]
) -> Iterator[Network]:
    network = create_sandbox_network(client, f"agt-{run_id}-sandbox", labels)
    yield network
    network.remove()
    leftovers = [
        *(
            c.name
            for c in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={run_id}"})
        ),
        *(n.name for n in client.networks.list(filters={"label": f"{TEST_LABEL}={run_id}"})),
        *(v.name for v in client.volumes.list(filters={"label": f"{TEST_LABEL}={run_id}"})),
    ]
    assert not leftovers, f"the e2e run left these behind: {leftovers}"


@pytest.fixture(scope="session")
def control_network(
    client: docker.DockerClient, run_id: str, labels: dict[str, str], sandbox_network: Network
) -> Iterator[Network]:
    """Where the test runner reaches the double's control port; no sandbox ever joins it."""
    network = client.networks.create(f"agt-{run_id}-control", driver="bridge", labels=labels)
    yield network
    network.remove()


@pytest.fixture(scope="session")
def api_double_networks(sandbox_network: Network) -> dict[Network, list[str]]:
    """Where the double answers, with its DNS aliases: on the sandbox's own network. A suite
    whose sandboxes reach the API only through a gateway overrides this (tests/gateway)."""
    return {sandbox_network: [ALIAS]}


@pytest.fixture(scope="session")
def api_double(
    client: docker.DockerClient,
    image_ref: str,
    run_id: str,
    labels: dict[str, str],
    api_double_networks: dict[Network, list[str]],
    control_network: Network,
) -> Iterator[ApiDouble]:
    double = start_api_double(
        client,
        image_ref,
        name=f"agt-{run_id}-api-double",
        networks=api_double_networks,
        control=control_network,
        labels=labels,
    )
    yield double
    double.container.remove(force=True)


@pytest.fixture
def double(api_double: ApiDouble) -> ApiDouble:
    """The session's double with an empty script: each test loads its own."""
    api_double.play()
    return api_double


@pytest.fixture(scope="session")
def sandbox_key() -> str:
    return SANDBOX_KEY


@pytest.fixture
def sandbox_env(double: ApiDouble, sandbox_key: str) -> dict[str, str]:
    """What the operator gives each sandbox: where the API is, and a key."""
    return {
        "ANTHROPIC_BASE_URL": double.url,
        "ANTHROPIC_API_KEY": sandbox_key,
        "CLAUDE_CODE_MAX_RETRIES": SANDBOX_MAX_RETRIES,
    }


@pytest.fixture
def sandboxes(
    client: docker.DockerClient,
    image_ref: str,
    sandbox_network: Network,
    sandbox_env: dict[str, str],
    labels: dict[str, str],
    request: pytest.FixtureRequest,
) -> Iterator[Sandboxes]:
    slug = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    box = Sandboxes(client, image_ref, sandbox_network, sandbox_env, labels, f"agt-e2e-{slug}")
    try:
        yield box
    finally:
        box.remove_all()


@pytest.fixture
def make_workspace(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a host directory for /workspace owned by UID (files in it too)."""

    def make(name: str = "workspace", uid: int = AGENT_UID, files: dict[str, str] | None = None):
        path = tmp_path / name
        path.mkdir()
        for rel, content in (files or {}).items():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            (path / rel).write_text(content)
        for item in [path, *path.rglob("*")]:
            os.lchown(item, uid, uid)
        return path

    if os.geteuid() != 0:
        pytest.fail("the e2e tests create workspaces owned by other uids: run them as root")
    return make


@pytest.fixture
def workspace(make_workspace: Callable[..., Path]) -> Path:
    return make_workspace()


@pytest.fixture(scope="session")
def attacker_double(
    client: docker.DockerClient,
    image_ref: str,
    run_id: str,
    labels: dict[str, str],
    sandbox_network: Network,
    control_network: Network,
) -> Iterator[ApiDouble]:
    """A second Messages API endpoint where a hostile repository would send the key: it
    sits on the sandbox's own network (the best case for the attacker) as attacker.example."""
    double = start_api_double(
        client,
        image_ref,
        name=f"agt-{run_id}-attacker",
        networks={sandbox_network: ["attacker.example"]},
        control=control_network,
        labels=labels,
    )
    yield double
    double.container.remove(force=True)


@pytest.fixture
def attacker(attacker_double: ApiDouble) -> ApiDouble:
    attacker_double.play()
    return attacker_double
