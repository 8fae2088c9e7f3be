"""What the image's layers carry: the CLI once, and no build secret in any layer.

Reads `docker image save` once per session. Every layer counts, not just the final
filesystem: a file deleted or overwritten by a later layer is still shipped and still
readable by anyone who pulls the image.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MIB = 1024 * 1024
# PEM-bearing files up to this size are kept for the CA check (the bundle is ~200 KiB).
PEM_SCAN_LIMIT = 4 * MIB
PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class FileEntry:
    layer: int
    path: str
    size: int
    digest: str


@dataclass
class Layers:
    count: int = 0
    paths: list[tuple[int, str]] = field(default_factory=list)
    files: list[FileEntry] = field(default_factory=list)  # regular files, hard links excluded
    pem_files: dict[tuple[int, str], bytes] = field(default_factory=dict)


def _normalise(name: str) -> str:
    name = name.removeprefix("./").lstrip("/")
    return name.rstrip("/")


def _layer_blobs(archive: tarfile.TarFile) -> list[str]:
    """Layer members in order: Docker's manifest.json, or the OCI index -> manifest."""
    names = set(archive.getnames())
    if "manifest.json" in names:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        return list(manifest[0]["Layers"])

    def blob(digest: str) -> dict:
        return json.load(archive.extractfile("blobs/" + digest.replace(":", "/")))  # type: ignore[arg-type]

    node = json.load(archive.extractfile("index.json"))  # type: ignore[arg-type]
    while "manifests" in node:
        node = blob(node["manifests"][0]["digest"])
    return ["blobs/" + layer["digest"].replace(":", "/") for layer in node["layers"]]


def read_layers(path: Path) -> Layers:
    result = Layers()
    with tarfile.open(path) as archive:
        blobs = _layer_blobs(archive)
        result.count = len(blobs)
        for index, blob in enumerate(blobs):
            stream = archive.extractfile(blob)
            assert stream is not None, blob
            with tarfile.open(fileobj=stream, mode="r|*") as layer:
                for member in layer:
                    name = _normalise(member.name)
                    result.paths.append((index, name))
                    if not member.isreg():
                        continue  # hard links (LNKTYPE) share the data of their target
                    data = layer.extractfile(member)
                    assert data is not None
                    digest = hashlib.sha256()
                    head = b""
                    while chunk := data.read(MIB):
                        digest.update(chunk)
                        if member.size <= PEM_SCAN_LIMIT:
                            head += chunk
                    if b"-----BEGIN CERTIFICATE-----" in head:
                        result.pem_files[(index, name)] = head
                    result.files.append(FileEntry(index, name, member.size, digest.hexdigest()))
    return result


@pytest.fixture(scope="session")
def layers(image, tmp_path_factory: pytest.TempPathFactory) -> Layers:
    archive = tmp_path_factory.mktemp("image-save") / "image.tar"
    with archive.open("wb") as out:
        for chunk in image.save(named=True):
            out.write(chunk)
    try:
        return read_layers(archive)
    finally:
        archive.unlink()


def test_cli_binary_exactly_once(layers: Layers) -> None:
    candidates = [f for f in layers.files if "claude" in f.path and f.size >= 10 * MIB]
    assert candidates, "no claude binary of 10 MiB or more in any layer: is the CLI installed?"
    cli = max(candidates, key=lambda f: f.size)
    copies = [(f.layer, f.path) for f in layers.files if f.digest == cli.digest]
    assert len(copies) == 1, (
        f"the {cli.size / MIB:.0f} MiB CLI binary is carried {len(copies)} times: {copies}"
    )


def test_no_large_file_content_twice(layers: Layers) -> None:
    by_digest: dict[str, list[FileEntry]] = defaultdict(list)
    for entry in layers.files:
        if entry.size >= MIB:
            by_digest[entry.digest].append(entry)
    twice = {
        digest: [(e.layer, e.path) for e in entries]
        for digest, entries in by_digest.items()
        if len(entries) > 1
    }
    listing = "\n".join(
        f"  {digest[:12]} ({by_digest[digest][0].size / MIB:.1f} MiB): {paths}"
        for digest, paths in twice.items()
    )
    assert not twice, f"files of 1 MiB or more carried more than once (layer, path):\n{listing}"


def test_no_secret_paths_in_any_layer(layers: Layers) -> None:
    suspicious = [
        (index, path)
        for index, path in layers.paths
        if path == "run/secrets"
        or path.startswith("run/secrets/")
        or path.endswith(("/.credentials.json", "/.claude.json"))
        or re.fullmatch(r"(root|home/[^/]+)/\.(npmrc|netrc|docker/config\.json)", path)
        or re.fullmatch(r"(root|home/[^/]+)/\.[a-z]*_history", path)
    ]
    assert not suspicious, f"secret-looking paths in layers (layer, path): {suspicious}"


def _pem_blocks(data: bytes) -> set[bytes]:
    return {re.sub(rb"\s+", b"", block) for block in PEM_BLOCK.findall(data)}


def test_host_ca_bundle_absent_from_layers(layers: Layers) -> None:
    """The bundle passed as the ca-certificates build secret never lands in a layer.

    The bundle is the host's; what makes it worth protecting (and the only part that can
    be told apart from the image's own trust store) is the certificates the host trusts
    beyond the distribution's, e.g. a TLS-intercepting proxy's CA.
    """
    if not HOST_CA_BUNDLE.is_file():
        pytest.skip(f"{HOST_CA_BUNDLE} is missing on this host: no build secret to look for")
    host_bytes = HOST_CA_BUNDLE.read_bytes()
    image_bundle = [
        data
        for (_, path), data in layers.pem_files.items()
        if path == "etc/ssl/certs/ca-certificates.crt"
    ]
    own = set().union(*(_pem_blocks(data) for data in image_bundle))
    extra = _pem_blocks(host_bytes) - own
    if not extra:
        pytest.skip("the host trusts no CA beyond the image's own bundle: nothing secret to find")
    host_digest = hashlib.sha256(host_bytes).hexdigest()
    same = [(f.layer, f.path) for f in layers.files if f.digest == host_digest]
    assert not same, f"the host's CA bundle is in the image, byte for byte: {same}"
    leaked = [key for key, data in layers.pem_files.items() if _pem_blocks(data) & extra]
    assert not leaked, (
        f"{len(extra)} certificate(s) only the host trusts (the build secret) are in: {leaked}"
    )


def test_history_holds_no_secrets(image) -> None:
    patterns = ("BEGIN CERTIFICATE", "sk-ant-", "_authToken", "NODE_AUTH_TOKEN=", "API_KEY=")
    for step in image.history():
        created_by = step.get("CreatedBy", "")
        for pattern in patterns:
            assert pattern not in created_by, f"{pattern!r} in docker history: {created_by}"
