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

The verification itself, also what `invoke verify-release vX.Y.Z` runs against a published
release, is releaseverify.py.
"""

from __future__ import annotations

import json
import os
import platform as host
from collections.abc import Callable
from importlib import metadata as package_metadata
from pathlib import Path
from typing import TYPE_CHECKING

from agentimage import cosign, releaseverify, sbom, vulnscan
from agentimage.errors import AgentImageError, ExitCode
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
    expected = releaseverify.Expected(
        version=str(plan.version),
        revision=plan.source_sha,
        cli_version=ctx.settings.build.claude_code_version,
        platforms=tuple(p for p, _ in images(ctx)),
    )
    for line in ctx.registry.verify(plan.repository, ctx.digest, public_key, expected):
        ctx.runner.say(line)
