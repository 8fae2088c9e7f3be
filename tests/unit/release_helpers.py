"""Release plans against a temp git repo and an in-memory registry (no Docker).

FakeRegistry answers the calls the release makes of agentimage.imagetools.Registry (inspect,
copy, check_access) from a dict; the end-to-end tests in tests/release use a real registry.
"""

from __future__ import annotations

from pathlib import Path

from agentimage import gitinfo, release, releaseplan
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagebuild import BuildOptions
from agentimage.imagetools import RemoteImage
from agentimage.releasesteps import Context
from agentimage.runner import HostRunner

REGISTRY = "127.0.0.1:5999"
REPOSITORY = f"{REGISTRY}/agentgate/agent"


def image(digest: str, version: str = "", revision: str = "") -> RemoteImage:
    return RemoteImage(digest, version, ("linux/amd64",), revision)


class FakeRegistry:
    """tag -> RemoteImage, in memory; records the tags it was asked to write."""

    def __init__(self, tags: dict[str, RemoteImage] | None = None) -> None:
        self.tags = dict(tags or {})
        self.copied: list[str] = []
        self.reads: list[str] = []

    def inspect(self, ref: str) -> RemoteImage | None:
        tag = ref.rsplit(":", 1)[1]
        self.reads.append(tag)
        return self.tags.get(tag)

    def copy(self, source: str, tag_ref: str, *, timeout: float | None = None) -> None:
        digest = source.split("@", 1)[1]
        found = next(i for i in self.tags.values() if i.digest == digest)
        self.tags[tag_ref.rsplit(":", 1)[1]] = found
        self.copied.append(tag_ref.rsplit(":", 1)[1])

    def check_access(self, repository: str, probe_tag: str) -> RemoteImage | None:
        return self.inspect(f"{repository}:{probe_tag}")

    # The supply chain of a pushed image (SBOMs, signatures, provenance): verified unless a
    # test says otherwise (tests/unit/test_supplychain.py checks the real verification).
    verified = True

    def platform_images(self, ref: str, planned: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        digest = ref.rsplit("@", 1)[1]
        return [(p, f"{digest}-{p.replace('/', '-')}") for p in planned or ("linux/amd64",)]

    def verify(self, repository: str, digest: str, public_key, expected) -> list[str]:
        self.reads.append(f"verify {digest}")
        if not self.verified:
            raise AgentImageError(f"{repository}@{digest} carries no SBOM", ExitCode.SUPPLY_CHAIN)
        return [f"  verified {digest} (fake)"]


def settings(**changes: object) -> releaseplan.ReleaseSettings:
    values: dict[str, object] = {
        "bump": "patch",
        "pre": None,
        "push": True,
        "image_name": "agentgate/agent",
        "registry": REGISTRY,
        "branch": "main",
        "remote": "origin",
        "test_command": "true",
        "build": BuildOptions("slim", "18", "9.8.7"),
    }
    values.update(changes)
    return releaseplan.ReleaseSettings(**values)  # type: ignore[arg-type]


def plan(
    work: Path, fake: FakeRegistry | None = None, *, collect: bool = False, **changes: object
) -> releaseplan.ReleasePlan:
    guards = releaseplan.Preconditions(collect)
    result = releaseplan.plan_release(
        work,
        settings(**changes),
        fake or FakeRegistry(),  # type: ignore[arg-type]
        guards,
    )
    return releaseplan.ReleasePlan(**{**result.__dict__, "problems": tuple(guards.failed)})


def pushed(work: Path, git_run, version: str = "0.1.0") -> FakeRegistry:
    """A registry holding the image of HEAD: build, test and push are done."""
    sha = git_run("rev-parse", "HEAD")
    return FakeRegistry({f"sha-{sha[:7]}": image("sha256:a", version, sha)})


def context(work: Path, result: releaseplan.ReleasePlan, fake: FakeRegistry) -> Context:
    root = Path(str(gitinfo.open_repo(work).working_tree_dir))
    return Context(result, settings(), root, HostRunner(), fake, digest=result.pushed_digest)  # type: ignore[arg-type]


def run(work: Path, result: releaseplan.ReleasePlan, fake: FakeRegistry) -> Context:
    return release.execute(result, settings(), work, registry=fake)  # type: ignore[arg-type]


def commands(work: Path, result: releaseplan.ReleasePlan) -> list[str]:
    return [
        line.strip().removeprefix("$ ")
        for line in release.describe(result, settings(), work)
        if line.strip().startswith("$ ")
    ]
