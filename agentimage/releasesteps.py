"""The release steps, in the order that keeps a release from existing in one place only.

  build      buildx --load, tagged <repo>:sha-<7> of the source commit
  test       the test command with AGENT_IMAGE=<repo>:sha-<7>
  push       push sha-<7>: a build of a commit, not yet a release (as invoke buildx pushes)
  supply     SBOM per platform, vulnerability scan, signatures and attestations, all verified
  git        VERSION, commit "release: vX.Y.Z", tag, one atomic push: the release exists now
  version    vX.Y.Z in the registry names the pushed digest
  floating   X.Y, X, latest, each re-read right before it moves and never moved backwards

Git is the one place a release is decided: its atomic push either lands or not, and only
after it lands is vX.Y.Z written to the registry. Recovery rule: before the git push lands
nothing is released anywhere (git is rolled back; a re-run reuses the pushed sha-<7> and
makes the same version); after it lands, a plain re-run finds the release commit and
finishes the registry side. Each step calls only its runner, so a dry run is these same
functions with a RecordingRunner.

Every Node line of the Dockerfile is one image of the same release: each step but git runs
for each line in turn (all lines are built and tested before anything is pushed), git once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import git

from agentimage import changelog, gitinfo, imagebuild, recovery, supplychain, versioning
from agentimage.buildx import BuildSpec
from agentimage.changelog import CHANGELOG_FILE
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagetools import Registry, RemoteImage, Runner
from agentimage.labels import ImageMetadata, labels_from_build_args
from agentimage.releaseguards import VERSION_FILE
from agentimage.releaseplan import ReleasePlan, ReleaseSettings
from agentimage.tags import sha_tag

UNCHANGED = "git was not changed; re-run once the registry accepts pushes"
PUSHED_DIGEST = re.compile(r"digest: (\S+) size: ")


@dataclass
class Context:
    plan: ReleasePlan
    settings: ReleaseSettings
    root: Path
    runner: Runner
    registry: Registry
    digest: str = ""  # the released image's digest, once it is in the registry
    recorded: bool = False  # the release is in git (and on the remote when pushing)
    moved: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (platform, digest) pushed


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Context], None]
    skip: Callable[[ReleasePlan], str]  # why this step does nothing in a plan ("" = it runs)
    once: bool = False  # runs for the release as a whole (git), not for each Node line


def metadata(plan: ReleasePlan, settings: ReleaseSettings) -> ImageMetadata:
    return settings.identity.metadata(
        version=str(plan.version),
        revision=plan.source_sha,
        created=plan.created,
        variant=settings.build.variant,
    )


# Release builds record how they were made: SLSA provenance with the full build definition.
# mode=max lists build args and secret *ids* (never a secret's source or contents); no build
# arg carries a secret (tests/release/test_release_supply_chain.py reads the provenance).
PROVENANCE = "mode=max"


def build_options(plan: ReleasePlan, settings: ReleaseSettings) -> imagebuild.BuildOptions:
    """The build's inputs, with the base pinned to the digest the plan resolved."""
    return replace(settings.build, base_digest=plan.base_digest)


def release_spec(
    plan: ReleasePlan, settings: ReleaseSettings, *, platforms: tuple[str, ...] = ()
) -> BuildSpec:
    """A release build: the base pulled afresh (and pinned), provenance attached. Loaded
    for the host's platform (tested), or pushed for `platforms`."""
    return imagebuild.make_spec(
        build_options(plan, settings),
        metadata(plan, settings),
        [plan.test_ref],
        platforms=platforms,
        load=not platforms,
        push=bool(platforms),
        pull=True,
        provenance=PROVENANCE,
    )


def push_spec(plan: ReleasePlan, settings: ReleaseSettings) -> BuildSpec:
    """The multi-platform build that pushes the sha tag as a manifest list."""
    return release_spec(plan, settings, platforms=settings.platforms)


def build(ctx: Context) -> None:
    spec = release_spec(ctx.plan, ctx.settings)
    ctx.runner.build(spec, ctx.settings.build.variant, ctx.root)


def test_environment(plan: ReleasePlan, settings: ReleaseSettings) -> dict[str, str]:
    """What the test command is told: the image, the labels its build was given, and the
    Node line it was built for."""
    args = imagebuild.build_args(build_options(plan, settings), metadata(plan, settings))
    return {
        "AGENT_IMAGE": plan.test_ref,
        "AGENT_IMAGE_LABELS": json.dumps(labels_from_build_args(args), sort_keys=True),
        "AGENT_NODE_LINE": settings.build.line,
    }


def test(ctx: Context) -> None:
    ref = ctx.plan.test_ref
    ctx.runner.say(f"testing {ref}: {ctx.settings.test_command}")
    try:
        ctx.runner.run(
            ["sh", "-c", ctx.settings.test_command],
            env=test_environment(ctx.plan, ctx.settings),
            cwd=ctx.root,
            stream=True,
            timeout=ctx.settings.test_timeout,
            failure=f"image tests failed for {ref}",
            code=ExitCode.TEST_FAILED,
        )
    except AgentImageError as exc:
        longer = (
            "; raise --test-timeout if they need longer" if "did not finish" in exc.message else ""
        )
        raise AgentImageError(
            f"{exc.message}{longer}; nothing was published or committed: fix the image or the "
            "test command and re-run invoke release",
            ExitCode.TEST_FAILED,
        ) from None


def push(ctx: Context) -> None:
    plan, runner = ctx.plan, ctx.runner
    failure = f"pushing {plan.test_ref} failed ({UNCHANGED})"
    if plan.local_image:
        runner.run(
            ["docker", "tag", plan.local_image, plan.test_ref],
            failure=failure,
            code=ExitCode.PUBLISH_FAILED,
        )
    runner.say(f"pushing {plan.test_ref}")
    # The digest is the one this run pushed, never read back from the tag: docker pushes
    # an index's child manifests to the tag too, so a concurrent push of the same commit
    # can leave sha-<7> naming something else for a moment.
    stand_in = f"<digest-of-{sha_tag(plan.source_sha)}>"
    if ctx.settings.platforms and not plan.local_image:
        try:
            built = runner.build(
                push_spec(plan, ctx.settings), ctx.settings.build.variant, ctx.root
            )
        except AgentImageError as exc:
            raise AgentImageError(f"{failure}: {exc.message}", ExitCode.PUBLISH_FAILED) from None
        ctx.digest = built or stand_in
        return
    out = runner.run(
        ["docker", "push", plan.test_ref],
        failure=failure,
        code=ExitCode.PUBLISH_FAILED,
        timeout=ctx.settings.push_timeout,
        dry_stdout=f"{sha_tag(plan.source_sha)}: digest: {stand_in} size: 0",
    )
    digests = PUSHED_DIGEST.findall(out)
    if not digests:
        raise AgentImageError(f"{failure}: docker push named no digest", ExitCode.PUBLISH_FAILED)
    ctx.digest = digests[-1]


def tag_locally(ctx: Context) -> None:
    """--no-push: the version and floating tags on the tested image, in the local store."""
    plan = ctx.plan
    for tag in (*plan.version_tags, *plan.tags.floating):
        ctx.runner.run(
            ["docker", "tag", plan.test_ref, plan.ref(tag)],
            failure=f"cannot tag {plan.ref(tag)}",
            code=ExitCode.PUBLISH_FAILED,
        )
    ctx.moved += plan.tags.floating


def recheck(ctx: Context) -> None:
    """Build and tests took minutes: the tree and HEAD must still be as planned."""
    repo = gitinfo.open_repo(ctx.root)
    if repo.head.commit.hexsha != ctx.plan.head_sha:
        raise AgentImageError(
            f"HEAD moved during the release (now {repo.head.commit.hexsha[:7]}, planned at "
            f"{ctx.plan.head_sha[:7]}); nothing was recorded: re-run invoke release",
            ExitCode.GIT_STATE,
        )
    if gitinfo.is_dirty(repo):
        raise AgentImageError(
            f"the working tree changed during the release ({', '.join(gitinfo.dirty_paths(repo))}"
            "); nothing was recorded: commit or stash the changes, then re-run invoke release "
            "(the pushed image is reused)",
            ExitCode.GIT_STATE,
        )


def tag_argv(plan: ReleasePlan) -> list[str]:
    """Annotated, or signed as tag.gpgSign / user.signingKey ask (the plan shows which); the
    message lists the release notes, as CHANGELOG.md does."""
    if plan.sign_key is None:
        return ["tag", "-a", plan.git_tag, "-m", plan.tag_message()]
    key = ["-u", plan.sign_key] if plan.sign_key else []
    return ["tag", "-s", *key, plan.git_tag, "-m", plan.tag_message()]


def changelog_text(root: Path, plan: ReleasePlan) -> str:
    """CHANGELOG.md with this release's section on top (what the release commit holds)."""
    try:
        existing: str | None = (root / CHANGELOG_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    return changelog.updated(existing, plan.changelog_section())


def record(ctx: Context) -> None:
    plan, runner, root = ctx.plan, ctx.runner, ctx.root
    if plan.mode == "new" and not runner.dry:
        recheck(ctx)
    pushing = False
    files = (VERSION_FILE, CHANGELOG_FILE)
    try:
        if plan.mode == "new":
            runner.write_version(root / VERSION_FILE, plan.version)
            counts = ", ".join(
                f"{title.lower()} {len([n for n in plan.notes if n.group == group])}"
                for group, title in changelog.GROUPS
            )
            runner.write_text(
                root / CHANGELOG_FILE,
                changelog_text(root, plan),
                f"{plan.git_tag} section on top ({counts})",
            )
            runner.git(root, "add", "--", *files)
            runner.git(root, "commit", "-q", "-m", f"release: {plan.git_tag}", "--", *files)
            runner.git(root, *tag_argv(plan))
        if plan.push and not plan.remote_has_release:
            branch = f"{plan.release_sha}:" if plan.mode == "publish" else ""
            runner.say(f"pushing {plan.branch} and {plan.git_tag} to {plan.remote}")
            pushing = True
            runner.git(
                root,
                "push",
                "--atomic",
                plan.remote,
                f"{branch}refs/heads/{plan.branch}",
                f"refs/tags/{plan.git_tag}",
                timeout=ctx.settings.push_timeout,
            )
    except (git.GitCommandError, OSError, KeyboardInterrupt, AgentImageError) as exc:
        recovery.after_git_failure(root, plan, exc, pushing)
    ctx.recorded = True


def tag_version(ctx: Context) -> None:
    plan = ctx.plan
    for tag in plan.version_tags:
        ref = plan.ref(tag)
        current = ctx.registry.inspect(ref)  # re-read: git holds the release, it must be free
        if current is not None and current.digest != ctx.digest:
            raise AgentImageError(
                f"{ref} names another image ({current.digest}) than the one released in git "
                f"({ctx.digest}); it was not made by this release: inspect it, then point it "
                f"at {plan.repository}@{ctx.digest} with docker buildx imagetools create",
                ExitCode.REGISTRY,
            )
        if current is None:
            ctx.runner.say(f"tagging {ref}")
            source = f"{plan.repository}@{ctx.digest}"
            ctx.registry.copy(source, ref, timeout=ctx.settings.push_timeout)


def newer_than(image: RemoteImage | None, version: versioning.Version) -> bool:
    try:
        return image is not None and versioning.Version.parse(image.version) > version
    except ValueError:
        return False  # no version label: nothing to protect from going backwards


def move_floating(ctx: Context) -> None:
    """Each floating tag is re-read right before it moves: a release that finished meanwhile
    with a higher version keeps it."""
    plan = ctx.plan
    for tag in plan.tags.floating:
        current = ctx.registry.inspect(plan.ref(tag))
        if current is not None and current.digest == ctx.digest:
            continue
        if newer_than(current, plan.version):
            assert current is not None
            ctx.runner.say(f"left {tag} on {current.version}: it is newer than {plan.version}")
            ctx.held.append(tag)
            continue
        source = f"{plan.repository}@{ctx.digest}"
        ctx.registry.copy(source, plan.ref(tag), timeout=ctx.settings.push_timeout)
        ctx.moved.append(tag)
    if ctx.moved:
        ctx.runner.say(f"moved {', '.join(ctx.moved)} to {plan.version}")


def _image_ready(plan: ReleasePlan) -> str:
    if plan.pushed_digest:
        return "already published for this commit by an earlier run"
    return f"publishing the tested local image {plan.local_image}" if plan.local_image else ""


def _no_floating(plan: ReleasePlan) -> str:
    if not plan.tags.floating:
        return "prerelease, or every floating tag holds a newer release"
    return "already point at this release" if plan.floating_done else ""


def steps_for(plan: ReleasePlan) -> tuple[Step, ...]:
    git_skip = "already on the remote" if plan.remote_has_release else ""
    if not plan.push:
        return (
            Step("build", build, _image_ready),
            Step("test", test, _image_ready),
            Step("record in git", record, lambda p: git_skip, once=True),
            Step("tag locally", tag_locally, lambda p: ""),
        )
    return (
        Step("build", build, _image_ready),
        Step("test", test, _image_ready),
        Step("push image", push, lambda p: "already in the registry" if p.pushed_digest else ""),
        Step("SBOM per platform", supplychain.make_sboms, _attached),
        Step("vulnerability scan", supplychain.scan, _no_scan),
        *(
            (Step("sign and attest the SBOM", supplychain.sign, _attached),)
            if plan.signing_key
            else (Step("attach the SBOM (unsigned)", supplychain.attach, _attached),)
        ),
        Step("verify signature, SBOM, provenance", supplychain.verify, lambda p: ""),
        Step("record in git", record, lambda p: git_skip, once=True),
        Step("tag version", tag_version, lambda p: "done" if p.version_published else ""),
        Step("move floating tags", move_floating, _no_floating),
    )


def _attached(plan: ReleasePlan) -> str:
    if not plan.supply_done:
        return ""
    what = "signed, SBOM attested" if plan.signing_key else "SBOM attached"
    return f"already {what} and verified by an earlier run"


def _no_scan(plan: ReleasePlan) -> str:
    if plan.supply_done:
        return _attached(plan)
    return "" if plan.scan.scanner else f"not scanned: {plan.scan.reason}"
