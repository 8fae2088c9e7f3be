"""The release plan as data: what `invoke release` will do, decided from git, the remote and
the registry, changing nothing. Every guard either raises (a real run stops at the first)
or is collected (a dry run shows them all after the plan).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import git

from agentimage import (
    changelog,
    cosign,
    gitinfo,
    imagebuild,
    lines,
    releasestate,
    versioning,
    vulnscan,
)
from agentimage.config import image_repository
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagetools import Registry
from agentimage.labels import Identity
from agentimage.releaseguards import (
    VERSION_FILE,
    check_changelog,
    check_clean_branch,
    check_remote,
    check_tag_agrees,
    release_commit,
    release_of_tag,
    resolve_bump,
    tag_signing,
)
from agentimage.tags import ReleaseTags, release_tags, sha_tag, version_tag

T = TypeVar("T")


@dataclass(frozen=True)
class ReleaseSettings:
    bump: str
    pre: str | None  # --pre as given; None keeps the current prerelease identifier
    push: bool
    image_name: str
    registry: str
    branch: str
    remote: str
    test_command: str
    build: imagebuild.BuildOptions  # the default Node line's
    identity: Identity = field(default_factory=Identity)  # title, description, licenses...
    # Empty: publish the tested host-platform image with docker push. Otherwise the sha tag
    # is pushed as a manifest list of these platforms, built by buildx from the same inputs.
    platforms: tuple[str, ...] = ()
    default_pre: str = "rc"  # identifier for a first prerelease when --pre is not given
    test_timeout: float = 1800.0
    push_timeout: float = 600.0
    publish_only: str = ""  # vX.Y.Z: publish this --no-push release instead of making one
    # The Dockerfile's other Node lines, released with the default one (`build`) in one
    # release: each its own image, tested and tagged with its suffix (tags.py).
    other_lines: tuple[imagebuild.BuildOptions, ...] = ()

    @property
    def all_lines(self) -> tuple[imagebuild.BuildOptions, ...]:
        return (self.build, *self.other_lines)

    def for_line(self, line: str) -> ReleaseSettings:
        """These settings as one line's release steps see them: its build options."""
        options = next((o for o in self.all_lines if o.line == line), self.build)
        return replace(self, build=options, other_lines=())

    signing_key: str = ""  # cosign key reference; "": the SBOM is attached unsigned
    public_key: str = ""  # cosign.pub that must be the signing key's public half ("": any)
    vulnerability_scan: str = "auto"  # auto | required | off (vulnscan)
    vulnerability_fail_on: str = "high"


@dataclass(frozen=True)
class ReleasePlan:
    current: versioning.Version
    version: versioning.Version
    bump: str
    branch: str
    remote: str
    head_sha: str  # HEAD when planned: where a rollback returns
    source_sha: str  # the commit the image is built from
    created: str
    repository: str  # registry-qualified image repository (bare for --no-push)
    tags: ReleaseTags
    push: bool
    mode: str = "new"  # new: commit and tag; resume / publish: the release commit exists
    release_sha: str = ""  # the release commit when it exists already
    pushed_digest: str = ""  # the image already in the registry for this release
    version_published: bool = False  # vX.Y.Z already names that image
    remote_has_release: bool = False
    floating_done: bool = False  # every floating tag to move already names the image
    sign_key: str | None = None  # None: annotated tag; "": signed, default key; else the key
    local_image: str = ""  # --publish-only: the tested image in the local store
    base_digest: str = ""  # what the base image resolved to: the build is pinned to it
    notes: tuple[changelog.Entry, ...] = ()  # breaking changes, features, fixes since the last
    released_on: str = ""  # YYYY-MM-DD (UTC): the CHANGELOG.md section's date
    signing_key: str = ""  # the checked cosign key reference ("": no signing)
    public_key: str = ""  # its public half (PEM), what verification uses
    scan: vulnscan.Gate = field(default_factory=lambda: vulnscan.Gate("", "not planned"))
    supply_done: bool = False  # the pushed image already carries its verified SBOM/signatures
    problems: tuple[AgentImageError, ...] = field(default=())
    # The Node line this plan releases ("" when the project has a single line), whether it
    # is the default line (bare tag names), and the plans of the other lines: one release.
    line: str = ""
    default: bool = True
    others: tuple[ReleasePlan, ...] = ()

    @property
    def all_lines(self) -> tuple[ReleasePlan, ...]:
        return (self, *self.others)

    @property
    def suffix(self) -> str:
        """The line's tag suffix (-node<line>); the default line's bare tags have none."""
        return lines.suffix(self.line) if self.line else ""

    @property
    def own_suffix(self) -> str:
        return "" if self.default else self.suffix

    @property
    def git_tag(self) -> str:
        return versioning.tag_name(self.version)

    @property
    def version_tag(self) -> str:
        """vX.Y.Z, or vX.Y.Z-node<line> for another line than the default."""
        return version_tag(self.version) + self.own_suffix

    @property
    def version_tags(self) -> tuple[str, ...]:
        """Every immutable version name of this line's image (the default line's also
        carries its suffixed name)."""
        extra = version_tag(self.version) + self.suffix
        return (self.version_tag, extra) if extra != self.version_tag else (self.version_tag,)

    @property
    def test_ref(self) -> str:
        return f"{self.repository}:{sha_tag(self.source_sha)}{self.own_suffix}"

    def ref(self, tag: str) -> str:
        return f"{self.repository}:{tag}"

    def changelog_section(self) -> str:
        return changelog.section(self.git_tag, self.released_on, self.notes)

    def tag_message(self) -> str:
        return changelog.tag_message(self.git_tag, self.notes)


class Preconditions:
    """Guards in order: raise the first (collect=False) or gather all for a dry run."""

    def __init__(self, collect: bool) -> None:
        self.collect = collect
        self.failed: list[AgentImageError] = []

    def check(self, guard: Callable[..., T], *args: object) -> T | None:
        try:
            return guard(*args)
        except AgentImageError as exc:
            if not self.collect:
                raise
            self.failed.append(exc)
            return None


def git_release_tags(repo: git.Repo) -> list[str]:
    return [t[1:] for t in gitinfo.all_release_tags(repo)]


def plan_base(
    repo: git.Repo,
    settings: ReleaseSettings,
    current: versioning.Version,
    version: versioning.Version,
    source: git.Commit,
) -> ReleasePlan:
    """The plan of the default line, with a plan for each other line (the same release: one
    version, one git tag; each line its own image and tags)."""
    repository = image_repository(settings.image_name, settings.registry if settings.push else "")
    git_tags = git_release_tags(repo)
    line = settings.build.line
    signing_key = settings.signing_key if settings.push else ""  # no push: nothing to sign
    key, public_key = cosign.open_signing_key(signing_key, settings.public_key)
    plan = ReleasePlan(
        current=current,
        version=version,
        bump=settings.bump,
        branch=settings.branch,
        remote=settings.remote,
        head_sha=repo.head.commit.hexsha,
        source_sha=source.hexsha,
        created=gitinfo.rfc3339(source.committed_datetime),
        repository=repository,
        tags=release_tags(version, source.hexsha, git_tags, lines.suffix(line)),
        push=settings.push,
        sign_key=tag_signing(repo),
        line=line,
        signing_key=key,
        public_key=public_key,
    )
    others = tuple(line_plan(plan, options.line, git_tags) for options in settings.other_lines)
    return replace(plan, others=others)


def line_plan(plan: ReleasePlan, line: str, git_tags: list[str]) -> ReleasePlan:
    """Another line's plan in the default line's release: its own image and tags."""
    other = replace(plan, line=line, default=False, others=())
    return replace(
        other, tags=release_tags(plan.version, plan.source_sha, git_tags, other.suffix, False)
    )


def each_line(plan: ReleasePlan, change: Callable[[ReleasePlan], ReleasePlan]) -> ReleasePlan:
    """`change` applied to the plan of every line."""
    return replace(change(plan), others=tuple(change(other) for other in plan.others))


def plan_release(
    root: Path, settings: ReleaseSettings, registry: Registry, guards: Preconditions
) -> ReleasePlan:
    """Every guard, then the plan. Reads git, the remote and the registry; changes nothing."""
    if settings.pre is not None:
        versioning.check_pre_id(settings.pre)
    repo = gitinfo.open_repo(root)
    root = Path(str(repo.working_tree_dir))
    if settings.push and not settings.registry:
        raise AgentImageError(
            "no registry configured to push to; pass --registry HOST[:PORT] or --no-push"
        )
    if settings.publish_only:
        return plan_publish(root, repo, settings, registry, guards)
    versioning.check_bump(settings.bump)
    guards.check(check_clean_branch, repo, settings.branch)
    current = versioning.read_version_file(root / VERSION_FILE)
    guards.check(check_tag_agrees, repo, current)
    resumed = plan_resume(root, repo, settings, registry, guards)
    if resumed is not None:
        return resumed
    bump = resolve_bump(repo, settings.bump)
    version = versioning.next_version(current, bump, settings.pre, settings.default_pre)
    plan = replace(
        plan_base(repo, settings, current, version, repo.head.commit),
        bump=bump,
        notes=changelog.entries(gitinfo.commits_since(repo, gitinfo.last_release(repo))),
        released_on=datetime.now(UTC).date().isoformat(),
    )
    if plan.git_tag in repo.tags:
        guards.check(_refuse_local_tag, plan.git_tag)
    guards.check(check_changelog, root, plan.git_tag)
    if not settings.push:
        return plan
    guards.check(check_remote, root, repo, plan.remote, plan.branch, plan.git_tag, "")
    return with_registry(plan, repo, registry, guards)


def with_registry(
    plan: ReleasePlan, repo: git.Repo, registry: Registry, guards: Preconditions
) -> ReleasePlan:
    """The plan with the registry's state, or as it is when the registry cannot be read (a
    dry run then still shows what would be pushed)."""
    failed = len(guards.failed)
    guards.check(registry.check_access, plan.repository, plan.version_tag)
    if len(guards.failed) > failed:
        return plan
    git_tags = git_release_tags(repo)
    found = guards.check(releasestate.lines_registry_state, plan, registry, git_tags) or plan
    return each_line(found, lambda one: releasestate.supply_state(one, registry))


def _refuse_local_tag(tag: str) -> None:
    raise AgentImageError(
        f"git tag {tag} already exists locally; delete it (git tag -d {tag}) or bump further",
        ExitCode.GIT_STATE,
    )


def of_release_commit(
    repo: git.Repo,
    settings: ReleaseSettings,
    commit: git.Commit,
    version: versioning.Version,
    *,
    mode: str,
) -> ReleasePlan:
    """The plan of a release whose commit exists: its image is built from the parent."""
    base = plan_base(repo, settings, version, version, commit.parents[0])
    return replace(base, bump=mode, mode=mode, release_sha=commit.hexsha)


def plan_resume(
    root: Path,
    repo: git.Repo,
    settings: ReleaseSettings,
    registry: Registry,
    guards: Preconditions,
) -> ReleasePlan | None:
    """A plan that finishes the release HEAD records, or None when there is none to finish.

    Git is pushed before vX.Y.Z is tagged in the registry, so a release commit whose image
    (sha-<7> of its parent) is in the registry was interrupted after its build: finish it.
    """
    found = release_commit(repo, "HEAD")
    if found is None or not settings.push:
        return None
    plan = of_release_commit(repo, settings, *found, mode="resume")
    remote_has = check_remote(root, repo, plan.remote, plan.branch, plan.git_tag, plan.release_sha)
    registry.check_access(plan.repository, plan.version_tag)
    plan = each_line(
        releasestate.lines_registry_state(plan, registry, git_release_tags(repo)),
        lambda one: replace(one, remote_has_release=remote_has),
    )
    plan = each_line(plan, lambda one: releasestate.supply_state(one, registry))
    if not plan.pushed_digest:
        if remote_has:
            raise AgentImageError(
                f"release {plan.git_tag} is in git but its image {plan.test_ref} is not in the "
                f"registry; push that image (invoke buildx --registry {settings.registry}), then "
                "re-run invoke release",
                ExitCode.REGISTRY,
            )
        return None  # a local (--no-push) release: publish it with --publish-only
    if remote_has and all(one.version_published and one.floating_done for one in plan.all_lines):
        return None
    return plan


def plan_publish(
    root: Path,
    repo: git.Repo,
    settings: ReleaseSettings,
    registry: Registry,
    guards: Preconditions,
) -> ReleasePlan:
    """Publish a release made with --no-push: its tested image from the local store."""
    found = release_of_tag(repo, settings.publish_only, "invoke release --no-push")
    plan = of_release_commit(repo, settings, *found, mode="publish")
    local = image_repository(settings.image_name)
    remote_has = guards.check(
        check_remote, root, repo, plan.remote, plan.branch, plan.git_tag, plan.release_sha
    )
    plan = each_line(
        plan,
        lambda one: replace(
            one,
            local_image=f"{local}:{sha_tag(one.source_sha)}{one.own_suffix}",
            remote_has_release=bool(remote_has),
        ),
    )
    return with_registry(plan, repo, registry, guards)
