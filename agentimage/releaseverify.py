"""Reading a release back from the registry and checking it: labels, BuildKit's provenance,
cosign signatures and SBOM attestations (or attached SBOMs). A release runs it on what it
just pushed, before git records the release and before any tag names the image;
`invoke verify-release vX.Y.Z` runs it on a published release, every Node line of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from agentimage import config, cosign, gitinfo, lines, sbom
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagetools import Registry, RemoteImage
from agentimage.releaseguards import release_of_tag


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
    report = []
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
        report.append(
            f"  provenance {platform}: SLSA ({predicate.get('buildType', '?')}), base "
            f"{image.base_name}@{image.base_digest}"
        )
    return report


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
    report = check_provenance(ref, provenance, image, platforms)
    if public_key is None:
        for platform, where, text in attached:
            summary = sbom.summarize(text)
            if summary.platform != platform:
                raise _fail(f"the SBOM attached to {where} describes {summary.platform or '?'}")
            report.append(check_sbom(where, summary, image.cli_version) + " (unsigned)")
        return report
    for where, digests, wanted in signed:
        if wanted not in digests:
            raise _fail(f"no signature on {where} verifies with {public_key}")
    report.insert(
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
        report.append(check_sbom(where, own, image.cli_version) + " (signed, also on the index)")
    return report


def _annotations(expected: Expected) -> dict[str, str]:
    return {
        cosign.VERSION_ANNOTATION: expected.version,
        cosign.REVISION_ANNOTATION: expected.revision,
    }


def release_lines(commit: object, dockerfile: str) -> lines.Lines | None:
    """The Node lines of the Dockerfile the release commit holds (None: it has no such file)."""
    try:
        blob = commit.tree / dockerfile  # type: ignore[attr-defined]
    except KeyError:
        return None
    return lines.parse(blob.data_stream.read().decode("utf-8"))


def verify_release(
    root: Path,
    tag: str,
    repository: str,
    public_key: Path,
    registry: Registry,
    dockerfile: str = config.DOCKERFILE,
) -> list[str]:
    """`invoke verify-release vX.Y.Z`: the published release's labels agree with its git tag
    (version, source commit), and its signatures, SBOMs and provenance verify; for vX.Y.Z and
    vX.Y.Z-node<line> of every other Node line the release commit's Dockerfile builds."""
    commit, version = release_of_tag(gitinfo.open_repo(root), tag, "invoke release")
    expected = Expected(str(version), commit.parents[0].hexsha)
    known = release_lines(commit, dockerfile)
    others = list(known.names[1:]) if known else []
    report = _verify_tag(registry, repository, tag, public_key, expected)
    for line in others:
        line_tag = tag + lines.suffix(line)
        if registry.inspect(f"{repository}:{line_tag}") is None:
            report.append(f"not published: {line_tag} (release.lines left Node {line} out)")
            continue
        report += _verify_tag(registry, repository, line_tag, public_key, expected)
    return report


def _verify_tag(
    registry: Registry, repository: str, tag: str, public_key: Path, expected: Expected
) -> list[str]:
    ref = f"{repository}:{tag}"
    image = registry.inspect(ref)
    if image is None:
        raise _fail(f"{ref} is not in the registry; publish it (invoke release --publish-only)")
    report = registry.verify(repository, image.digest, public_key, expected)
    return [
        f"verified {tag}: {repository}@{image.digest}",
        f"  labels     version {expected.version}, revision {expected.revision[:12]} (the "
        f"commit {tag.split('-node')[0]}^ of git), base {image.base_name}",
        *report,
    ]
