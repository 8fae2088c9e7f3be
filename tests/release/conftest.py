"""Fixtures for end-to-end releases: a temp git repo with a bare origin, a local registry.

These tests need a Docker engine with buildx and the base-image mirror (see scripts/); they
are skipped when `docker info` fails. Run: `pytest tests/release` (about 2 minutes warm).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("docker", "tasks.py", "invoke.yaml", "VERSION", ".dockerignore")
TIMEOUT = 900  # a cold image build takes minutes; warm runs take seconds
_names = count(1)


def _docker_works() -> bool:
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    mine = [item for item in items if here in Path(str(item.fspath)).parents]
    if not mine:
        return
    skip = None if _docker_works() else pytest.mark.skip(reason="needs a running Docker engine")
    for item in mine:
        item.add_marker(pytest.mark.slow)
        if skip:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway registry on a free loopback port: 'HOST:PORT'."""
    port = _free_port()
    storage = tmp_path_factory.mktemp("registry")
    subprocess.run(
        ["bash", str(ROOT / "scripts/start-local-registry.sh"), str(port), str(storage)],
        check=True,
        timeout=120,
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        pid_file = storage / "registry.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


def registry_tags(registry: str, repo: str) -> dict[str, str]:
    """tag -> manifest digest, straight from the registry API."""
    base = f"http://{registry}/v2/{repo}"
    try:
        with urllib.request.urlopen(f"{base}/tags/list", timeout=10) as response:  # noqa: S310
            tags = json.loads(response.read()).get("tags") or []
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {}
        raise
    accept = ", ".join(
        (
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
    )
    digests = {}
    for tag in tags:
        request = urllib.request.Request(  # noqa: S310 (loopback http)
            f"{base}/manifests/{tag}", method="HEAD", headers={"Accept": accept}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            digests[tag] = response.headers["Docker-Content-Digest"]
    return digests


@dataclass
class ReleaseRepo:
    """A clone of the project's build inputs with a bare origin, and how to run invoke in it."""

    path: Path
    origin: Path
    registry: str
    image: str  # unique per test so registry state never leaks between tests

    @property
    def repo(self) -> str:
        return self.image

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd or self.path, check=True, text=True, capture_output=True
        ).stdout.strip()

    def invoke(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            "INVOKE_IMAGE_NAME": self.image,
            "INVOKE_IMAGE_VARIANT": "slim",
            "INVOKE_IMAGE_REGISTRY": self.registry,
            # a real, quick check of the image under test instead of the full image suite
            "INVOKE_RELEASE_TEST_COMMAND": (
                'docker run --rm --entrypoint node "$AGENT_IMAGE" --version'
            ),
            **env,
        }
        result = subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.path,
            env=environment,
            text=True,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        print(result.stdout, result.stderr[-4000:], sep="\n")  # shown when a test fails
        return result

    def commit(self, message: str) -> str:
        note = self.path / "NOTES.md"
        note.write_text((note.read_text() if note.exists() else "") + message + "\n")
        self.git("add", "NOTES.md")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def state(self) -> dict[str, object]:
        """Everything a release may change: HEAD, VERSION, tags (local, remote), registry."""
        return {
            "head": self.git("rev-parse", "HEAD"),
            "version": (self.path / "VERSION").read_text(),
            "status": self.git("status", "--porcelain"),
            "local_tags": self.git("tag", "--list"),
            "remote_refs": self.git("ls-remote", str(self.origin)),
            "registry": registry_tags(self.registry, self.image),
        }


@pytest.fixture
def release_repo(tmp_path: Path, registry: str) -> Iterator[ReleaseRepo]:
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name)
        else:
            shutil.copy2(source, work / name)
    (work / "VERSION").write_text("0.1.0\n")
    repo = ReleaseRepo(work, origin, registry, f"e2e/agent-{os.getpid()}-{next(_names)}")
    for key, value in (
        ("user.name", "Release Test"),
        ("user.email", "release@example.invalid"),
        ("commit.gpgsign", "false"),
        ("tag.gpgsign", "false"),
    ):
        repo.git("config", key, value)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "feat: initial image sources")
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "origin", "main")
    yield repo
    # drop the local tags this test created (the layers stay: the build cache is shared)
    refs = subprocess.run(
        [
            "docker",
            "image",
            "ls",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            f"{registry}/{repo.image}",
        ],
        text=True,
        capture_output=True,
        check=False,
    ).stdout.split()
    if refs:
        subprocess.run(["docker", "image", "rm", *refs], capture_output=True, check=False)
