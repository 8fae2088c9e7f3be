"""The guards a release runs before it changes anything, each one line with its fix: the
branch and tree, VERSION against the tags, the remote, and which commit is a release.
"""

from __future__ import annotations

import re
from pathlib import Path

import git

from agentimage import changelog, gitinfo, gitrun, versioning
from agentimage.errors import AgentImageError, ExitCode

RELEASE_SUBJECT = re.compile(r"^release: v(?P<version>\S+)$")
VERSION_FILE = "VERSION"


def remote_refs(root: Path, remote: str, *refs: str) -> dict[str, str]:
    try:
        out = gitrun.run(root, "ls-remote", remote, *refs)
    except git.GitCommandError as exc:
        raise AgentImageError(
            f"git remote {remote!r} is unreachable or missing ({gitrun.error_line(exc)}); "
            "check `git remote -v` or pass --no-push",
            ExitCode.GIT_STATE,
        ) from exc
    return {ref: sha for sha, _, ref in (line.partition("\t") for line in out.splitlines())}


def check_clean_branch(repo: git.Repo, branch: str) -> None:
    if repo.head.is_detached:
        raise AgentImageError(
            f"HEAD is detached; check out the release branch with git switch {branch}",
            ExitCode.GIT_STATE,
        )
    current = repo.active_branch.name
    if current != branch:
        raise AgentImageError(
            f"on branch {current!r}, not the release branch {branch!r}; git switch {branch} "
            "(or configure release.branch)",
            ExitCode.GIT_STATE,
        )
    if gitinfo.is_dirty(repo):
        paths = ", ".join(gitinfo.dirty_paths(repo))
        raise AgentImageError(
            f"working tree is not clean ({paths}); commit, stash or remove the changes first",
            ExitCode.GIT_STATE,
        )


def check_tag_agrees(repo: git.Repo, current: versioning.Version) -> None:
    last = gitinfo.last_release(repo)
    if last is not None and last != current:
        raise AgentImageError(
            f"{VERSION_FILE} says {current} but the latest release tag is v{last}; make them agree "
            f"(write {last} to {VERSION_FILE}, or tag v{current})",
            ExitCode.GIT_STATE,
        )


def resolve_bump(repo: git.Repo, bump: str) -> str:
    if bump != "auto":
        return bump
    since = gitinfo.last_release(repo)
    messages = gitinfo.commit_messages_since(repo, since)
    resolved = versioning.bump_from_commits(messages)
    if resolved is None:
        where = f"v{since}" if since else "the first commit"
        raise AgentImageError(
            f"nothing releasable since {where} ({len(messages)} commits, none feat/fix/perf or "
            "breaking); pass --bump patch|minor|major to release anyway",
            ExitCode.NOTHING_TO_RELEASE,
        )
    return resolved


def tag_signing(repo: git.Repo) -> str | None:
    """git's own rule: tag.gpgSign signs every annotated tag, with user.signingKey if set."""
    # `git config` itself, so includes, --global and the bool spellings count as git reads them
    sign = repo.git.config("--type=bool", "--get", "tag.gpgSign", with_exceptions=False)
    if sign.strip() != "true":
        return None
    return repo.git.config("--get", "user.signingKey", with_exceptions=False).strip()


def check_remote(
    root: Path, repo: git.Repo, remote: str, branch: str, tag: str, release_sha: str
) -> bool:
    """The remote is reachable, lacks the tag (or holds exactly this release), and holds no
    commit the release lacks. True when the remote already has the release."""
    # one ls-remote, so one password prompt: the branch, the tag and the commit it peels to
    refs = remote_refs(
        root, remote, f"refs/heads/{branch}", f"refs/tags/{tag}", f"refs/tags/{tag}^{{}}"
    )
    tagged = refs.get(f"refs/tags/{tag}^{{}}", refs.get(f"refs/tags/{tag}"))  # annotated or not
    if tagged is not None and tagged == release_sha:
        return True
    if tagged is not None:
        raise AgentImageError(
            f"git tag {tag} already exists on {remote}; fetch it (git fetch --tags) "
            "and bump further",
            ExitCode.GIT_STATE,
        )
    remote_head = refs.get(f"refs/heads/{branch}")
    if remote_head and not _is_ancestor(repo, remote_head, release_sha or "HEAD"):
        raise AgentImageError(
            f"{remote}/{branch} has commits that {branch} lacks; "
            f"git pull --ff-only {remote} {branch} first",
            ExitCode.GIT_STATE,
        )
    return False


def _is_ancestor(repo: git.Repo, sha: str, rev: str) -> bool:
    try:
        return bool(repo.is_ancestor(sha, rev))
    except git.GitCommandError:
        return False  # the remote commit is not even known locally


def release_commit(repo: git.Repo, rev: str) -> tuple[git.Commit, versioning.Version] | None:
    """The release commit `rev` names (subject 'release: vX.Y.Z', tagged vX.Y.Z), or None."""
    commit = repo.commit(rev)
    match = RELEASE_SUBJECT.match(str(commit.summary))
    version = versioning.version_from_tag(f"v{match['version']}") if match else None
    tag = f"v{match['version']}" if match else ""
    if version is None or not commit.parents or tag not in repo.tags:
        return None
    if repo.tags[tag].commit != commit:
        return None
    return commit, version


def release_of_tag(repo: git.Repo, tag: str, made_by: str) -> tuple[git.Commit, versioning.Version]:
    """The release commit the tag vX.Y.Z names, and its version; `made_by` names the
    command whose releases are meant (for the fix in the error)."""
    if versioning.version_from_tag(tag) is None:
        raise AgentImageError(
            f"{tag!r} is not a release tag; pass one like v0.1.1 (git tag --list 'v*')"
        )
    if tag not in repo.tags:
        raise AgentImageError(
            f"git tag {tag} does not exist here; fetch it (git fetch --tags) or pass the tag "
            f"of a release made by {made_by}",
            ExitCode.GIT_STATE,
        )
    found = release_commit(repo, tag)
    if found is None:
        raise AgentImageError(
            f"{tag} does not tag a release commit ('release: {tag}'); pass a tag made by {made_by}",
            ExitCode.GIT_STATE,
        )
    return found


def check_changelog(root: Path, tag: str) -> None:
    """The release writes its own CHANGELOG.md section; one already there is refused."""
    path = root / changelog.CHANGELOG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentImageError(
            f"{path.name} cannot be read ({exc}); fix the file", ExitCode.GIT_STATE
        ) from exc
    if changelog.has_section(text, tag):
        raise AgentImageError(
            f"{path.name} already has a section for {tag}; remove it (the release writes it "
            "from the commits) and commit",
            ExitCode.GIT_STATE,
        )
