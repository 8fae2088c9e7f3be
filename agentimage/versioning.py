"""Semantic versions: parse, bump, prerelease, promotion, conventional commits, VERSION file.

Versions are `semver.Version`; git tags are the version with a leading "v"; the VERSION file
holds the version without "v".
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import semver

from agentimage.errors import AgentImageError, ExitCode

Version = semver.Version

BUMPS = ("patch", "minor", "major", "prerelease", "auto")
_PRE_ID = re.compile(r"^[A-Za-z][0-9A-Za-z-]*$")
_TAG = re.compile(r"^v(?P<version>[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?)$")
_RANK = {"patch": 1, "minor": 2, "major": 3}
_CONVENTIONAL = re.compile(
    r"^(?P<type>[A-Za-z]+)(\((?P<scope>[^()\r\n]*)\))?(?P<bang>!)?: (?P<description>\S[^\r\n]*)"
)
_BREAKING = re.compile(r"^BREAKING[ -]CHANGE: (?P<note>[^\r\n]*)", re.MULTILINE)


def parse_version(text: str, *, what: str = "version") -> Version:
    """Strict X.Y.Z[-pre] (no "v", no build metadata, no surrounding text)."""
    if text.startswith("v"):
        raise AgentImageError(
            f"{what} {text!r} starts with 'v'; write the bare version like {text[1:]!r}",
            ExitCode.GIT_STATE,
        )
    try:
        version = Version.parse(text)
    except (ValueError, TypeError) as exc:
        raise AgentImageError(
            f"{what} {text!r} is not a semantic version; write X.Y.Z such as 0.1.0",
            ExitCode.GIT_STATE,
        ) from exc
    if version.build:
        raise AgentImageError(
            f"{what} {text!r} carries build metadata; write X.Y.Z[-pre.N] only", ExitCode.GIT_STATE
        )
    return version


def tag_name(version: Version) -> str:
    return f"v{version}"


def version_from_tag(tag: str) -> Version | None:
    """'v1.2.3' -> Version(1.2.3); anything that is not a release tag -> None."""
    match = _TAG.match(tag)
    if not match:
        return None
    try:
        version = Version.parse(match["version"])
    except ValueError:
        return None
    return version


def latest_tagged(tags: Iterable[str]) -> Version | None:
    """The highest release among git tag names (prereleases included)."""
    versions = [v for v in map(version_from_tag, tags) if v is not None]
    return max(versions) if versions else None


def check_pre_id(pre: str) -> str:
    if not _PRE_ID.match(pre):
        raise AgentImageError(
            f"prerelease identifier {pre!r} is invalid; use letters/digits starting with a letter, "
            "e.g. rc, beta"
        )
    return pre


def check_bump(bump: str) -> str:
    if bump not in BUMPS:
        raise AgentImageError(f"unknown bump {bump!r}; pass --bump {'|'.join(BUMPS)}")
    return bump


def _release_bump(current: Version, kind: str) -> Version:
    """patch/minor/major; a prerelease is promoted when it already is that release line."""
    if current.prerelease:
        if kind == "patch":
            return current.finalize_version()
        if kind == "minor" and current.patch == 0:
            return current.finalize_version()
        if kind == "major" and current.minor == 0 and current.patch == 0:
            return current.finalize_version()
    if kind == "patch":
        return current.bump_patch()
    if kind == "minor":
        return current.bump_minor()
    return current.bump_major()


def _pre_parts(version: Version) -> tuple[str, int] | None:
    """'rc.3' -> ('rc', 3); other prerelease shapes -> None."""
    if not version.prerelease:
        return None
    head, _, number = version.prerelease.rpartition(".")
    if head and number.isdigit():
        return head, int(number)
    return None


def next_version(
    current: Version, bump: str, pre: str | None = None, default_pre: str = "rc"
) -> Version:
    """The next version; never lower than or equal to `current`.

    - patch/minor/major without --pre: a stable bump, or the promotion of a prerelease
      (1.3.0-rc.2 --bump minor -> 1.3.0);
    - patch/minor/major with --pre ID: the first prerelease of that bump (1.2.3 -> 1.3.0-rc.1),
      or the next one when current already is a prerelease of that release (1.3.0-rc.1 -> rc.2);
    - prerelease: the next number of the current prerelease, keeping its identifier unless
      --pre names another (1.0.0-beta.2 -> 1.0.0-beta.3), or the first prerelease of the next
      patch for a stable version, with `default_pre` (3.4.5 -> 3.4.6-rc.1, guarding semver's
      3.4.5-rc.1).
    """
    check_bump(bump)
    if bump == "auto":
        raise AgentImageError("resolve --bump auto from the commits first", ExitCode.USAGE)
    if pre is not None:
        check_pre_id(pre)
    if bump == "prerelease":
        parts = _pre_parts(current)
        if parts is None:
            base = current.finalize_version() if current.prerelease else current.bump_patch()
            ident = pre or default_pre
            if current.prerelease and Version.parse(f"{base}-{ident}.1") <= current:
                base = base.bump_patch()
            result = Version.parse(f"{base}-{ident}.1")
        else:
            ident, number = parts
            base = current.finalize_version()
            if pre is None or pre == ident:
                result = Version.parse(f"{base}-{ident}.{number + 1}")
            else:
                result = Version.parse(f"{base}-{pre}.1")
    else:
        target = _release_bump(current, bump)
        if pre is None:
            result = target
        else:
            parts = _pre_parts(current)
            if (
                current.prerelease
                and current.finalize_version() == target
                and parts
                and (parts[0] == pre)
            ):
                result = Version.parse(f"{target}-{pre}.{parts[1] + 1}")
            else:
                result = Version.parse(f"{target}-{pre}.1")
    if result <= current:
        raise AgentImageError(
            f"--bump {bump}{' --pre ' + pre if pre else ''} from {current} gives {result}, which "
            "does not sort above it; pick a later prerelease identifier or another bump",
        )
    return result


@dataclass(frozen=True)
class ConventionalCommit:
    """A commit message read as a conventional commit: `type(scope)!: description`, and a
    `BREAKING CHANGE: note` footer."""

    type: str  # lower case: feat, fix, perf, docs...
    scope: str
    description: str
    breaking: bool  # `!` before the colon, or a BREAKING CHANGE footer
    breaking_note: str  # the footer's text ("" without one)


def parse_commit(message: str) -> ConventionalCommit | None:
    """The conventional commit MESSAGE is, or None when its subject is not one."""
    match = _CONVENTIONAL.match(message.lstrip())
    if not match:
        return None
    footer = _BREAKING.search(message)
    return ConventionalCommit(
        type=match["type"].lower(),
        scope=match["scope"] or "",
        description=match["description"].strip(),
        breaking=bool(match["bang"] or footer),
        breaking_note=footer["note"].strip() if footer else "",
    )


def classify_commit(message: str) -> str | None:
    """Conventional commit -> 'major' | 'minor' | 'patch' | None (not releasable)."""
    commit = parse_commit(message)
    if commit is None:
        return None
    if commit.breaking:
        return "major"
    if commit.type == "feat":
        return "minor"
    if commit.type in ("fix", "perf"):
        return "patch"
    return None


def bump_from_commits(messages: Iterable[str]) -> str | None:
    """The largest bump any commit asks for, or None when nothing is releasable."""
    best: str | None = None
    for message in messages:
        kind = classify_commit(message)
        if kind and (best is None or _RANK[kind] > _RANK[best]):
            best = kind
    return best


def dev_version(base: Version | None, distance: int, short_sha: str, dirty: bool) -> str:
    """A describe-like version for a build that is not exactly a release.

    On the release commit: '0.2.13'; N commits after v0.2.13: '0.2.14-dev.N+g1a2b3c4';
    after a prerelease v0.3.0-rc.1: '0.3.0-rc.1.dev.N+g...'; a dirty tree adds '.dirty'.
    """
    base = base or Version(0, 0, 0)
    build = f"g{short_sha}" + (".dirty" if dirty else "")
    if distance == 0:
        return f"{base}+{build}" if dirty else str(base)
    if base.prerelease:
        return f"{base}.dev.{distance}+{build}"
    return f"{base.bump_patch()}-dev.{distance}+{build}"


def read_version_file(path: Path) -> Version:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise AgentImageError(
            f"{path.name} is missing; create it with the last released version, e.g. 0.1.0",
            ExitCode.GIT_STATE,
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentImageError(
            f"{path.name} cannot be read ({exc}); fix the file", ExitCode.GIT_STATE
        ) from exc
    text = raw[:-1] if raw.endswith("\n") else raw
    if not text.strip():
        raise AgentImageError(
            f"{path.name} is empty; write the last released version, e.g. 0.1.0", ExitCode.GIT_STATE
        )
    return parse_version(text, what=f"{path.name} content")


def write_version_file(path: Path, version: Version) -> None:
    """Atomically replace VERSION."""
    write_atomically(path, f"{version}\n")


def write_atomically(path: Path, text: str) -> None:
    """Replace PATH with TEXT whole or not at all (temp file in the same directory, then
    os.replace), keeping its mode; a new file gets 0644."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
