"""The CA bundle passed as a build secret never lands in a layer of the image.

The bundle given to `invoke buildx --ca-cert` is the host's own (so npm still gets through a
TLS-intercepting proxy) plus a CA generated here that nothing else has ever seen: any trace
of it in any layer is the secret leaking. `--no-cache` makes every RUN execute with this
secret, and the image goes to an OCI archive, so the local image store gains nothing. A
control build that does copy the secret into a layer shows the scan finds a leak.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from releasekit import ROOT, TIMEOUT, ThrowawayCA, make_throwaway_ca, run, unique_image_name

from agentimage import config, lines
from benchmarks import layers

PLATFORM = "linux/amd64"


@pytest.fixture(scope="module")
def throwaway_ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return make_throwaway_ca(tmp_path_factory.mktemp("throwaway-ca"))


def scan(archive: Path, ca: ThrowawayCA) -> list[tuple[int, str, bytes]]:
    return layers.find_bytes(archive, ca.needles, platform=PLATFORM)


@pytest.fixture(scope="module")
def image_archive(
    tmp_path_factory: pytest.TempPathFactory, throwaway_ca: ThrowawayCA, npm_registry: str
) -> Iterator[Path]:
    """The image built without cache, every RUN seeing the throwaway CA, as an OCI archive."""
    archive = tmp_path_factory.mktemp("build-secret") / "agent.oci.tar"
    argv = [
        sys.executable, "-m", "invoke", "buildx", "--variant", "slim", "--platform", PLATFORM,
        "--ca-cert", str(throwaway_ca.bundle), "--no-cache", "--output", str(archive),
    ]  # fmt: skip
    env = {"INVOKE_IMAGE_NAME": unique_image_name(), "npm_config_registry": npm_registry}
    run(argv, cwd=ROOT, timeout=TIMEOUT, **env)
    yield archive
    archive.unlink()


def test_the_ca_secret_is_in_no_layer(image_archive: Path, throwaway_ca: ThrowawayCA) -> None:
    leaked = scan(image_archive, throwaway_ca)
    assert not leaked, f"the throwaway CA passed as the build secret is in: {leaked}"


def test_a_layer_holding_the_secret_is_found(tmp_path: Path, throwaway_ca: ThrowawayCA) -> None:
    """The control: a build that copies the secret into a layer fails the same scan. Without
    --no-cache its RUN would come from the cache, holding an earlier run's CA: a secret's
    content is no part of the cache key."""
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {config.base_image('slim', lines.read().default)}\n"
        "RUN --mount=type=secret,id=ca-certificates "
        "cp /run/secrets/ca-certificates /usr/local/share/leaked.crt\n"
    )
    archive = tmp_path / "leaky.oci.tar"
    run(
        [
            # --no-cache: a secret's content is no part of a RUN's cache key, so a cached
            # layer would hold an earlier run's throwaway CA, not this one
            "docker", "buildx", "build", "--no-cache", "--platform", PLATFORM,
            "--secret", f"id=ca-certificates,src={throwaway_ca.bundle}",
            "--output", f"type=oci,dest={archive}", str(context),
        ],
        timeout=TIMEOUT,
    )  # fmt: skip
    leaked = {(path, needle) for _, path, needle in scan(archive, throwaway_ca)}
    os.remove(archive)
    assert leaked == {("/usr/local/share/leaked.crt", throwaway_ca.needles[0])}
