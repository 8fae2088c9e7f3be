"""Image tag sets: small pure functions of (version, commit, tags already published).

- dev build:   dev, sha-<7>
- stable:      vX.Y.Z, sha-<7> (immutable); X.Y, X, latest (floating)
- prerelease:  vX.Y.Z-pre.N, sha-<7> only
The full version carries a "v", as the seed's agentgate/agent:v0.2.13 and our git tags do.
Floating tags never move backwards: releasing 1.4.1 after 2.0.0 moves 1.4 but neither 1 nor
latest; each floating tag moves only when the new version is >= every stable release it covers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import semver

from agentimage.errors import AgentImageError

Version = semver.Version
SHORT_SHA = 7


def sha_tag(sha: str) -> str:
    if len(sha) < SHORT_SHA or any(c not in "0123456789abcdef" for c in sha.lower()):
        raise AgentImageError(f"commit id {sha!r} is not a hex sha; pass a full git commit id")
    return f"sha-{sha[:SHORT_SHA].lower()}"


def version_tag(version: Version) -> str:
    """The image tag of a release: vX.Y.Z[-pre.N], the same name as its git tag."""
    return f"v{version}"


def dev_tags(sha: str) -> list[str]:
    return ["dev", sha_tag(sha)]


@dataclass(frozen=True)
class ReleaseTags:
    """Immutable tags are pushed first (after the tests); floating tags last."""

    immutable: tuple[str, ...]
    floating: tuple[str, ...]
    held_back: tuple[str, ...]  # floating tags not moved because that would go backwards

    @property
    def all(self) -> tuple[str, ...]:
        return self.immutable + self.floating


def stable_versions(tags: Iterable[str]) -> list[Version]:
    """Stable X.Y.Z versions among registry tags (or git tags with a leading v)."""
    found = []
    for tag in tags:
        text = tag[1:] if tag.startswith("v") else tag
        try:
            version = Version.parse(text)
        except ValueError:
            continue
        if not version.prerelease and not version.build:
            found.append(version)
    return found


def release_tags(version: Version, sha: str, existing: Iterable[str] = ()) -> ReleaseTags:
    immutable = (version_tag(version), sha_tag(sha))
    if version.prerelease:
        return ReleaseTags(immutable, (), ())
    published = stable_versions(existing)
    candidates = (
        (
            f"{version.major}.{version.minor}",
            lambda v: (v.major, v.minor) == (version.major, version.minor),
        ),
        (f"{version.major}", lambda v: v.major == version.major),
        ("latest", lambda v: True),
    )
    floating, held = [], []
    for tag, covers in candidates:
        newest = max((v for v in published if covers(v)), default=None)
        (held if newest is not None and newest > version else floating).append(tag)
    return ReleaseTags(immutable, tuple(floating), tuple(held))


def qualify(repository: str, tags: Iterable[str]) -> list[str]:
    """'agentgate/agent' + ['dev'] -> ['agentgate/agent:dev']."""
    return [f"{repository}:{tag}" for tag in tags]
