"""Image tag sets: small pure functions of (version, commit, tags already published, line).

The default Node line (the Dockerfile's NODE_VERSION) keeps the seed's names:
- dev build:   dev, sha-<7>
- stable:      vX.Y.Z, sha-<7> (immutable); X.Y, X, latest (floating)
- prerelease:  vX.Y.Z-pre.N, sha-<7> only
Every line, the default one included, is also published under its suffix -node<line>
(below for a line N):
- dev build:   dev-nodeN, sha-<7>-nodeN (the default line: dev, sha-<7> only)
- stable:      vX.Y.Z-nodeN (immutable); X.Y-nodeN, X-nodeN, nodeN (floating)
- prerelease:  vX.Y.Z-pre.N-nodeN only
So `latest` and `vX.Y.Z` follow whichever line is the default, while `nodeN` and
`vX.Y.Z-nodeN` keep naming Node N when the default moves on. The full version carries a
"v", as the seed's agentgate/agent:v0.2.13 and our git tags do.
Floating tags never move backwards: releasing 1.4.1 after 2.0.0 moves 1.4 but neither 1 nor
latest; each floating tag moves only when the new version is >= every stable release it covers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


def dev_tags(sha: str, suffix: str = "") -> list[str]:
    """A local build's tags; another line than the default adds its suffix to each."""
    return [f"dev{suffix}", f"{sha_tag(sha)}{suffix}"]


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


def floating_candidates(
    version: Version, suffix: str = "", default: bool = True
) -> list[tuple[str, Callable[[Version], bool]]]:
    """The floating tags a stable release of a line may move, each with the releases it
    covers: X.Y, X, latest (default line), then X.Y<suffix>, X<suffix>, node<line>."""
    scopes: list[tuple[str, Callable[[Version], bool]]] = [
        (
            f"{version.major}.{version.minor}",
            lambda v: (v.major, v.minor) == (version.major, version.minor),
        ),
        (f"{version.major}", lambda v: v.major == version.major),
    ]
    found = [*scopes, ("latest", lambda v: True)]
    if not suffix:
        return found
    own = [(tag + suffix, covers) for tag, covers in scopes] + [(suffix[1:], lambda v: True)]
    return [*found, *own] if default else own


def release_tags(
    version: Version,
    sha: str,
    existing: Iterable[str] = (),
    suffix: str = "",
    default: bool = True,
) -> ReleaseTags:
    """The tags of one line's release: `suffix` is the line's (-node<line>; "" when the project
    has one line), `default` whether it is the default line (which keeps the bare names)."""
    own = "" if default else suffix
    immutable = (version_tag(version) + own, sha_tag(sha) + own)
    if default and suffix:
        immutable += (version_tag(version) + suffix,)
    if version.prerelease:
        return ReleaseTags(immutable, (), ())
    published = stable_versions(existing)
    floating, held = [], []
    for tag, covers in floating_candidates(version, suffix, default):
        newest = max((v for v in published if covers(v)), default=None)
        (held if newest is not None and newest > version else floating).append(tag)
    return ReleaseTags(immutable, tuple(floating), tuple(held))


def qualify(repository: str, tags: Iterable[str]) -> list[str]:
    """'agentgate/agent' + ['dev'] -> ['agentgate/agent:dev']."""
    return [f"{repository}:{tag}" for tag in tags]
