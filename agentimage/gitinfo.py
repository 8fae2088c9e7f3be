"""What git says about the source: commit, branch, cleanliness, tags, describe-like version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import git

from agentimage import versioning
from agentimage.errors import AgentImageError, ExitCode

TAG_GLOB = "v[0-9]*"


@dataclass(frozen=True)
class SourceInfo:
    sha: str
    branch: str | None  # None on a detached HEAD
    dirty: bool  # tracked changes or untracked files
    created: str  # commit time, RFC 3339 UTC
    version: str  # exact release, or 0.2.14-dev.3+g1a2b3c4[.dirty]


def open_repo(path: Path) -> git.Repo:
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise AgentImageError(
            f"{path} is not inside a git repository; run from a clone of the image repository",
            ExitCode.GIT_STATE,
        ) from exc
    if not repo.head.is_valid():
        raise AgentImageError(
            "the repository has no commits yet; commit the sources first", ExitCode.GIT_STATE
        )
    return repo


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_dirty(repo: git.Repo) -> bool:
    return repo.is_dirty(untracked_files=True)


def dirty_paths(repo: git.Repo, limit: int = 3) -> list[str]:
    lines = repo.git.status("--porcelain", "--untracked-files=all").splitlines()
    return [line[3:] for line in lines[:limit]]


def release_tags_merged(repo: git.Repo, rev: str = "HEAD") -> list[str]:
    """Release tag names (vX.Y.Z...) reachable from rev."""
    out = repo.git.tag("--list", TAG_GLOB, "--merged", rev)
    return [t for t in out.splitlines() if versioning.version_from_tag(t.strip())]


def all_release_tags(repo: git.Repo) -> list[str]:
    return [t.name for t in repo.tags if versioning.version_from_tag(t.name)]


def last_release(repo: git.Repo, rev: str = "HEAD") -> versioning.Version | None:
    return versioning.latest_tagged(release_tags_merged(repo, rev))


def distance(repo: git.Repo, since: versioning.Version | None, rev: str = "HEAD") -> int:
    span = f"{versioning.tag_name(since)}..{rev}" if since else rev
    return int(repo.git.rev_list("--count", span))


def commits_since(
    repo: git.Repo, since: versioning.Version | None, rev: str = "HEAD"
) -> list[tuple[str, str]]:
    """(sha, message) of each commit after the release `since` (all without one), newest
    first."""
    span = f"{versioning.tag_name(since)}..{rev}" if since else rev
    return [(c.hexsha, str(c.message)) for c in repo.iter_commits(span)]


def commit_messages_since(
    repo: git.Repo, since: versioning.Version | None, rev: str = "HEAD"
) -> list[str]:
    return [message for _, message in commits_since(repo, since, rev)]


def source_info(repo: git.Repo, base: versioning.Version | None = None) -> SourceInfo:
    """Describe HEAD. `base` is the version when no release tag exists (the VERSION file)."""
    commit = repo.head.commit
    last = last_release(repo)
    dirty = is_dirty(repo)
    if last is None:
        # no tag yet: VERSION is the base, every commit counts as distance
        dist = int(repo.git.rev_list("--count", "HEAD"))
        last = base
    else:
        dist = distance(repo, last)
    branch = None if repo.head.is_detached else repo.active_branch.name
    return SourceInfo(
        sha=commit.hexsha,
        branch=branch,
        dirty=dirty,
        created=rfc3339(commit.committed_datetime),
        version=versioning.dev_version(last, dist, commit.hexsha[:7], dirty),
    )


def remote_url(repo: git.Repo, remote: str = "origin") -> str:
    try:
        return str(repo.remote(remote).url)
    except ValueError:
        return ""


def source_url(root: Path, configured: str) -> str:
    """The source label: the configured URL, else the origin remote's as https."""
    return configured or https_source(remote_url(open_repo(root)))


def https_source(url: str) -> str:
    """git@github.com:org/repo.git -> https://github.com/org/repo (for the source label)."""
    if url.startswith("git@") and ":" in url:
        host, _, path = url[4:].partition(":")
        url = f"https://{host}/{path}"
    if url.startswith("ssh://git@"):
        url = "https://" + url[len("ssh://git@") :]
    return url.removesuffix(".git")
