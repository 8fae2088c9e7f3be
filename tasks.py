"""Build, release and publish the AgentGate agent image: `invoke --list`, `invoke --help TASK`.

A thin CLI: flags are parsed here, every decision is a function in the agentimage package,
defaults live in invoke.yaml (override with flags or INVOKE_* env vars).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from json import dumps as to_json
from pathlib import Path

from invoke import Config, Context, Exit, task

from agentimage import (
    checkoutbuild,
    cliupdate,
    config,
    gitinfo,
    lines,
    preflight,
    releaseverify,
    versioning,
)
from agentimage import release as releasing
from agentimage.buildx import buildx_argv
from agentimage.cosign import check_public_key
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagetools import Registry
from agentimage.labels import Identity, labels_from_build_args, oci_labels
from agentimage.proc import quote
from agentimage.releaseplan import ReleaseSettings
from agentimage.runner import HostRunner
from agentimage.taskflags import ITERABLE, BuildFlags, build_flag_help, pick, with_build_flags

ROOT = Path(__file__).resolve().parent


def _project_defaults() -> Config:
    """invoke.yaml as `--help` shows it (flags and INVOKE_* variables override it)."""
    defaults = Config(project_location=str(ROOT))
    defaults.load_project()
    return defaults


def _lines() -> lines.Lines | None:
    """The Dockerfile's lines for `--help`; None when it cannot be read (a task says why)."""
    try:
        return lines.read(ROOT, str(D.build.dockerfile))
    except AgentImageError:
        return None


D = _project_defaults()
BASE_UNRESOLVED = (
    "dry run: BASE_IMAGE is pinned to the digest its tag resolves to when the build runs "
    "(the base.digest label records it)"
)
BUILD_HELP = {**build_flag_help(D, _lines()), "dry-run": "print the exact commands, change nothing"}


@contextmanager
def _errors() -> Iterator[None]:
    """AgentImageError -> invoke Exit: one line on stderr, a distinct exit code.

    Ctrl-C too: invoke would exit 1 without a word; say it and exit 130 as shells do.
    """
    try:
        yield
    except AgentImageError as exc:
        raise Exit(f"error: {exc.message}", code=int(exc.code)) from None
    except KeyboardInterrupt:
        raise Exit(
            "error: interrupted (Ctrl-C) before the command finished; re-run it",
            code=int(ExitCode.INTERRUPTED),
        ) from None


def _identity(c: Context) -> Identity:
    image = c.config.image
    return Identity(
        source=gitinfo.source_url(ROOT, str(image.source)),
        title=str(image.title),
        description=str(image.description),
        licenses=str(image.licenses),
    )


@task(
    auto_shortflags=False,
    iterable=["tag", *ITERABLE],
    help={
        **BUILD_HELP,
        "tag": "extra tag (bare tag or full ref), repeatable; dev and sha-<7> are always set",
        "metadata-file": "also write buildx's metadata JSON (image digest) to this path",
        "labels-file": "also write the labels the image was given, as JSON, to this path",
        "platform": "comma-separated platforms to build and load (default: the host's); "
        "more than one needs the containerd image store",
    },
)
@with_build_flags
def build(
    c: Context,
    flags: BuildFlags,
    tag: list[str] | None = None,
    dry_run: bool = False,
    metadata_file: str | None = None,
    labels_file: str | None = None,
    platform: str | None = None,
) -> None:
    """Build the image for the host (or --platform) and load it as agentgate/agent:dev, :sha-<7>.

    No flag is required; defaults come from invoke.yaml and the Dockerfile's lines (shown
    with each flag below). Another line than the default is tagged dev-node<line> and
    sha-<7>-node<line>.

    Examples:
      invoke build --variant slim
      invoke build --variant slim --node-version LINE  # another line, with the CLI it pins
      invoke build --platform linux/amd64,linux/arm64 --tag try1
      invoke build --dry-run    # print the docker buildx command only
    """
    with _errors():
        planned = checkoutbuild.plan(
            ROOT,
            _identity(c),
            flags.options(c.config, ROOT),
            config.image_repository(str(c.config.image.name)),
            extra_tags=tag or [],
            platforms=config.parse_platforms(platform) if platform else (),
            load=True,
            metadata_file=Path(metadata_file) if metadata_file else None,
        )
        if dry_run:
            print(quote(buildx_argv(planned.spec)))
            print(BASE_UNRESOLVED, file=sys.stderr)
            return
        planned = checkoutbuild.check_host(planned)
        digest = checkoutbuild.run(planned, ROOT)
        if labels_file:
            given = labels_from_build_args(planned.spec.build_args)
            Path(labels_file).write_text(to_json(given, indent=2, sort_keys=True) + "\n")
        print("\n".join(checkoutbuild.summary(planned, digest)))


@task(
    auto_shortflags=False,
    iterable=["tag", *ITERABLE],
    help={
        **BUILD_HELP,
        "platform": "comma-separated target platforms (default linux/amd64,linux/arm64)",
        "registry": "registry HOST[:PORT][/PATH] to push to; without it an OCI archive is written",
        "output": "OCI archive path used when no registry is given",
        "tag": "extra tag, repeatable; dev and sha-<7> are always set",
        "verify": "after pushing, show the manifest list platforms and run node/claude on each",
    },
)
@with_build_flags
def buildx(
    c: Context,
    flags: BuildFlags,
    platform: str | None = None,
    registry: str | None = None,
    output: str | None = None,
    tag: list[str] | None = None,
    verify: bool = True,
    dry_run: bool = False,
) -> None:
    """Multi-platform build: push a manifest list to --registry, or write an OCI archive."""
    with _errors():
        target = pick(registry, c.config.image.registry)
        archive = "" if target else f"type=oci,dest={pick(output, c.config.buildx.output)}"
        planned = checkoutbuild.plan(
            ROOT,
            _identity(c),
            flags.options(c.config, ROOT),
            config.image_repository(str(c.config.image.name), target),
            extra_tags=tag or [],
            platforms=config.parse_platforms(pick(platform, c.config.buildx.platforms)),
            push=bool(target),
            output=archive,
        )
        if dry_run:
            print(quote(buildx_argv(planned.spec)))
            print(BASE_UNRESOLVED, file=sys.stderr)
            return
        planned = checkoutbuild.check_host(planned)
        pushed_to = Registry(HostRunner(echo=False)) if target else None
        if pushed_to is not None:
            repository, probe = planned.sha_ref.rsplit(":", 1)
            pushed_to.check_access(repository, probe)
        digest = checkoutbuild.run(planned, ROOT)
        print(f"built {', '.join(planned.spec.platforms)} as {' '.join(planned.refs)}")
        print(f"  digest    {digest or 'unknown'}")
        if pushed_to is None:
            print(f"  archive   {checkoutbuild.archive_path(planned)}")
        else:
            print("\n".join(checkoutbuild.verify_pushed(pushed_to, planned, run_tools=verify)))


@task(
    auto_shortflags=False,
    iterable=ITERABLE,
    help={
        **BUILD_HELP,
        "bump": "patch | minor | major | prerelease | auto (from conventional commits); "
        "required, except when publishing a release made earlier",
        "pre": "prerelease identifier (e.g. rc, beta): --bump patch|minor|major start one, "
        "--bump prerelease switches to it; without it --bump prerelease keeps the current one "
        f"(a stable version gets {D.release.pre})",
        "push": "push the image and git; --no-push does everything locally, and "
        "--publish-only publishes that later",
        "registry": "registry HOST[:PORT][/PATH] to publish to (docker.io/ORG for Docker Hub); "
        f"default {D.image.registry or '(none: pass one, or --no-push)'}",
        "branch": f"release branch; default {D.release.branch}",
        "remote": f"git remote to push the release to; default {D.release.remote}",
        "test-command": "shell command testing the image given as $AGENT_IMAGE; default "
        f"{D.release.test_command!r}",
        "test-timeout": f"seconds the test command may take; default {D.release.test_timeout}",
        "push-timeout": "seconds each push (image, git, registry tag) may take; default "
        f"{D.release.push_timeout}",
        "publish-only": "publish the --no-push release vX.Y.Z (its tested image from the local "
        "store): push the image and git, then tag the registry",
        "platform": "comma-separated platforms to publish as one manifest list; default "
        f"{D.release.platforms or '(the tested host-platform image only)'}",
        "lines": "comma-separated Node lines to publish, the default line included; default "
        f"{D.release.lines or 'every line of the Dockerfile'}",
        "signing-key": "cosign key signing each pushed image and its SBOM attestation (a "
        "cosign.key path, env://VAR or a KMS URI; password from COSIGN_PASSWORD); default "
        f"{D.release.signing_key or '(none: the SBOM is attached unsigned)'}",
        "dry-run": "print the whole plan (the commands each step would run), then every failed "
        "precondition with its fix; exit non-zero if any failed",
    },
)
@with_build_flags
def release(
    c: Context,
    flags: BuildFlags,
    bump: str | None = None,
    pre: str | None = None,
    dry_run: bool = False,
    push: bool = True,
    registry: str | None = None,
    branch: str | None = None,
    remote: str | None = None,
    test_command: str | None = None,
    test_timeout: str | None = None,
    push_timeout: str | None = None,
    publish_only: str | None = None,
    platform: str | None = None,
    lines: str | None = None,
    signing_key: str | None = None,
) -> None:
    """Release the next version: build, test, push the image, record it in git, tag it.

    Required: --bump, or --publish-only vX.Y.Z. The registry comes from --registry or
    image.registry in invoke.yaml (or pass --no-push).

    Every Node line of the Dockerfile is released together, each with its own pin: the
    default line as vX.Y.Z, X.Y, X, latest and as vX.Y.Z-node<line>, X.Y-node<line>,
    X-node<line>, node<line>; every other line under its suffixed names only.

    Order: build and test each line, push each sha-<7>[-node<line>], its SBOM per platform
    (vulnerability scan where a database exists), sign and attest it with the cosign key (or
    attach the SBOM unsigned), verify all that, then git (VERSION, CHANGELOG.md, commit, tag,
    one atomic push), then the version and floating tags in the registry. Before the git push
    lands nothing is released anywhere; after it, re-running the same command finishes the
    same version.

    Examples:
      invoke release --bump patch --registry ghcr.io --dry-run
      invoke release --bump minor --pre rc --registry docker.io/agentgate
      invoke release --bump patch --no-push; invoke release --publish-only v0.1.1 --registry R
    """
    with _errors():
        if bump is None and not publish_only:
            raise AgentImageError(
                f"--bump is required; pass --bump {'|'.join(versioning.BUMPS)} "
                "(or --publish-only vX.Y.Z)"
            )
        if bump is not None:
            versioning.check_bump(bump)
        line_options = flags.line_options(c.config, ROOT, pick(lines, c.config.release.lines))
        target = pick(registry, c.config.image.registry)
        if target:
            config.check_registry(target)
        platforms = pick(platform, c.config.release.platforms)
        settings = ReleaseSettings(
            bump=bump or "",
            pre=pre,
            push=push,
            image_name=str(c.config.image.name),
            registry=target,
            branch=pick(branch, c.config.release.branch),
            remote=pick(remote, c.config.release.remote),
            test_command=pick(test_command, c.config.release.test_command),
            build=line_options[0],
            other_lines=line_options[1:],
            identity=_identity(c),
            platforms=config.parse_platforms(platforms) if platforms else (),
            default_pre=str(c.config.release.pre),
            test_timeout=config.check_timeout(
                pick(test_timeout, c.config.release.test_timeout), "--test-timeout"
            ),
            push_timeout=config.check_timeout(
                pick(push_timeout, c.config.release.push_timeout), "--push-timeout"
            ),
            publish_only=publish_only or "",
            signing_key=pick(signing_key, c.config.release.signing_key),
            public_key=str(c.config.release.public_key),
            vulnerability_scan=str(c.config.release.vulnerability_scan),
            vulnerability_fail_on=str(c.config.release.vulnerability_fail_on),
        )
        plan = releasing.prepare(ROOT, settings, dry_run=dry_run)
        print("\n".join(releasing.describe(plan, settings, ROOT)), flush=True)
        if dry_run:
            print("dry run: nothing was changed", flush=True)
            for problem in plan.problems:
                print(f"error: {problem.message}", file=sys.stderr, flush=True)
            if plan.problems:
                raise Exit(code=int(plan.problems[0].code))
            return
        done = releasing.execute(plan, settings, ROOT)
        print("\n".join(releasing.summary(plan, done)), flush=True)


@task(
    name="update-cli",
    auto_shortflags=False,
    help={"dry-run": "show what would change and write nothing (the exit status still says)"},
)
def update_cli(c: Context, dry_run: bool = False) -> None:
    """Move each Node line's Claude Code pin in the Dockerfile to the newest release it can run.

    Asks the npm registry (npm's own configuration applies) for the newest stable release
    whose engines admit the line and whose linux x64/arm64, glibc/musl packages exist.

    Exit status: 0 every pin is current; 12 a pin changed (with --dry-run: would change), so
    a scheduled job can open a pull request; 13 the npm registry could not be asked.
    """
    with _errors():
        report, changed = cliupdate.run(ROOT, str(c.config.build.dockerfile), dry_run=dry_run)
        print("\n".join(report), flush=True)
        if changed:
            raise Exit(code=int(ExitCode.CHANGED))


@task(
    name="verify-release",
    auto_shortflags=False,
    help={
        "tag": "the release to verify, vX.Y.Z (its git tag must be here: git fetch --tags)",
        "registry": "registry HOST[:PORT][/PATH] it was published to; default "
        f"{D.image.registry or '(none: pass one)'}",
        "key": "cosign.pub of the release signing key; default "
        f"{D.release.public_key or '(none: pass one)'}",
    },
)
def verify_release(
    c: Context, tag: str, registry: str | None = None, key: str | None = None
) -> None:
    """Verify a published release: signatures, SBOM and provenance, labels against git.

    Checks, for vX.Y.Z in the registry and each platform image in it: the version and
    revision labels name the tag's release and source commit; BuildKit's SLSA provenance is
    there and names the base image the base.digest label names; cosign verifies a signature
    carrying that version and commit, and a signed CycloneDX SBOM that names the image's
    Claude Code and Node.js versions. Exits 10 at the first thing missing or wrong.

    Examples:
      invoke verify-release v0.2.0 --registry ghcr.io/agentgate --key cosign.pub
    """
    with _errors():
        target = pick(registry, c.config.image.registry)
        if not target:
            raise AgentImageError("no registry given; pass --registry HOST[:PORT][/PATH]")
        public = pick(key, c.config.release.public_key)
        if not public:
            raise AgentImageError(
                "no public key given; pass --key cosign.pub (the release key's public half) "
                "or set release.public_key"
            )
        preflight.cosign()
        repository = config.image_repository(
            str(c.config.image.name), config.check_registry(target)
        )
        report = releaseverify.verify_release(
            ROOT,
            tag,
            repository,
            check_public_key(public),
            Registry(HostRunner(echo=False)),
        )
        print("\n".join(report))


@task(auto_shortflags=False, help={"json": "print the labels as JSON"})
def labels(c: Context, json: bool = False) -> None:
    """Show the version and OCI labels a build of the current checkout would carry."""
    with _errors():
        meta = checkoutbuild.metadata(ROOT, _identity(c), str(c.config.image.variant))
        values = oci_labels(meta)
        if json:
            print(to_json(values, indent=2))
        else:
            for key, value in values.items():
                print(f"{key}={value}")
