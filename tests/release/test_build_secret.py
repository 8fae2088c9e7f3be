"""The CA bundle passed as a build secret never lands in a layer of the image.

The bundle given to `invoke buildx --ca-cert` is the host's own (so npm still gets through a
TLS-intercepting proxy) plus a CA generated here that nothing else has ever seen: any trace
of it in any layer is the secret leaking. `--no-cache` makes every RUN execute with this
secret, and the image goes to an OCI archive, so the local image store gains nothing. A
control build that does copy the secret into a layer shows the scan finds a leak.
"""

from __future__ import annotations

import base64
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from releasekit import ROOT, TIMEOUT, run, unique_image_name

from agentimage import config, lines
from benchmarks import layers

HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PLATFORM = "linux/amd64"


@dataclass(frozen=True)
class ThrowawayCA:
    bundle: Path  # the host's bundle (when it has one) followed by this CA
    needles: tuple[bytes, ...]  # what any copy of the CA contains, as PEM or as DER


@pytest.fixture(scope="module")
def throwaway_ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    where = tmp_path_factory.mktemp("throwaway-ca")
    name = f"agentgate-throwaway-{uuid.uuid4().hex}"
    run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "1", "-subj", f"/CN={name}",
            "-keyout", str(where / "ca.key"), "-out", str(where / "ca.pem"),
        ]
    )  # fmt: skip
    pem = (where / "ca.pem").read_bytes()
    body = b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))
    der = base64.b64decode(body)
    (where / "ca.key").unlink()
    host = HOST_BUNDLE.read_bytes() if HOST_BUNDLE.is_file() else b""
    bundle = where / "bundle.pem"
    bundle.write_bytes(host + (b"\n" if host and not host.endswith(b"\n") else b"") + pem)
    # the first PEM line holds the random serial; the DER holds the name in the clear
    first_line = pem.splitlines()[1]
    return ThrowawayCA(bundle, (first_line, der[-64:], name.encode()))


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
