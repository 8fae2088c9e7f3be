"""Fixtures for the gateway tests: the gateway image under test, the networks around it, the
Messages API double and test origins behind it, and probes in front of it.

    sandbox network (internal, no host address)     outside network (internal as well)
    probes, agent sandboxes  --->  gateway  --->  API double, origins, outside probe
                                                  control network: the test runner reads
                                                  the double's and origins' logs

The outside network is internal too, so no test can send traffic off this machine even when
a deny rule fails. Everything created carries the label io.agentgate.test=<run id> and is
removed at teardown; the session ends by checking that nothing with that label is left. The
fixtures shared with the sandbox suites (Docker client, AGENT_IMAGE, labels, the sandbox and
control networks, workspaces) come from tests/support/sandbox_fixtures.py. GATEWAY_IMAGE
names the image under test; AGENT_IMAGE is the agent image whose curl and python3 the probes,
the double and the origins use (`nox -s gateway` sets both).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_double import ALIAS, ApiDouble
from docker.models.networks import Network
from gatewaykit import (
    ALLOWED,
    ALLOWED_DOMAINS,
    FORBIDDEN,
    GATEWAY_UID,
    REAL_KEY,
    REBOUND,
    SECRET_TARGET,
    UPSTREAM_ALIAS,
    Gateway,
    Gateways,
    Origin,
    Origins,
    Probe,
    Testbed,
    secret_mount,
    start_probe,
)

# client, image_ref (AGENT_IMAGE), gateway_image (GATEWAY_IMAGE), labels, sandbox_network,
# control_network, double, make_workspace; run_id and api_double_networks are redefined below.
from sandbox_fixtures import *  # noqa: F403

import docker


@pytest.fixture(scope="session")
def run_id() -> str:
    return "gw-" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def outside_network(
    client: docker.DockerClient, run_id: str, labels: dict[str, str], sandbox_network: Network
) -> Iterator[Network]:
    """Where the upstream and the origins live; internal, so nothing leaves this machine."""
    name = f"agt-{run_id}-outside"
    network = client.networks.create(name, driver="bridge", internal=True, labels=labels)
    yield network
    network.remove()


@pytest.fixture(scope="session")
def api_double_networks(outside_network: Network) -> dict[Network, list[str]]:
    """The double sits behind the gateway, where the sandbox cannot reach it."""
    return {outside_network: [ALIAS]}


@pytest.fixture(scope="session")
def testbed(
    client: docker.DockerClient,
    image_ref: str,
    gateway_image: str,
    run_id: str,
    labels: dict[str, str],
    sandbox_network: Network,
    outside_network: Network,
    control_network: Network,
) -> Testbed:
    return Testbed(
        client, image_ref, gateway_image, sandbox_network, outside_network, control_network,
        labels, f"agt-{run_id}",
    )  # fmt: skip


def _container_set(name: str, kind: type[Origins] | type[Gateways], scope: str) -> Any:
    """Fixture NAME: an empty KIND on the testbed, and all it started removed after."""

    @pytest.fixture(scope=scope, name=name)
    def fixture(testbed: Testbed) -> Iterator[Origins | Gateways]:
        started = kind(testbed)
        yield started
        started.remove_all()

    return fixture


# The session's origins and gateways (the ones fixtures below start), and each test's own.
session_origins = _container_set("session_origins", Origins, "session")
origins = _container_set("origins", Origins, "function")
session_gateways = _container_set("session_gateways", Gateways, "session")
gateways = _container_set("gateways", Gateways, "function")


@pytest.fixture(scope="session")
def allowed_origin(session_origins: Origins) -> Origin:
    return session_origins.start("allowed", ALLOWED)


@pytest.fixture(scope="session")
def forbidden_origin(session_origins: Origins) -> Origin:
    return session_origins.start("forbidden", FORBIDDEN)


@pytest.fixture(scope="session")
def upstream_origin(session_origins: Origins) -> Origin:
    return session_origins.start("upstream", (UPSTREAM_ALIAS,))


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """REAL_KEY in a file only the gateway's uid can read, as compose secrets are mounted."""
    if os.geteuid() != 0:
        pytest.fail("the gateway tests give a secret file to uid 1100: run them as root")
    path = tmp_path_factory.mktemp("secrets") / "anthropic_api_key"
    path.write_text(REAL_KEY + "\n")
    os.chown(path, GATEWAY_UID, GATEWAY_UID)
    path.chmod(0o400)
    return path


@pytest.fixture(scope="session")
def gateway(session_gateways: Gateways, api_double: ApiDouble, key_file: Path) -> Gateway:
    """The gateway as an operator runs it: the key from a secret file, the double as the
    upstream, the test origins' names allowed (and two names that resolve where squid must
    not go)."""
    return session_gateways.start(
        {
            "ANTHROPIC_API_KEY_FILE": SECRET_TARGET,
            "GATEWAY_UPSTREAM": api_double.url,
            "GATEWAY_ALLOWED_DOMAINS": ALLOWED_DOMAINS,
        },
        volumes=secret_mount(key_file),
        extra_hosts=REBOUND,
    )


@pytest.fixture(scope="session")
def echo_gateway(session_gateways: Gateways, upstream_origin: Origin) -> Gateway:
    """A gateway whose upstream is an origin that records every request, HEAD included."""
    return session_gateways.start(
        {"ANTHROPIC_API_KEY": REAL_KEY, "GATEWAY_UPSTREAM": f"http://{UPSTREAM_ALIAS}:8080"}
    )


@pytest.fixture(scope="session")
def sandbox_probe(testbed: Testbed) -> Iterator[Probe]:
    """curl from inside the sandbox network: where the agent stands."""
    probe = start_probe(testbed, testbed.sandbox)
    yield probe
    probe.container.remove(force=True)


@pytest.fixture(scope="session")
def outside_probe(testbed: Testbed) -> Iterator[Probe]:
    """curl from the gateway's outside network: the positive control for reachability."""
    probe = start_probe(testbed, testbed.outside)
    yield probe
    probe.container.remove(force=True)
