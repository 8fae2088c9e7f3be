"""Build, release and publish the AgentGate agent image: `invoke --list`, `invoke --help TASK`.

A thin CLI: flags are parsed here, every decision is a function in the agentimage package,
defaults live in invoke.yaml (override with flags or INVOKE_* env vars).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invoke import Config, Context, Exit, task

from agentimage import config, gitinfo, imagebuild, preflight, versioning
from agentimage import release as rel
from agentimage.buildx import buildx_argv, cache_ref
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagetools import Registry
from agentimage.labels import ImageMetadata, oci_labels
from agentimage.proc import quote
from agentimage.releaseplan import ReleaseSettings
from agentimage.runner import HostRunner
from agentimage.tags import dev_tags, qualify

ROOT = Path(__file__).resolve().parent


def _project_defaults() -> Config:
    """invoke.yaml as `--help` shows it (flags and INVOKE_* variables override it)."""
    defaults = Config(project_location=str(ROOT))
    defaults.load_project()
    return defaults


D = _project_defaults()

BUILD_HELP = {
    "variant": "base image variant: alpine (node:<node>-alpine) or slim "
    f"(node:<node>-bookworm-slim); default {D.image.variant}",
    "node-version": "Node.js major or full version of the base image; default "
    f"{D.image.node_version}",
    "claude-code-version": "@anthropic-ai/claude-code version installed in the image; default "
    f"{D.image.claude_code_version}",
    "ca-cert": "CA bundle passed as BuildKit secret for npm behind TLS interception: "
    f"auto (SSL_CERT_FILE or the system bundle), none, or a PEM path; default {D.build.ca_cert}",
    "builder": "buildx builder to use (e.g. a remote BuildKit); default: the current one",
    "cache-from": "cache source, repeatable: a registry ref or a full type=... spec",
    "cache-to": "cache destination, repeatable: a registry ref or a full type=... spec",
    "no-cache": "build without using the build cache",
    "dry-run": "print the exact commands, change nothing",
}


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


def _pick(value: object, default: object) -> str:
    return str(default if value is None else value)


def _caches(values: list[str] | None, default: str) -> tuple[str, ...]:
    items = values or [v for v in str(default or "").split(",") if v.strip()]
    return tuple(cache_ref(v.strip()) for v in items)


def _build_options(
    c: Context,
    variant: str | None,
    node_version: str | None,
    claude_code_version: str | None,
    ca_cert: str | None,
    builder: str | None,
    cache_from: list[str] | None,
    cache_to: list[str] | None,
    no_cache: bool,
) -> imagebuild.BuildOptions:
    options = imagebuild.BuildOptions(
        variant=config.check_variant(_pick(variant, c.config.image.variant)),
        node_version=config.check_node_version(_pick(node_version, c.config.image.node_version)),
        claude_code_version=config.check_cli_version(
            _pick(claude_code_version, c.config.image.claude_code_version)
        ),
        ca_cert=config.resolve_ca_cert(_pick(ca_cert, c.config.build.ca_cert)),
        builder=_pick(builder, c.config.build.builder),
        cache_from=_caches(cache_from, c.config.build.cache_from),
        cache_to=_caches(cache_to, c.config.build.cache_to),
        no_cache=no_cache,
        dockerfile=str(c.config.build.dockerfile),
        context=str(c.config.build.context),
    )
    return options


def _metadata(
    c: Context, source: gitinfo.SourceInfo, variant: str, version: str = ""
) -> ImageMetadata:
    repo = gitinfo.open_repo(ROOT)
    url = str(c.config.image.source) or gitinfo.https_source(gitinfo.remote_url(repo))
    return ImageMetadata(
        version=version or source.version,
        revision=source.sha,
        created=source.created,
        source=url,
        variant=variant,
        title=str(c.config.image.title),
        description=str(c.config.image.description),
        licenses=str(c.config.image.licenses),
    )


def _source() -> gitinfo.SourceInfo:
    repo = gitinfo.open_repo(ROOT)
    try:
        base = versioning.read_version_file(ROOT / "VERSION")
    except AgentImageError:
        base = None
    return gitinfo.source_info(repo, base)


def _extra_tags(repository: str, tags: list[str] | None) -> list[str]:
    refs = []
    for tag in tags or []:
        refs.append(tag if ":" in tag or "/" in tag else f"{repository}:{config.check_tag(tag)}")
    return refs


def _summary(
    refs: list[str], digest: str, options: imagebuild.BuildOptions, meta: ImageMetadata
) -> None:
    ref = refs[0]
    print("built " + ref.rsplit(":", 1)[0])
    print(f"  tags      {' '.join(r.rsplit(':', 1)[1] for r in refs)}")
    print(f"  digest    {digest or 'unknown'}")
    facts = imagebuild.image_facts(ref)
    print(f"  size      {imagebuild.human_size(facts.size)} compressed (what a pull transfers)")
    base = config.base_image(options.variant, options.node_version)
    print(f"  variant   {options.variant} ({base})")
    print(f"  node      {facts.node_version}")
    print(f"  claude    {facts.claude_code_version}")
    print(f"  version   {meta.version}  revision {meta.revision[:12]}  created {meta.created}")


@task(
    auto_shortflags=False,
    iterable=["tag", "cache_from", "cache_to"],
    help={
        **BUILD_HELP,
        "tag": "extra tag (bare tag or full ref), repeatable; dev and sha-<7> are always set",
        "metadata-file": "also write buildx's metadata JSON (image digest) to this path",
        "platform": "comma-separated platforms to build and load (default: the host's); "
        "more than one needs the containerd image store",
    },
)
def build(
    c: Context,
    variant: str | None = None,
    node_version: str | None = None,
    claude_code_version: str | None = None,
    tag: list[str] | None = None,
    ca_cert: str | None = None,
    builder: str | None = None,
    cache_from: list[str] | None = None,
    cache_to: list[str] | None = None,
    no_cache: bool = False,
    dry_run: bool = False,
    metadata_file: str | None = None,
    platform: str | None = None,
) -> None:
    """Build the image for the host (or --platform) and load it as agentgate/agent:dev, :sha-<7>.

    No flag is required; defaults come from invoke.yaml (shown with each flag below).

    Examples:
      invoke build --variant slim
      invoke build --platform linux/amd64,linux/arm64 --tag try1
      invoke build --dry-run    # print the docker buildx command only
    """
    with _errors():
        options = _build_options(
            c,
            variant,
            node_version,
            claude_code_version,
            ca_cert,
            builder,
            cache_from,
            cache_to,
            no_cache,
        )
        platforms = config.parse_platforms(platform) if platform else ()
        source = _source()
        meta = _metadata(c, source, options.variant)
        repository = config.image_repository(str(c.config.image.name))
        refs = qualify(repository, dev_tags(source.sha)) + _extra_tags(repository, tag)
        spec = imagebuild.make_spec(
            options,
            meta,
            refs,
            platforms=platforms,
            load=True,
            metadata_file=Path(metadata_file) if metadata_file else None,
        )
        if dry_run:
            print(quote(buildx_argv(spec)))
            return
        preflight.cli_version(options.claude_code_version)
        preflight.build_environment(options.builder, platforms, load=True)
        digest = imagebuild.run_build(spec, options.variant, ROOT)
        _summary(refs, digest, options, meta)


@task(
    auto_shortflags=False,
    iterable=["tag", "cache_from", "cache_to"],
    help={
        **BUILD_HELP,
        "platform": "comma-separated target platforms (default linux/amd64,linux/arm64)",
        "registry": "registry HOST[:PORT][/PATH] to push to; without it an OCI archive is written",
        "output": "OCI archive path used when no registry is given",
        "tag": "extra tag, repeatable; dev and sha-<7> are always set",
        "verify": "after pushing, show the manifest list platforms and run node/claude on each",
    },
)
def buildx(
    c: Context,
    platform: str | None = None,
    registry: str | None = None,
    output: str | None = None,
    variant: str | None = None,
    node_version: str | None = None,
    claude_code_version: str | None = None,
    tag: list[str] | None = None,
    ca_cert: str | None = None,
    builder: str | None = None,
    cache_from: list[str] | None = None,
    cache_to: list[str] | None = None,
    no_cache: bool = False,
    verify: bool = True,
    dry_run: bool = False,
) -> None:
    """Multi-platform build: push a manifest list to --registry, or write an OCI archive."""
    with _errors():
        platforms = config.parse_platforms(_pick(platform, c.config.buildx.platforms))
        options = _build_options(
            c,
            variant,
            node_version,
            claude_code_version,
            ca_cert,
            builder,
            cache_from,
            cache_to,
            no_cache,
        )
        source = _source()
        meta = _metadata(c, source, options.variant)
        target = _pick(registry, c.config.image.registry)
        repository = config.image_repository(str(c.config.image.name), target)
        refs = qualify(repository, dev_tags(source.sha)) + _extra_tags(repository, tag)
        destination = "" if target else f"type=oci,dest={_pick(output, c.config.buildx.output)}"
        spec = imagebuild.make_spec(
            options, meta, refs, platforms=platforms, push=bool(target), output=destination
        )
        if dry_run:
            print(quote(buildx_argv(spec)))
            return
        preflight.cli_version(options.claude_code_version)
        preflight.build_environment(options.builder, platforms, load=False)
        registry_client = Registry(HostRunner(echo=False)) if target else None
        if registry_client is not None:
            registry_client.check_access(repository, refs[1].rsplit(":", 1)[1])
        if destination:
            Path(destination.split("dest=", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        digest = imagebuild.run_build(spec, options.variant, ROOT)
        print(f"built {', '.join(platforms)} as {' '.join(refs)}")
        print(f"  digest    {digest or 'unknown'}")
        if registry_client is None:
            print(f"  archive   {destination.split('dest=', 1)[1]}")
            return
        pushed = registry_client.inspect(refs[1])
        found = list(pushed.platforms) if pushed else []
        print(f"  manifest  {refs[1]} -> {', '.join(found)}")
        missing = sorted(set(platforms) - set(found))
        if missing:
            raise AgentImageError(
                f"the pushed manifest list lacks {', '.join(missing)}; check the builder"
            )
        if verify:
            for plat in platforms:
                node = imagebuild.tool_version(refs[1], "node", plat)
                cli = imagebuild.tool_version(refs[1], "claude", plat)
                print(f"  {plat:<14} node {node}, claude {cli}")


@task(
    auto_shortflags=False,
    iterable=["cache_from", "cache_to"],
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
        "dry-run": "print the whole plan (the commands each step would run), then every failed "
        "precondition with its fix; exit non-zero if any failed",
    },
)
def release(
    c: Context,
    bump: str | None = None,
    pre: str | None = None,
    dry_run: bool = False,
    push: bool = True,
    registry: str | None = None,
    variant: str | None = None,
    node_version: str | None = None,
    claude_code_version: str | None = None,
    ca_cert: str | None = None,
    builder: str | None = None,
    cache_from: list[str] | None = None,
    cache_to: list[str] | None = None,
    no_cache: bool = False,
    branch: str | None = None,
    remote: str | None = None,
    test_command: str | None = None,
    test_timeout: str | None = None,
    push_timeout: str | None = None,
    publish_only: str | None = None,
    platform: str | None = None,
) -> None:
    """Release the next version: build, test, push the image, record it in git, tag it.

    Required: --bump, or --publish-only vX.Y.Z. The registry comes from --registry or
    image.registry in invoke.yaml (or pass --no-push).

    Order: build, test, push sha-<7>, then git (VERSION, commit, tag, one atomic push), then
    vX.Y.Z and the floating tags in the registry. Before the git push lands nothing is
    released anywhere; after it, re-running the same command finishes the same version.

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
        options = _build_options(
            c,
            variant,
            node_version,
            claude_code_version,
            ca_cert,
            builder,
            cache_from,
            cache_to,
            no_cache,
        )
        target = _pick(registry, c.config.image.registry)
        if target:
            config.check_registry(target)
        platforms = _pick(platform, c.config.release.platforms)
        repo = gitinfo.open_repo(ROOT)
        settings = ReleaseSettings(
            bump=bump or "",
            pre=pre,
            push=push,
            image_name=str(c.config.image.name),
            registry=target,
            branch=_pick(branch, c.config.release.branch),
            remote=_pick(remote, c.config.release.remote),
            test_command=_pick(test_command, c.config.release.test_command),
            build=options,
            platforms=config.parse_platforms(platforms) if platforms else (),
            source_url=str(c.config.image.source) or gitinfo.https_source(gitinfo.remote_url(repo)),
            title=str(c.config.image.title),
            description=str(c.config.image.description),
            licenses=str(c.config.image.licenses),
            default_pre=str(c.config.release.pre),
            test_timeout=config.check_timeout(
                _pick(test_timeout, c.config.release.test_timeout), "--test-timeout"
            ),
            push_timeout=config.check_timeout(
                _pick(push_timeout, c.config.release.push_timeout), "--push-timeout"
            ),
            publish_only=publish_only or "",
        )
        plan = rel.prepare(ROOT, settings, dry_run=dry_run)
        print("\n".join(rel.describe(plan, settings, ROOT)), flush=True)
        if dry_run:
            print("dry run: nothing was changed", flush=True)
            for problem in plan.problems:
                print(f"error: {problem.message}", file=sys.stderr, flush=True)
            if plan.problems:
                raise Exit(code=int(plan.problems[0].code))
            return
        ctx = rel.execute(plan, settings, ROOT)
        print("\n".join(rel.summary(plan, ctx)))
        sys.stdout.flush()


@task(auto_shortflags=False, help={"json": "print the labels as JSON"})
def labels(c: Context, json: bool = False) -> None:
    """Show the version and OCI labels a build of the current checkout would carry."""
    import json as _json

    with _errors():
        source = _source()
        meta = _metadata(c, source, str(c.config.image.variant))
        values = oci_labels(meta)
        if json:
            print(_json.dumps(values, indent=2))
        else:
            for key, value in values.items():
                print(f"{key}={value}")
