"""What a release attaches to each image it pushes, and how a published release is verified.

For every pushed digest (an index, and each platform image in it):
  SBOM     a CycloneDX document per platform, from the image's own package databases
           (sbom.py), copied out of the pushed image itself
  scan     grype against each SBOM where a vulnerability database exists (vulnscan.py)
  sign     with a key: each platform image gets its own SBOM as a signed attestation and a
           signature; the index gets every platform's SBOM and a signature, the signatures
           carrying the release's version and source commit. Without a key the SBOMs are
           attached unsigned, and the release says it does not sign.
  verify   signatures, SBOM attestations (or attached SBOMs) and BuildKit's provenance, read
           back from the registry and checked against the labels, before git records the
           release and before any tag (vX.Y.Z, then the floating ones) names the image.

`invoke verify-release vX.Y.Z` runs the same verification against a published release.
"""

from __future__ import annotations

import json
import os
import platform as host
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata as package_metadata
from pathlib import Path
from typing import TYPE_CHECKING

from agentimage import cosign, gitinfo, sbom, vulnscan
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagetools import Registry, RemoteImage
from agentimage.releaseguards import release_of_tag
from agentimage.tags import sha_tag

if TYPE_CHECKING:
    from agentimage.releasesteps import Context

PACKAGE = "agentgate-agent-image"
SBOM_TIMEOUT = 600  # a pull of another platform's image for its SBOM
SCAN_TIMEOUT = 600
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_platform() -> str:
    machine = host.machine().lower()
    return f"linux/{ARCHES.get(machine, machine)}"


def slug(platform: str) -> str:
    return platform.replace("/", "-") or "image"


def release_dir(ctx: Context) -> Path:
    """dist/release/vX.Y.Z/node<line>: the line's SBOMs, what they were made from, the
    public key (dist/release/vX.Y.Z for a project of one line)."""
    line = f"node{ctx.plan.line}" if ctx.plan.line else ""
    return ctx.root / "dist" / "release" / ctx.plan.git_tag / line


def sbom_path(ctx: Context, platform: str) -> Path:
    return release_dir(ctx) / f"sbom-{slug(platform)}.cdx.json"


def public_key_path(ctx: Context) -> Path:
    return release_dir(ctx) / "cosign.pub"


def index_ref(ctx: Context) -> str:
    return f"{ctx.plan.repository}@{ctx.digest}"


def images(ctx: Context) -> list[tuple[str, str]]:
    """(platform, digest) of each image the pushed digest holds, read once per release."""
    if not ctx.images:
        planned = ctx.settings.platforms or (host_platform(),)
        ctx.images = ctx.registry.platform_images(index_ref(ctx), planned)
        if not ctx.runner.dry and (not ctx.images or not all(p for p, _ in ctx.images)):
            raise AgentImageError(
                f"{index_ref(ctx)} is not an index of platform images with their provenance; "
                f"delete {sha_tag(ctx.plan.source_sha)} from the registry and re-run invoke "
                "release, which pushes it again",
                ExitCode.SUPPLY_CHAIN,
            )
    return ctx.images


def tool_version() -> str:
    try:
        return package_metadata.version(PACKAGE)
    except package_metadata.PackageNotFoundError:
        return "unknown"


def _env(text: str) -> dict[str, str]:
    try:
        items = json.loads(text or "[]") or []
    except ValueError:
        items = []
    return dict(str(item).split("=", 1) for item in items if "=" in str(item))


def copy_sources(variant: str) -> list[tuple[str, str, bool]]:
    """(path in the image, name in the platform's directory, follow a symlink)."""
    return [
        (sbom.OS_RELEASE, "os-release", True),  # a symlink to ../usr/lib/os-release
        (sbom.PACKAGE_DATABASES[variant], "packages", False),
        (sbom.NODE_MODULES, "node_modules", False),
        (sbom.CLI_PACKAGE_JSON, "claude-code.package.json", False),
    ]


def make_sboms(ctx: Context) -> None:
    """Each platform image's SBOM, from files copied out of the pushed image (`docker create`
    pulls it by digest; nothing runs in it)."""
    run, plan = ctx.runner, ctx.plan
    for platform, digest in images(ctx):
        ref = f"{plan.repository}@{digest}"
        directory = release_dir(ctx) / slug(platform)
        # one container per run: two releases of one commit may run at once
        name = f"agentimage-sbom-{plan.source_sha[:7]}-{slug(platform)}-{os.getpid()}"
        failure = f"reading the package databases of {ref} failed"

        def docker(*args: str, dry_stdout: str = "", failure: str = failure) -> str:
            return run.run(
                ["docker", *args],
                failure=failure,
                code=ExitCode.SUPPLY_CHAIN,
                timeout=SBOM_TIMEOUT,
                dry_stdout=dry_stdout,
            )

        run.run(["rm", "-rf", str(directory)], failure=failure, code=ExitCode.SUPPLY_CHAIN)
        run.run(["mkdir", "-p", str(directory)], failure=failure, code=ExitCode.SUPPLY_CHAIN)
        docker("create", "--name", name, *(["--platform", platform] if platform else []), ref)
        try:
            env = _env(
                docker(
                    "container", "inspect", "--format", "{{json .Config.Env}}", name,
                    dry_stdout="[]",
                )
            )  # fmt: skip
            for source, target, follow in copy_sources(ctx.settings.build.variant):
                docker(
                    "cp", *(["-L"] if follow else []), f"{name}:{source}", str(directory / target)
                )
        finally:
            docker("rm", name)
            try:  # the image record docker create pulled; its layers are the tested image's
                docker("image", "rm", ref)
            except AgentImageError as exc:  # a concurrent release's container still uses it
                run.say(f"left {ref} in the local image store ({exc.message})")
        subject = sbom.Subject(plan.repository, digest, platform, str(plan.version), plan.created)
        run.write_text(
            sbom_path(ctx, platform),
            _document(directory, ctx.settings.build.variant, env, subject),
            f"CycloneDX 1.6 SBOM of {platform or ref}, from the files copied above",
        )


def _document(
    directory: Path, variant: str, env: dict[str, str], subject: sbom.Subject
) -> Callable[[], str]:
    return lambda: sbom.document(
        sbom.read_contents(directory, variant, env), subject, tool_version()
    )


def scan(ctx: Context) -> None:
    gate = ctx.plan.scan
    for platform, _ in images(ctx):
        path = sbom_path(ctx, platform)
        ctx.runner.say(f"scanning {path.name} with grype (fails on {gate.fail_on} or worse)")
        ctx.runner.run(
            vulnscan.scan_argv(gate.scanner, path, gate.fail_on),
            env=vulnscan.SCAN_ENV,
            stream=True,
            timeout=SCAN_TIMEOUT,
            failure=(
                f"grype found vulnerabilities of severity {gate.fail_on} or worse in the "
                f"{platform} image (table above); nothing was signed or recorded: update the "
                "base image or the packages, or raise release.vulnerability_fail_on"
            ),
            code=ExitCode.VULNERABLE,
        )


def annotations(ctx: Context) -> dict[str, str]:
    """What each signature says about the image: the release and its source commit."""
    return {
        cosign.VERSION_ANNOTATION: str(ctx.plan.version),
        cosign.REVISION_ANNOTATION: ctx.plan.source_sha,
    }


def _cosign(ctx: Context, argv: list[str], what: str) -> None:
    ctx.runner.run(
        argv,
        failure=f"{what} failed; nothing was recorded in git, re-run invoke release",
        code=ExitCode.SUPPLY_CHAIN,
        timeout=ctx.settings.push_timeout,
    )


def sign(ctx: Context) -> None:
    """Platform images first, the index last: a signed index means everything is signed."""
    key = ctx.plan.signing_key
    platform_images = images(ctx)
    for platform, digest in platform_images:
        ref = f"{ctx.plan.repository}@{digest}"
        ctx.runner.say(f"signing {ref} ({platform}) and attesting its SBOM")
        path = sbom_path(ctx, platform)
        _cosign(ctx, cosign.attest_argv(ref, key, path, replace=True), f"attesting {ref}")
        _cosign(ctx, cosign.sign_argv(ref, key, annotations(ctx)), f"signing {ref}")
    if [digest for _, digest in platform_images] == [ctx.digest]:
        return  # a single manifest: signed above
    ref = index_ref(ctx)
    ctx.runner.say(f"signing {ref} (the index) with every platform's SBOM")
    for platform, _ in platform_images:
        path = sbom_path(ctx, platform)
        _cosign(ctx, cosign.attest_argv(ref, key, path, replace=False), f"attesting {ref}")
    _cosign(ctx, cosign.sign_argv(ref, key, annotations(ctx)), f"signing {ref}")


def attach(ctx: Context) -> None:
    ctx.runner.say(NOT_SIGNING)
    for platform, digest in images(ctx):
        ref = f"{ctx.plan.repository}@{digest}"
        argv = cosign.attach_sbom_argv(ref, sbom_path(ctx, platform))
        _cosign(ctx, argv, f"attaching the SBOM to {ref}")


NOT_SIGNING = (
    "not signing: no signing key is configured (release.signing_key, "
    "INVOKE_RELEASE_SIGNING_KEY or --signing-key); the SBOM is attached unsigned"
)


def verify(ctx: Context) -> None:
    """Read back what the registry now holds for the pushed digest, before any tag names it."""
    plan = ctx.plan
    public_key = None
    if plan.signing_key:
        public_key = public_key_path(ctx)
        ctx.runner.write_text(public_key, plan.public_key, "the public half of the signing key")
    expected = Expected(
        version=str(plan.version),
        revision=plan.source_sha,
        cli_version=ctx.settings.build.claude_code_version,
        platforms=tuple(p for p, _ in images(ctx)),
    )
    for line in ctx.registry.verify(plan.repository, ctx.digest, public_key, expected):
        ctx.runner.say(line)


@dataclass(frozen=True)
class Expected:
    """What the labels, signatures and SBOMs of a release must agree with."""

    version: str  # X.Y.Z
    revision: str  # the source commit
    cli_version: str = ""  # "" (verify-release): the image's own label is the reference
    platforms: tuple[str, ...] = ()  # () (verify-release): whatever the index holds


def _fail(message: str) -> AgentImageError:
    return AgentImageError(message, ExitCode.SUPPLY_CHAIN)


def check_labels(ref: str, image: RemoteImage | None, expected: Expected) -> RemoteImage:
    if image is None:
        raise _fail(f"{ref} is not in the registry; publish the release first")
    wrong = []
    if image.version != expected.version:
        wrong.append(f"version label {image.version or '(none)'!r}, expected {expected.version}")
    if image.revision != expected.revision:
        wrong.append(f"revision label {image.revision[:12] or '(none)'}, expected "
                     f"{expected.revision[:12]}")  # fmt: skip
    if expected.cli_version and image.cli_version != expected.cli_version:
        wrong.append(f"CLI label {image.cli_version or '(none)'}, expected {expected.cli_version}")
    if not image.base_digest.startswith("sha256:") or not image.base_name:
        wrong.append("no base.name/base.digest labels")
    if wrong:
        raise _fail(f"{ref} has {'; '.join(wrong)}: it is not the image this release built")
    return image


def check_provenance(ref: str, provenance: dict[str, dict[str, object]], image: RemoteImage,
                     platforms: list[str]) -> list[str]:  # fmt: skip
    """Each platform has SLSA provenance whose materials include the labelled base digest."""
    lines = []
    keyed = provenance if set(provenance) != {""} else dict.fromkeys(platforms, provenance[""])
    base = image.base_digest.removeprefix("sha256:")
    for platform in platforms:
        predicate = keyed.get(platform)
        if not predicate:
            raise _fail(
                f"{ref} carries no provenance for {platform}; it was not built by invoke "
                "release (which builds with --provenance mode=max)"
            )
        materials = predicate.get("materials") or []
        digests = {
            str((m.get("digest") or {}).get("sha256", ""))
            for m in materials  # type: ignore[union-attr]
            if isinstance(m, dict) and str(m.get("uri", "")).startswith("pkg:docker/")
        }
        if base not in digests:
            raise _fail(
                f"the provenance of {ref} ({platform}) does not name the base image its "
                f"base.digest label names ({image.base_digest}): the label is not what FROM used"
            )
        lines.append(
            f"  provenance {platform}: SLSA ({predicate.get('buildType', '?')}), base "
            f"{image.base_name}@{image.base_digest}"
        )
    return lines


def check_sbom(where: str, summary: sbom.Summary, cli_version: str) -> str:
    if summary.cli_version != cli_version or not summary.node_version or not summary.os_packages:
        raise _fail(
            f"the SBOM on {where} names Claude Code {summary.cli_version or '(none)'} "
            f"(the image has {cli_version}), Node.js {summary.node_version or '(none)'} and "
            f"{summary.os_packages} OS packages: it does not describe this image"
        )
    return (
        f"  sbom       {summary.platform}: CycloneDX, {summary.components} components: "
        f"claude-code {summary.cli_version}, node {summary.node_version}, "
        f"{summary.os_packages} OS packages"
    )


def _sboms_by_platform(
    ref: str, statements: list[cosign.Statement], subject: str
) -> dict[str, sbom.Summary]:
    found = {}
    for statement in statements:
        if statement.predicate_type != cosign.SBOM_PREDICATE or subject not in statement.subjects:
            continue
        summary = sbom.summarize(json.dumps(statement.predicate))
        found[summary.platform] = summary
    if not found:
        raise _fail(f"{ref} carries no signed CycloneDX SBOM; re-run invoke release to attach it")
    return found


def verify_image(
    registry: Registry,
    repository: str,
    digest: str,
    public_key: Path | None,
    expected: Expected,
) -> list[str]:
    """Labels, provenance, signatures and SBOMs of repository@digest; lines saying what was
    verified. Raises (exit 10) at the first thing missing or wrong. A dry run only lists the
    reads."""
    ref = f"{repository}@{digest}"
    image = registry.inspect(ref)
    platform_images = registry.platform_images(ref, expected.platforms)
    provenance = registry.provenance(ref)
    refs = [(p, f"{repository}@{d}", d) for p, d in platform_images]
    if public_key is not None:
        signed = [
            (ref, registry.signatures(ref, public_key, _annotations(expected)), digest),
            *(
                (r, registry.signatures(r, public_key, _annotations(expected)), d)
                for _, r, d in refs
            ),
        ]
        index_sboms = registry.attestations(ref, public_key)
        own_sboms = [(p, r, d, registry.attestations(r, public_key)) for p, r, d in refs]
    else:
        attached = [(p, r, registry.attached_sbom(r)) for p, r, _ in refs]
    if getattr(registry.runner, "dry", False):
        return []
    image = check_labels(ref, image, expected)
    platforms = [p for p, _ in platform_images]
    missing = sorted(set(expected.platforms) - set(platforms))
    if missing:
        raise _fail(f"{ref} lacks the platforms {', '.join(missing)}; check the push")
    lines = check_provenance(ref, provenance, image, platforms)
    if public_key is None:
        for platform, where, text in attached:
            summary = sbom.summarize(text)
            if summary.platform != platform:
                raise _fail(f"the SBOM attached to {where} describes {summary.platform or '?'}")
            lines.append(check_sbom(where, summary, image.cli_version) + " (unsigned)")
        return lines
    for where, digests, wanted in signed:
        if wanted not in digests:
            raise _fail(f"no signature on {where} verifies with {public_key}")
    lines.insert(
        0,
        f"  signature  {ref} and {len(refs)} platform image(s): verified with {public_key} "
        f"(version {expected.version}, revision {expected.revision[:12]})",
    )
    on_index = _sboms_by_platform(ref, index_sboms, digest)
    for platform, where, wanted, statements in own_sboms:
        own = _sboms_by_platform(where, statements, wanted).get(platform)
        if own is None or platform not in on_index:
            raise _fail(f"no signed SBOM for {platform} on {where} and on {ref}")
        check_sbom(ref, on_index[platform], image.cli_version)
        lines.append(check_sbom(where, own, image.cli_version) + " (signed, also on the index)")
    return lines


def _annotations(expected: Expected) -> dict[str, str]:
    return {
        cosign.VERSION_ANNOTATION: expected.version,
        cosign.REVISION_ANNOTATION: expected.revision,
    }


def verify_release(
    root: Path, tag: str, repository: str, public_key: Path, registry: Registry
) -> list[str]:
    """`invoke verify-release vX.Y.Z`: the published release's labels agree with its git tag
    (version, source commit), and its signatures, SBOMs and provenance verify."""
    found = release_of_tag(gitinfo.open_repo(root), tag, "invoke release")
    commit, version = found
    ref = f"{repository}:{tag}"
    image = registry.inspect(ref)
    if image is None:
        raise _fail(f"{ref} is not in the registry; publish it (invoke release --publish-only)")
    expected = Expected(str(version), commit.parents[0].hexsha)
    lines = registry.verify(repository, image.digest, public_key, expected)
    return [
        f"verified {tag}: {repository}@{image.digest}",
        f"  labels     version {version}, revision {expected.revision[:12]} (the commit "
        f"{tag}^ of git), base {image.base_name}",
        *lines,
    ]
