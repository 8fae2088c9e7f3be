"""Helpers of the release suite: a clone of the build inputs with a bare origin, registries
of a test's own, and readers of what a release left in git and the registry.

Fixtures live in conftest.py; test modules import helpers from here (with several
conftest.py files in one run, `from conftest import` finds the wrong one).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from agentimage import lines, proc

ROOT = Path(__file__).resolve().parents[2]
# The suite releases the default Node line only (release.lines), but for its test of a
# release of every line: one build per release instead of one per line.
LINES = lines.read(ROOT)
SUFFIX = lines.suffix(LINES.default)
COPIED = (
    "docker",
    "tasks.py",
    "invoke.yaml",
    "VERSION",
    ".dockerignore",
    ".gitignore",
    "CHANGELOG.md",
)
# cosign keeps signatures, attestations and attached SBOMs under tags named after the digest
COSIGN_TAG = re.compile(r"^sha256-[0-9a-f]{64}\.(sig|att|sbom)$")
TIMEOUT = 900  # a cold image build takes minutes; warm runs take seconds
_names = count(1)


def run(argv: list[str], *, cwd: Path | None = None, timeout: float = 120, **env: str) -> str:
    """Run a helper command; a failure fails the test with the command's whole stderr."""
    result = proc.run(argv, cwd=cwd, env=env or None, timeout=timeout)
    assert result.ok, f"{proc.quote(argv)} failed ({result.returncode}):\n{result.stderr}"
    return result.stdout


def _default_sigint() -> None:
    """Run in the child before exec: a job a non-interactive shell starts in the background
    (`nox ... &` in a script) ignores SIGINT, Python then installs no handler for it, and
    every process it starts inherits the ignoring; a Ctrl-C test would then test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_image_name() -> str:
    """An image repository name of this test's own: registry state never leaks between
    tests, and remove_local_images finds exactly what the test made."""
    return f"e2e/agent-{os.getpid()}-{next(_names)}"


def stable_tags(version: str, source: str) -> set[str]:
    """The registry tags a stable release of the default line leaves: the seed's names,
    and the version and floating ones again under the line's suffix."""
    major, minor, _ = version.split(".")
    named = {f"v{version}", f"{major}.{minor}", major}
    return {f"sha-{source[:7]}", "latest", SUFFIX[1:], *named, *(t + SUFFIX for t in named)}


def registry_tags(registry: str, repo: str, *, cosign: bool = False) -> dict[str, str]:
    """tag -> manifest digest, straight from the registry API; cosign's tags only when
    asked for."""
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
        if COSIGN_TAG.match(tag) and not cosign:
            continue
        request = urllib.request.Request(  # noqa: S310 (loopback http)
            f"{base}/manifests/{tag}", method="HEAD", headers={"Accept": accept}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            digests[tag] = response.headers["Docker-Content-Digest"]
    return digests


def remote_labels(ref: str) -> dict[str, str]:
    """The labels of the image a registry tag names, read from the registry."""
    out = run(["docker", "buildx", "imagetools", "inspect", "--format", "{{json .}}", ref])
    return dict(json.loads(out)["image"]["config"]["Labels"])


_DIGEST = re.compile(r"'?(\S+?)@(<digest-of-[^>]+>|sha256:[0-9a-f]{64})'?")


# the SBOM step's container is named after the process that runs the release
_CONTAINER = re.compile(r"(agentimage-sbom-[0-9a-f]{7}-[a-z0-9-]+?)-[0-9]+\b")


def _normalized(command: str) -> str:
    return _CONTAINER.sub(r"\1-PID", _DIGEST.sub(r"\1@DIGEST", command))


def planned_commands(dry_run_stdout: str) -> list[str]:
    """The commands a dry run lists under its steps, digests written as @DIGEST."""
    lines = [line.strip() for line in dry_run_stdout.splitlines()]
    return [_normalized(line[2:]) for line in lines if line.startswith("$ ")]


def commands_run(release_stderr: str) -> list[str]:
    """The commands a release logged as it ran them (`release: $ ...`), digests as @DIGEST."""
    marker = "release: $ "
    return [
        _normalized(line[len(marker) :])
        for line in release_stderr.splitlines()
        if line.startswith(marker)
    ]


@dataclass
class ReleaseRepo:
    """A clone of the project's build inputs with a bare origin, and how to run invoke in it."""

    path: Path
    origin: Path
    registry: str
    image: str  # unique per test so registry state never leaks between tests
    npm_registry: str = ""
    registry_api: str = ""  # where state() reads tags; default: registry (differs behind a proxy)

    @property
    def repo(self) -> str:
        return self.image

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return run(["git", *args], cwd=cwd or self.path).strip()

    def environment(self, **env: str) -> dict[str, str]:
        return {
            **os.environ,
            "npm_config_registry": self.npm_registry,
            "INVOKE_IMAGE_NAME": self.image,
            "INVOKE_IMAGE_VARIANT": "slim",
            "INVOKE_IMAGE_REGISTRY": self.registry,
            "INVOKE_RELEASE_LINES": LINES.default,
            # a real, quick check of the image under test instead of the full image suite
            "INVOKE_RELEASE_TEST_COMMAND": (
                'docker run --rm --entrypoint node "$AGENT_IMAGE" --version'
            ),
            **env,
        }

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        """`invoke ARGS` in its own process group (a terminal's Ctrl-C signals the group),
        with SIGINT's default disposition, as a terminal's foreground job has it."""
        return subprocess.Popen(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.path,
            env=self.environment(**env),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )

    def invoke(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.path,
            env=self.environment(**env),
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

    def state(self, *, with_registry: bool = True) -> dict[str, object]:
        """Everything a release may change: HEAD, VERSION, tags (local, remote), registry."""
        state: dict[str, object] = {
            "head": self.git("rev-parse", "HEAD"),
            "version": (self.path / "VERSION").read_text(),
            "status": self.git("status", "--porcelain"),
            "local_tags": self.git("tag", "--list"),
            "remote_refs": self.git("ls-remote", str(self.origin)),
        }
        if with_registry:
            state["registry"] = registry_tags(self.registry_api or self.registry, self.image)
        return state


def make_release_repo(
    base: Path, registry: str, npm_registry: str, *, registry_api: str = ""
) -> ReleaseRepo:
    """A work tree with the project's build inputs, committed and pushed to a bare origin."""
    origin = base / "origin.git"
    work = base / "work"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)])
    run(["git", "init", "-q", "-b", "main", str(work)])
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name)
        else:
            shutil.copy2(source, work / name)
    (work / "VERSION").write_text("0.1.0\n")
    repo = ReleaseRepo(
        work,
        origin,
        registry,
        unique_image_name(),
        npm_registry,
        registry_api,
    )
    configure_identity(repo, "Release Test")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "feat: initial image sources")
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "origin", "main")
    return repo


def configure_identity(repo: ReleaseRepo, name: str) -> None:
    for key, value in (
        ("user.name", name),
        ("user.email", "release@example.invalid"),
        ("commit.gpgsign", "false"),
        ("tag.gpgsign", "false"),
    ):
        repo.git("config", key, value)


def remove_local_images(registry: str, image: str) -> None:
    """Drop the local tags a test created, pushed ones and --no-push ones (the layers stay:
    the build cache is shared). A tag that cannot be removed fails the test."""
    refs = []
    for repository in (f"{registry}/{image}", image):
        listed = ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository]
        refs += run(listed).split()
    if refs:
        run(["docker", "image", "rm", *refs])


def bcrypt_hash(password: str) -> str:
    """The registry's htpasswd auth accepts bcrypt hashes only."""
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


class LocalRegistry:
    """A docker-registry process of a test's own: restartable on the same port and storage."""

    def __init__(self, storage: Path, *, extra_config: str = "", storage_config: str = "") -> None:
        self.storage = storage
        self.port = free_port()
        self.extra_config = extra_config  # top-level YAML, e.g. an auth: section
        self.storage_config = storage_config  # lines under storage:, e.g. maintenance:
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        (self.storage / "data").mkdir(parents=True, exist_ok=True)
        config = self.storage / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage / 'data'}\n"
            "  delete:\n    enabled: true\n"
            + self.storage_config
            + f"http:\n  addr: {self.address}\n"
            + self.extra_config
        )
        with (self.storage / "registry.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["docker-registry", "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # 401 with auth: it answers
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"registry {self.address} did not start: {self.log()}")

    def tags(self, repo: str) -> dict[str, str]:
        """tag -> digest, read from the registry's storage (no credentials needed); cosign's
        signature, attestation and SBOM tags left out."""
        root = self.storage / "data/docker/registry/v2/repositories" / repo / "_manifests/tags"
        if not root.is_dir():
            return {}
        return {
            p.name: (p / "current/link").read_text().strip()
            for p in root.iterdir()
            if not COSIGN_TAG.match(p.name)
        }

    def repositories(self) -> list[str]:
        """Image repositories in the registry's storage (read from disk: no credentials)."""
        root = self.storage / "data" / "docker" / "registry" / "v2" / "repositories"
        return sorted(str(p.parent.relative_to(root)) for p in root.rglob("_manifests"))

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        path = self.storage / "registry.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def htpasswd_registry(
    private_registry: Callable[..., LocalRegistry], tmp_path: Path, password: str
) -> LocalRegistry:
    """A registry of the test's own that lets in user `releaser` with `password` only."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"releaser:{bcrypt_hash(password)}\n")
    return private_registry(
        "auth", f"auth:\n  htpasswd:\n    realm: agentgate-test\n    path: {htpasswd}\n"
    )


HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class ThrowawayCA:
    bundle: Path  # the host's bundle (when it has one) followed by this CA
    needles: tuple[bytes, ...]  # what any copy of the CA contains, as PEM or as DER


def make_throwaway_ca(where: Path) -> ThrowawayCA:
    """A CA nothing else has ever seen, appended to the host's bundle (so npm still gets
    through a TLS-intercepting proxy): any trace of it where it does not belong is a leak."""
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
