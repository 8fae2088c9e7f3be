"""Validation of configuration values, and invoke.yaml as the single home of defaults."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from agentimage import config
from agentimage.errors import AgentImageError

ROOT = Path(__file__).resolve().parents[2]
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_invoke_yaml_defaults_are_valid() -> None:
    data = yaml.safe_load((ROOT / "invoke.yaml").read_text())
    image = data["image"]
    assert image["name"] == "agentgate/agent"
    config.check_image_name(image["name"])
    config.check_variant(image["variant"])
    # empty: the Dockerfile's default line and that line's pin (agentimage.lines)
    assert image["node_version"] == image["claude_code_version"] == ""
    assert config.parse_platforms(data["buildx"]["platforms"]) == ("linux/amd64", "linux/arm64")
    assert data["release"]["branch"] == "main"
    # every value is a scalar, so INVOKE_* env vars can override each of them
    for section in data.values():
        for value in section.values():
            assert isinstance(value, str | int | bool)


@pytest.mark.parametrize("variant", ["debian", "", "Alpine", "slim "])
def test_unknown_variant(variant: str) -> None:
    with pytest.raises(AgentImageError, match="unknown variant"):
        config.check_variant(variant)


@pytest.mark.parametrize("version", ["twenty", "20.x", "", "v20", "20.1.2.3"])
def test_bad_node_version(version: str) -> None:
    with pytest.raises(AgentImageError, match="Node version"):
        config.check_node_version(version)


@pytest.mark.parametrize("version", ["latest", "2.1", "2.1.0 ", "v2.1.0", ""])
def test_bad_cli_version(version: str) -> None:
    with pytest.raises(AgentImageError, match="Claude Code version"):
        config.check_cli_version(version)


@pytest.mark.parametrize(
    "value",
    ["linux", "linux/", "amd64", "linux/amd64;linux/arm64", "Linux/AMD64", "linux/amd64/v8/x"],
)
def test_malformed_platform(value: str) -> None:
    with pytest.raises(AgentImageError, match="malformed"):
        config.parse_platforms(value)


def test_platform_list() -> None:
    assert config.parse_platforms(" linux/amd64 , linux/arm64/v8") == (
        "linux/amd64",
        "linux/arm64/v8",
    )
    with pytest.raises(AgentImageError, match="repeats"):
        config.parse_platforms("linux/amd64,linux/amd64")
    with pytest.raises(AgentImageError, match="no platform"):
        config.parse_platforms(",")


@pytest.mark.parametrize(
    "registry",
    ["127.0.0.1:5000", "localhost:5000", "ghcr.io/agentgate", "registry.example.com", "[::1]:5000"],
)
def test_good_registry(registry: str) -> None:
    assert config.check_registry(registry) == registry


@pytest.mark.parametrize(
    "registry", ["http://127.0.0.1:5000", "justaname", "host:99999", "127.0.0.1:5000/", "a b"]
)
def test_bad_registry(registry: str) -> None:
    with pytest.raises(AgentImageError, match=r"registry|port"):
        config.check_registry(registry)


@pytest.mark.parametrize("tag", [".hidden", "-x", "a:b", "x" * 129, ""])
def test_bad_tag(tag: str) -> None:
    with pytest.raises(AgentImageError, match="image tag"):
        config.check_tag(tag)


def test_image_repository() -> None:
    assert config.image_repository("agentgate/agent") == "agentgate/agent"
    assert config.image_repository("agentgate/agent", "127.0.0.1:5000") == (
        "127.0.0.1:5000/agentgate/agent"
    )
    with pytest.raises(AgentImageError, match="image name"):
        config.image_repository("AgentGate/Agent")


def test_ca_cert_none_and_auto(tmp_path: Path) -> None:
    assert config.resolve_ca_cert("none") is None
    bundle = tmp_path / "ca.pem"
    bundle.write_text(PEM)
    assert config.resolve_ca_cert("auto", {"SSL_CERT_FILE": str(bundle)}) == bundle.resolve()
    # auto with nothing usable falls back to the system bundle or to none, never an error
    result = config.resolve_ca_cert("auto", {"SSL_CERT_FILE": str(tmp_path / "missing")})
    assert result in (None, config.SYSTEM_CA_BUNDLE.resolve())


def test_ca_cert_given_path(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text(PEM)
    assert config.resolve_ca_cert(str(bundle)) == bundle.resolve()


def test_ca_cert_missing(tmp_path: Path) -> None:
    with pytest.raises(AgentImageError, match="does not exist"):
        config.resolve_ca_cert(str(tmp_path / "nope.pem"))


def test_ca_cert_directory(tmp_path: Path) -> None:
    with pytest.raises(AgentImageError, match="not a file"):
        config.resolve_ca_cert(str(tmp_path))


def test_ca_cert_not_pem(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.der"
    bundle.write_bytes(b"\x30\x82\x01\x0a garbage")
    with pytest.raises(AgentImageError, match="no PEM certificate"):
        config.resolve_ca_cert(str(bundle))


def test_ca_cert_unreadable() -> None:
    """Root reads any file, so the check runs as uid 65534 (setpriv) when the suite is root."""
    directory = Path(tempfile.mkdtemp(prefix="agentimage-ca-"))
    try:
        directory.chmod(0o755)
        bundle = directory / "ca.pem"
        bundle.write_text(PEM)
        bundle.chmod(0o600 if os.geteuid() == 0 else 0)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        code = (
            "import sys; from agentimage import config; from agentimage.errors import "
            "AgentImageError\ntry:\n config.resolve_ca_cert(sys.argv[1])\n"
            "except AgentImageError as e:\n print(e)"
        )
        result = subprocess.run(
            [*(nobody if os.geteuid() == 0 else []), sys.executable, "-c", code, str(bundle)],
            text=True,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"CA bundle {bundle} is not readable (Permission denied)" in result.stdout
    finally:
        shutil.rmtree(directory)


CLASSIC_STORE = {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]]}
CONTAINERD_STORE = {
    "Driver": "overlayfs",
    "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
}


def test_multi_platform_load_needs_the_containerd_store() -> None:
    from agentimage import preflight
    from agentimage.errors import AgentImageError, ExitCode

    both = ("linux/amd64", "linux/arm64")
    preflight.multi_platform_load(both, CONTAINERD_STORE)
    preflight.multi_platform_load(both[:1], CLASSIC_STORE)  # one platform loads anywhere
    with pytest.raises(AgentImageError, match="containerd image store") as err:
        preflight.multi_platform_load(both, CLASSIC_STORE)
    assert err.value.code == ExitCode.ENVIRONMENT
    assert "containerd-snapshotter" in err.value.message  # names the fix


def test_a_release_needs_a_builder_that_keeps_attestations() -> None:
    from agentimage import preflight
    from agentimage.errors import ExitCode

    preflight.attestations("", CONTAINERD_STORE)
    preflight.attestations("remote-buildkit", CLASSIC_STORE)  # its own store: buildx decides
    with pytest.raises(AgentImageError, match="provenance attestations") as err:
        preflight.attestations("", CLASSIC_STORE)
    assert err.value.code == ExitCode.ENVIRONMENT
    assert "containerd-snapshotter" in err.value.message


@pytest.mark.parametrize(
    ("ref", "qualified"),
    [
        ("node:18-bookworm-slim", "docker.io/library/node:18-bookworm-slim"),
        ("node", "docker.io/library/node"),
        ("library/node:18", "docker.io/library/node:18"),
        ("index.docker.io/library/node:18", "docker.io/library/node:18"),
        ("127.0.0.1:5000/library/node:18", "127.0.0.1:5000/library/node:18"),
        ("ghcr.io/org/base@sha256:ab", "ghcr.io/org/base@sha256:ab"),
    ],
)
def test_qualified_image_is_dockers_full_spelling(ref: str, qualified: str) -> None:
    assert config.qualified_image(ref) == qualified


def test_the_local_base_digest_is_the_one_it_was_pulled_by() -> None:
    from agentimage import preflight

    digest = "sha256:" + "d" * 64
    attrs = {"RepoDigests": ["127.0.0.1:5000/library/node@sha256:aa", f"node@{digest}"]}
    assert preflight.local_digest("node:18-bookworm-slim", attrs) == digest
    assert preflight.local_digest("docker.io/library/node:18", attrs) == digest
    assert preflight.local_digest("node:18", {"RepoDigests": []}) == ""  # built here: ask
