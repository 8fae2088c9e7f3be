"""What the registry already holds for a release plan: the pushed sha-<7>, vX.Y.Z, the
floating tags, and whether the pushed image carries its verified supply chain. Read-only;
the plan decides what is left to do from it (a re-run resumes where the last one stopped).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from agentimage import releaseverify
from agentimage.errors import AgentImageError, ExitCode
from agentimage.imagetools import Registry, RemoteImage
from agentimage.tags import floating_candidates, release_tags

if TYPE_CHECKING:
    from agentimage.releaseplan import ReleasePlan


def floating_state(registry: Registry, plan: ReleasePlan) -> dict[str, RemoteImage]:
    """What the line's floating tags (X.Y, X, latest, ...) name now; their version labels
    decide what may move."""
    found = {}
    for tag, _ in floating_candidates(plan.version, plan.suffix, plan.default):
        image = registry.inspect(plan.ref(tag))
        if image is not None:
            found[tag] = image
    return found


def published_image(registry: Registry, plan: ReleasePlan) -> tuple[str, bool]:
    """(digest to release, whether vX.Y.Z already names it). A vX.Y.Z naming another
    image than this commit's sha-<7> is refused: released tags are immutable.

    sha-<7> counts only when it names an index (the image with its provenance) built from
    the source commit: docker pushes an index's children to the tag too, so an interrupted
    push can leave it naming an attestation manifest or a bare platform image; the release
    then pushes the image again."""
    pushed = registry.inspect(plan.test_ref)
    if pushed is not None and (pushed.revision != plan.source_sha or not pushed.platforms):
        pushed = None
    released = registry.inspect(plan.ref(plan.version_tag))
    if released is None:
        return (pushed.digest if pushed else ""), False
    if pushed is None or pushed.digest != released.digest:
        raise AgentImageError(
            f"{plan.ref(plan.version_tag)} already exists in the registry with another "
            "image; released tags are immutable, bump to a later version",
            ExitCode.REGISTRY,
        )
    return released.digest, True


def registry_state(plan: ReleasePlan, registry: Registry, git_tags: list[str]) -> ReleasePlan:
    """What the registry holds for this line's release, and the floating tags that may move."""
    digest, published = published_image(registry, plan)
    floating = floating_state(registry, plan)
    existing = git_tags + [image.version for image in floating.values() if image.version]
    tags = release_tags(plan.version, plan.source_sha, existing, plan.suffix, plan.default)
    done = bool(digest) and all(
        tag in floating and floating[tag].digest == digest for tag in tags.floating
    )
    return replace(
        plan, pushed_digest=digest, version_published=published, tags=tags, floating_done=done
    )


def lines_registry_state(plan: ReleasePlan, registry: Registry, git_tags: list[str]) -> ReleasePlan:
    """registry_state of every line."""
    return replace(
        registry_state(plan, registry, git_tags),
        others=tuple(registry_state(one, registry, git_tags) for one in plan.others),
    )


def supply_state(plan: ReleasePlan, registry: Registry) -> ReleasePlan:
    """Whether the already pushed image carries its SBOM (signed, with a key) and verifies:
    then a re-run does not sign or attest again."""
    if not plan.pushed_digest:
        return plan
    expected = releaseverify.Expected(str(plan.version), plan.source_sha)
    with tempfile.TemporaryDirectory(prefix="agentimage-") as tmp:
        public_key = None
        if plan.signing_key:
            public_key = Path(tmp) / "cosign.pub"
            public_key.write_text(plan.public_key)
        try:
            registry.verify(plan.repository, plan.pushed_digest, public_key, expected)
        except AgentImageError as exc:
            if exc.code != ExitCode.SUPPLY_CHAIN:
                raise
            return plan
    return replace(plan, supply_done=True)
