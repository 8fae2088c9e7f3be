"""Test infrastructure as containers: a stdlib-only script of ours run by the image's python3.

The API double and the DNS recorder run this way, so a host without registry access needs no
image but the one under test. Each runs as nobody, read-only, with no capabilities, and joins
the networks it is given (each with its DNS aliases).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from docker.models.containers import Container
from docker.models.networks import Network

import docker


def start_script_container(
    client: docker.DockerClient,
    image: str,
    script: Path,
    args: Sequence[str],
    *,
    name: str,
    networks: Mapping[Network, Sequence[str]],
    labels: Mapping[str, str],
    **settings: object,
) -> Container:
    """Start SCRIPT ARGS in a container attached to NETWORKS; returns it running."""
    first, *others = networks
    target = f"/opt/testkit/{script.name}"
    container = client.containers.create(
        image,
        ["python3", target, *args],
        entrypoint=[],
        name=name,
        user="65534:65534",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        volumes={str(script): {"bind": target, "mode": "ro"}},
        labels=dict(labels),
        network=first.name,
        networking_config={
            first.name: client.api.create_endpoint_config(aliases=list(networks[first]))
        },
        healthcheck={"test": ["NONE"]},
        **settings,
    )
    for network in others:
        network.connect(container, aliases=list(networks[network]))
    container.start()
    container.reload()
    return container


def address_on(container: Container, network: Network) -> str:
    container.reload()
    return str(container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"])
