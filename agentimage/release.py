"""`invoke release`: the plan as data, then converging steps that each take dry_run.

Order (so a failure never leaves a moved floating tag or a dangling git tag):
  1 preflight    every guard, before anything changes
  2 build        buildx --load, tagged <repo>:sha-<7> of the source commit
  3 test         the configured test command with AGENT_IMAGE=<repo>:sha-<7>
  4 publish      push sha-<7>, then tag vX.Y.Z from it in the registry (one request)
  5 git          write VERSION, commit "release: vX.Y.Z", annotated tag, atomic push
  6 floating     X.Y, X, latest (never backwards) point at vX.Y.Z in the registry
A failure or Ctrl-C in 5 restores the local commit and tag exactly, unless the atomic push
landed: then the release stands and a re-run moves the floating tags. A re-run converges:
immutable tags already pushed for this commit are reused (2-4 skipped); a release commit that
is tagged but not fully published (push failed, floating tags missing) is finished instead of
bumped again.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import git

from agentimage import gitinfo, imagebuild, preflight, versioning
from agentimage.buildx import BuildSpec, buildx_argv
from agentimage.config import image_repository
from agentimage.errors import AgentImageError, ExitCode
from agentimage.labels import DESCRIPTION, ImageMetadata
from agentimage.proc import quote
from agentimage.registry import Registry, split_reference
from agentimage.tags import ReleaseTags, release_tags, sha_tag, version_tag

RELEASE_SUBJECT = re.compile(r"^release: v(?P<version>\S+)$")
VERSION_FILE = "VERSION"
UNCHANGED = "git was not changed; re-run once the registry accepts pushes"
GIT_GRACE = 60  # seconds an interrupted git command gets to finish (a push is atomic)


@dataclass(frozen=True)
class ReleaseSettings:
    bump: str
    pre: str | None
    push: bool
    image_name: str
    registry: str
    branch: str
    remote: str
    test_command: str
    build: imagebuild.BuildOptions
    source_url: str = ""
    # Empty: publish the tested host-platform image with docker push. Otherwise the sha tag
    # is pushed as a manifest list of these platforms, built by buildx from the same inputs
    # (the host half comes from the cache of the image just tested).
    platforms: tuple[str, ...] = ()
    title: str = "agentgate/agent"
    description: str = DESCRIPTION
    licenses: str = "Apache-2.0"


@dataclass(frozen=True)
class Step:
    name: str
    commands: tuple[str, ...]
    skip: str = ""  # why this step does nothing in this plan


@dataclass(frozen=True)
class ReleasePlan:
    current: versioning.Version
    version: versioning.Version
    bump: str
    branch: str
    remote: str
    head_sha: str  # HEAD when the plan was made (rollback point)
    source_sha: str  # the commit the image is built from
    created: str
    repository: str  # registry-qualified image repository
    tags: ReleaseTags
    push: bool
    resume: bool  # HEAD already is the release commit: only finish it
    published: bool  # immutable tags already in the registry for this commit
    remote_has_release: bool
    test_command: str
    build_argv: tuple[str, ...]
    steps: tuple[Step, ...] = field(default=())

    @property
    def git_tag(self) -> str:
        return versioning.tag_name(self.version)

    @property
    def version_tag(self) -> str:
        return version_tag(self.version)

    @property
    def test_ref(self) -> str:
        return f"{self.repository}:{sha_tag(self.source_sha)}"

    def describe(self) -> list[str]:
        kind = "prerelease" if self.version.prerelease else "stable release"
        lines = [
            f"release {self.git_tag} ({kind}; --bump {self.bump} from {self.current})"
            + (" [resuming an unfinished release]" if self.resume else ""),
            f"  branch {self.branch} at {self.head_sha[:7]}, image source {self.source_sha[:7]}",
            f"  image  {self.repository}",
            f"  tags   immutable: {' '.join(self.tags.immutable)}; "
            f"floating: {' '.join(self.tags.floating) or '(none)'}"
            + (
                f"; held back (would go backwards): {' '.join(self.tags.held_back)}"
                if self.tags.held_back
                else ""
            ),
            f"  push   {'yes' if self.push else 'no (--no-push: local only)'}",
        ]
        for number, step in enumerate(self.steps, 1):
            lines.append(
                f"  {number}. {step.name}" + (f"  [skip: {step.skip}]" if step.skip else "")
            )
            lines += [f"       $ {command}" for command in step.commands]
        return lines


# -- planning (read-only) ----------------------------------------------------------------------


def _git_remote_refs(repo: git.Repo, remote: str, *refs: str) -> dict[str, str]:
    try:
        out = repo.git.ls_remote(remote, *refs)
    except git.GitCommandError as exc:
        raise AgentImageError(
            f"git remote {remote!r} is unreachable or missing ({gitinfo_error(exc)}); "
            "check `git remote -v` or pass --no-push",
            ExitCode.GIT_STATE,
        ) from exc
    found = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        found[ref] = sha
    return found


def gitinfo_error(exc: git.GitCommandError) -> str:
    text = str(exc.stderr or exc).strip().splitlines()
    return text[-1].strip().removeprefix("stderr: ").strip("' ") if text else "git failed"


def _check_clean_branch(repo: git.Repo, branch: str) -> str:
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
    return current


def _check_version_agrees(repo: git.Repo, root: Path) -> versioning.Version:
    current = versioning.read_version_file(root / VERSION_FILE)
    last = gitinfo.last_release(repo)
    if last is not None and last != current:
        raise AgentImageError(
            f"{VERSION_FILE} says {current} but the latest release tag is v{last}; make them agree "
            f"(write {last} to {VERSION_FILE}, or tag v{current})",
            ExitCode.GIT_STATE,
        )
    return current


def _resolve_bump(repo: git.Repo, bump: str, current: versioning.Version) -> str:
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


def _existing_tags(repo: git.Repo, registry: Registry | None, image_repo: str) -> list[str]:
    tags = [t[1:] for t in gitinfo.all_release_tags(repo)]
    if registry is not None:
        tags += registry.list_tags(image_repo)
    return tags


def plan_release(
    root: Path,
    settings: ReleaseSettings,
    *,
    registry_factory: Callable[[str], Registry] = Registry,
) -> ReleasePlan:
    """Every guard, then the plan. Reads git, the remote and the registry; changes nothing."""
    versioning.check_bump(settings.bump)
    if settings.pre is not None:
        versioning.check_pre_id(settings.pre)
    repo = gitinfo.open_repo(root)
    root = Path(str(repo.working_tree_dir))
    branch = _check_clean_branch(repo, settings.branch)
    current = _check_version_agrees(repo, root)
    head = repo.head.commit
    repository = image_repository(settings.image_name, settings.registry if settings.push else "")
    registry: Registry | None = None
    image_repo = ""
    if settings.push:
        if not settings.registry:
            raise AgentImageError(
                "no registry configured to push to; pass --registry HOST[:PORT] or --no-push"
            )
        host, image_repo = split_reference(repository)
        registry = registry_factory(host)
        registry.ping(need_push=True)

    resume = _resumable(repo, root, head, settings, registry, image_repo, repository)
    if resume is not None:
        return resume

    bump = _resolve_bump(repo, settings.bump, current)
    version = versioning.next_version(current, bump, settings.pre)
    tag = versioning.tag_name(version)
    if tag in repo.tags:
        raise AgentImageError(
            f"git tag {tag} already exists locally; delete it (git tag -d {tag}) or bump further",
            ExitCode.GIT_STATE,
        )
    remote_has_release = False
    if settings.push:
        refs = _git_remote_refs(repo, settings.remote, f"refs/heads/{branch}", f"refs/tags/{tag}")
        if f"refs/tags/{tag}" in refs:
            raise AgentImageError(
                f"git tag {tag} already exists on {settings.remote}; fetch it (git fetch --tags) "
                "and bump further",
                ExitCode.GIT_STATE,
            )
        remote_head = refs.get(f"refs/heads/{branch}")
        if remote_head and remote_head != head.hexsha and not _is_ancestor(repo, remote_head):
            raise AgentImageError(
                f"{settings.remote}/{branch} has commits that {branch} lacks; "
                f"git pull --ff-only {settings.remote} {branch} first",
                ExitCode.GIT_STATE,
            )

    tags = release_tags(version, head.hexsha, _existing_tags(repo, registry, image_repo))
    published = False
    if registry is not None:
        version_digest = registry.digest(image_repo, version_tag(version))
        if version_digest is not None:
            if version_digest != registry.digest(image_repo, sha_tag(head.hexsha)):
                raise AgentImageError(
                    f"{repository}:{version_tag(version)} already exists in the registry "
                    "with another image; "
                    "released tags are immutable, bump to a later version",
                    ExitCode.REGISTRY,
                )
            published = True
    return _with_steps(
        ReleasePlan(
            current=current,
            version=version,
            bump=bump,
            branch=branch,
            remote=settings.remote,
            head_sha=head.hexsha,
            source_sha=head.hexsha,
            created=gitinfo.rfc3339(head.committed_datetime),
            repository=repository,
            tags=tags,
            push=settings.push,
            resume=False,
            published=published,
            remote_has_release=remote_has_release,
            test_command=settings.test_command,
            build_argv=(),
        ),
        settings,
    )


def _is_ancestor(repo: git.Repo, sha: str) -> bool:
    try:
        return bool(repo.is_ancestor(sha, "HEAD"))
    except git.GitCommandError:
        return False  # the remote commit is not even known locally


def _resumable(
    repo: git.Repo,
    root: Path,
    head: git.Commit,
    settings: ReleaseSettings,
    registry: Registry | None,
    image_repo: str,
    repository: str,
) -> ReleasePlan | None:
    """A plan that finishes the release HEAD already records, or None when it is complete."""
    match = RELEASE_SUBJECT.match(str(head.summary))
    if not match or not head.parents:
        return None
    version = versioning.version_from_tag(f"v{match['version']}")
    tag = f"v{match['version']}"
    if version is None or tag not in repo.tags or repo.tags[tag].commit != head:
        return None
    if not settings.push or registry is None:
        return None  # a local-only release has nothing left to publish
    source = head.parents[0]
    refs = _git_remote_refs(repo, settings.remote, f"refs/tags/{tag}^{{}}")
    remote_has_release = refs.get(f"refs/tags/{tag}^{{}}") == head.hexsha
    tags = release_tags(version, source.hexsha, _existing_tags(repo, registry, image_repo))
    version_digest = registry.digest(image_repo, version_tag(version))
    if version_digest is None:
        if remote_has_release:
            raise AgentImageError(
                f"release {tag} is in git but {repository}:{version_tag(version)} is not in "
                f"the registry; build and push it with invoke buildx --registry "
                f"{settings.registry} --tag {version_tag(version)}",
                ExitCode.REGISTRY,
            )
        return None
    floating_done = all(registry.digest(image_repo, t) == version_digest for t in tags.floating)
    if remote_has_release and floating_done:
        return None
    return _with_steps(
        ReleasePlan(
            current=version,
            version=version,
            bump="resume",
            branch=repo.active_branch.name,
            remote=settings.remote,
            head_sha=head.hexsha,
            source_sha=source.hexsha,
            created=gitinfo.rfc3339(source.committed_datetime),
            repository=repository,
            tags=tags,
            push=True,
            resume=True,
            published=True,
            remote_has_release=remote_has_release,
            test_command=settings.test_command,
            build_argv=(),
        ),
        settings,
    )


def _metadata(plan: ReleasePlan, settings: ReleaseSettings) -> ImageMetadata:
    return ImageMetadata(
        version=str(plan.version),
        revision=plan.source_sha,
        created=plan.created,
        source=settings.source_url,
        variant=settings.build.variant,
        title=settings.title,
        description=settings.description,
        licenses=settings.licenses,
    )


def _with_steps(plan: ReleasePlan, settings: ReleaseSettings) -> ReleasePlan:
    spec = imagebuild.make_spec(
        settings.build, _metadata(plan, settings), [plan.test_ref], load=True
    )
    argv = tuple(buildx_argv(spec))
    done = "already published for this commit by an earlier run" if plan.published else ""
    version_ref = f"{plan.repository}:{plan.version_tag}"
    publish = [f"docker tag {plan.test_ref} {version_ref}"]
    if plan.push:
        publish += [
            quote(buildx_argv(_push_spec(plan, settings)))
            if settings.platforms
            else f"docker push {plan.test_ref}",
            f"registry: tag {version_ref} -> {sha_tag(plan.source_sha)}",
        ]
    git_cmds = (
        []
        if plan.resume
        else [
            f"write {VERSION_FILE} = {plan.version} (temp file + rename)",
            f"git commit -m 'release: {plan.git_tag}' -- {VERSION_FILE}",
            f"git tag -a {plan.git_tag} -m 'release {plan.git_tag}'",
        ]
    )
    if plan.push:
        git_cmds.append(
            f"git push --atomic {plan.remote} refs/heads/{plan.branch} refs/tags/{plan.git_tag}"
        )
    git_skip = "already pushed" if plan.remote_has_release else ""
    floating = [
        (
            f"registry: tag {plan.repository}:{t} -> {plan.version_tag}"
            if plan.push
            else f"docker tag {version_ref} {plan.repository}:{t}"
        )
        for t in plan.tags.floating
    ]
    steps = (
        Step("build", (quote(argv),), done),
        Step("test", (f"AGENT_IMAGE={plan.test_ref} sh -c {quote([plan.test_command])}",), done),
        Step("publish immutable tags", tuple(publish), done),
        Step("git release", tuple(git_cmds), git_skip),
        Step("floating tags", tuple(floating), "" if floating else "prerelease or held back"),
    )
    return ReleasePlan(**{**plan.__dict__, "build_argv": argv, "steps": steps})


# -- execution ---------------------------------------------------------------------------------


def _say(message: str) -> None:
    print(f"release: {message}", file=sys.stderr, flush=True)


def _docker(*args: str, failure: str, code: ExitCode = ExitCode.PUBLISH_FAILED) -> None:
    result = subprocess.run(["docker", *args], text=True, capture_output=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise AgentImageError(f"{failure}: {detail[-1] if detail else 'docker failed'}", code)


def step_build(plan: ReleasePlan, settings: ReleaseSettings, root: Path, dry_run: bool) -> None:
    if plan.published or dry_run:
        return
    spec = imagebuild.make_spec(
        settings.build, _metadata(plan, settings), [plan.test_ref], load=True
    )
    imagebuild.run_build(spec, settings.build.variant, root)


def step_test(plan: ReleasePlan, root: Path, dry_run: bool) -> None:
    if plan.published or dry_run:
        return
    _say(f"testing {plan.test_ref}: {plan.test_command}")
    env = {**os.environ, "AGENT_IMAGE": plan.test_ref}
    result = subprocess.run(["sh", "-c", plan.test_command], cwd=root, env=env, check=False)
    if result.returncode != 0:
        raise AgentImageError(
            f"image tests failed for {plan.test_ref} (exit {result.returncode}); nothing was "
            "published or committed: fix the image and re-run invoke release",
            ExitCode.TEST_FAILED,
        )


def _refuse_if_released(registry: Registry, image_repo: str, plan: ReleasePlan) -> None:
    if registry.digest(image_repo, plan.version_tag) is not None:  # someone released meanwhile
        raise AgentImageError(
            f"{plan.repository}:{plan.version_tag} appeared in the registry during this release; "
            f"another release won: git pull --ff-only {plan.remote} {plan.branch} and bump again",
            ExitCode.REGISTRY,
        )


def _push_spec(plan: ReleasePlan, settings: ReleaseSettings) -> BuildSpec:
    """The multi-platform build that pushes the sha tag as a manifest list."""
    return imagebuild.make_spec(
        settings.build,
        _metadata(plan, settings),
        [plan.test_ref],
        platforms=settings.platforms,
        push=True,
    )


def _push_sha_tag(plan: ReleasePlan, settings: ReleaseSettings, root: Path) -> None:
    if not settings.platforms:
        _docker(
            "push",
            "--quiet",
            plan.test_ref,
            failure=f"pushing {plan.test_ref} failed ({UNCHANGED})",
        )
        return
    try:
        imagebuild.run_build(_push_spec(plan, settings), settings.build.variant, root)
    except AgentImageError as exc:
        raise AgentImageError(
            f"pushing {plan.test_ref} for {','.join(settings.platforms)} failed ({UNCHANGED}): "
            f"{exc.message}",
            ExitCode.PUBLISH_FAILED,
        ) from exc


def step_publish(
    plan: ReleasePlan,
    settings: ReleaseSettings,
    registry: Registry | None,
    root: Path,
    dry_run: bool,
) -> None:
    if plan.published or dry_run:
        return
    version_ref = f"{plan.repository}:{plan.version_tag}"
    _docker("tag", plan.test_ref, version_ref, failure=f"cannot tag {version_ref}")
    if not plan.push or registry is None:
        return
    _, image_repo = split_reference(plan.repository)
    version = plan.version_tag
    _refuse_if_released(registry, image_repo, plan)
    _say(f"pushing {plan.test_ref}")
    _push_sha_tag(plan, settings, root)
    _refuse_if_released(registry, image_repo, plan)
    # vX.Y.Z is one manifest copy of the pushed sha tag right after the last check: two racing
    # releases overlap there for one request, not for a whole image push
    _say(f"tagging {version_ref}")
    try:
        registry.retag(image_repo, sha_tag(plan.source_sha), version)
    except AgentImageError as exc:
        raise AgentImageError(
            f"{exc.message} (tagging {version_ref}; {UNCHANGED})", ExitCode.PUBLISH_FAILED
        ) from exc


def _git(root: Path, *args: str) -> str:
    """Run git in its own session and return its stdout.

    Ctrl-C in a terminal signals the whole foreground process group; git started here is
    outside it, so a commit, tag or atomic push is never cut in half. After an interrupt the
    command is allowed to finish, and the caller then decides from the real state what to keep.
    """
    argv = ["git", *args]
    with _interrupts_held() as held:  # never lose track of a git started as Ctrl-C arrives
        process = subprocess.Popen(
            argv,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    try:
        if held:
            raise KeyboardInterrupt
        out, err = process.communicate()
    except KeyboardInterrupt:
        _say(f"interrupted: letting git {args[0]} finish before deciding what to keep")
        try:
            process.communicate(timeout=GIT_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        raise
    if process.returncode != 0:
        raise git.GitCommandError(argv, process.returncode, err, out)
    return out


def _remote_has_release(repo: git.Repo, root: Path, plan: ReleasePlan) -> bool:
    """Does the remote hold the release tag on the local release commit (the push landed)?

    Fresh git processes only: Ctrl-C also ended GitPython's long-lived `git cat-file`.
    """
    try:
        refs = _git_remote_refs(repo, plan.remote, f"refs/tags/{plan.git_tag}^{{}}")
        head = _git(root, "rev-parse", "HEAD").strip()
    except (AgentImageError, git.GitCommandError, OSError):
        return False
    return refs.get(f"refs/tags/{plan.git_tag}^{{}}") == head


@contextmanager
def _interrupts_held() -> Iterator[list[int]]:
    """Hold SIGINT (Ctrl-C) through a short critical section: starting git, or a rollback."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: held.append(signum))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)


def step_git(plan: ReleasePlan, repo: git.Repo, root: Path, dry_run: bool) -> None:
    if dry_run:
        return
    tag = plan.git_tag
    created_commit = created_tag = pushing = False
    try:
        if not plan.resume:
            versioning.write_version_file(root / VERSION_FILE, plan.version)
            _git(root, "add", "--", VERSION_FILE)
            _git(root, "commit", "-q", "-m", f"release: {tag}", "--", VERSION_FILE)
            created_commit = True
            _git(root, "tag", "-a", tag, "-m", f"release {tag}")
            created_tag = True
        if plan.push and not plan.remote_has_release:
            _say(f"pushing {plan.branch} and {tag} to {plan.remote}")
            pushing = True
            _git(
                root,
                "push",
                "--atomic",
                plan.remote,
                f"refs/heads/{plan.branch}",
                f"refs/tags/{tag}",
            )
    except (git.GitCommandError, OSError, KeyboardInterrupt) as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        with _interrupts_held() as held:
            landed = pushing and _remote_has_release(repo, root, plan)
            if not landed and not plan.resume:
                _rollback(repo, root, plan, created_tag=created_tag, created_commit=created_commit)
        interrupted = interrupted or bool(held)
        if landed:
            if interrupted:
                raise AgentImageError(
                    f"interrupted after {tag} was pushed to {plan.remote}; re-run invoke release "
                    "to move the floating tags",
                    ExitCode.INTERRUPTED,
                ) from None
            return  # the push reported an error but the remote has the release: go on
        if interrupted:
            raise AgentImageError(
                f"interrupted while recording {tag} in git; git and {VERSION_FILE} were restored "
                "(images already pushed are reused): re-run invoke release",
                ExitCode.INTERRUPTED,
            ) from None
        detail = gitinfo_error(exc) if isinstance(exc, git.GitCommandError) else str(exc)
        raise AgentImageError(
            f"recording {tag} in git failed ({detail}); git and {VERSION_FILE} were restored, "
            "re-run invoke release once the cause is fixed",
            ExitCode.PUBLISH_FAILED,
        ) from exc


def _rollback(
    repo: git.Repo, root: Path, plan: ReleasePlan, *, created_tag: bool, created_commit: bool
) -> None:
    try:
        if created_tag or _git(root, "tag", "--list", plan.git_tag).strip():
            _git(root, "tag", "-d", plan.git_tag)
        # the tree was clean before (a guard), so a hard reset restores VERSION and HEAD exactly
        _git(root, "reset", "-q", "--hard", plan.head_sha)
    except (git.GitCommandError, OSError) as exc:
        detail = gitinfo_error(exc) if isinstance(exc, git.GitCommandError) else str(exc)
        raise AgentImageError(
            f"recording {plan.git_tag} in git failed and so did the rollback ({detail}); restore "
            f"by hand: git tag -d {plan.git_tag}; git reset --hard {plan.head_sha[:12]}",
            ExitCode.PUBLISH_FAILED,
        ) from exc
    _say(
        f"rolled back: HEAD at {plan.head_sha[:7]}, tag {plan.git_tag} removed"
        if created_commit
        else "rolled back VERSION"
    )


def step_floating(plan: ReleasePlan, registry: Registry | None, dry_run: bool) -> None:
    if dry_run:
        return
    version_ref = f"{plan.repository}:{plan.version_tag}"
    for tag in plan.tags.floating:
        if plan.push and registry is not None:
            # from vX.Y.Z, not from sha-<7>: a release of the same commit racing this one (and
            # losing in git) may push sha-<7> again, an equivalent image with another digest
            _, image_repo = split_reference(plan.repository)
            registry.retag(image_repo, plan.version_tag, tag)
        else:
            _docker("tag", version_ref, f"{plan.repository}:{tag}", failure=f"cannot tag {tag}")
    if plan.tags.floating:
        _say(f"moved {', '.join(plan.tags.floating)} to {plan.version}")


def execute(
    plan: ReleasePlan,
    settings: ReleaseSettings,
    root: Path,
    *,
    dry_run: bool = False,
    registry_factory: Callable[[str], Registry] = Registry,
) -> None:
    """Run the converging steps in order; each is a no-op under dry_run."""
    repo = gitinfo.open_repo(root)
    root = Path(str(repo.working_tree_dir))
    registry = None
    if plan.push:
        registry = registry_factory(split_reference(plan.repository)[0])
    recorded = False
    try:
        if not dry_run and not plan.published:
            preflight.cli_version(settings.build.claude_code_version)
            preflight.build_environment(settings.build.builder)
        step_build(plan, settings, root, dry_run)
        step_test(plan, root, dry_run)
        step_publish(plan, settings, registry, root, dry_run)
        step_git(plan, repo, root, dry_run)
        recorded = True
        step_floating(plan, registry, dry_run)
    except KeyboardInterrupt:
        if recorded and not plan.push:
            raise AgentImageError(
                f"interrupted after {plan.git_tag} was recorded in git (local release); finish "
                f"with docker tag {plan.repository}:{plan.version_tag} {plan.repository}:TAG for "
                f"{' '.join(plan.tags.floating)}",
                ExitCode.INTERRUPTED,
            ) from None
        if recorded:
            raise AgentImageError(
                f"interrupted after {plan.git_tag} was recorded in git; re-run invoke release "
                "to move the floating tags",
                ExitCode.INTERRUPTED,
            ) from None
        raise AgentImageError(
            f"interrupted before {plan.git_tag} was recorded: git and {VERSION_FILE} are "
            "unchanged, latest did not move; re-run invoke release",
            ExitCode.INTERRUPTED,
        ) from None
    except AgentImageError as exc:
        if not recorded or exc.code == ExitCode.INTERRUPTED:
            raise
        raise AgentImageError(
            f"{exc.message}; {plan.git_tag} is already recorded in git: re-run invoke release "
            "to move the floating tags",
            exc.code,
        ) from exc
