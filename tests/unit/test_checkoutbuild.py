"""Builds of the checkout (invoke build, invoke buildx): tags, labels, spec, push check."""

from __future__ import annotations

from pathlib import Path

import pytest
from git_helpers import commit, make_repo
from release_helpers import FakeRegistry, image

from agentimage import checkoutbuild
from agentimage.errors import AgentImageError
from agentimage.imagebuild import BuildOptions
from agentimage.imagetools import RemoteImage
from agentimage.labels import Identity, labels_from_build_args

OPTIONS = BuildOptions("slim", "18", "9.8.7")
IDENTITY = Identity(source="https://example.invalid/agent-image", title="t", licenses="MIT")


def test_plan_tags_dev_and_the_commit_and_labels_the_version_from_git(tmp_path: Path) -> None:
    work, git = make_repo(tmp_path)
    sha = commit(work, git, "feat: more")
    planned = checkoutbuild.plan(work, IDENTITY, OPTIONS, "agentgate/agent", extra_tags=["try1"])
    assert planned.refs == (
        "agentgate/agent:dev",
        f"agentgate/agent:sha-{sha[:7]}",
        "agentgate/agent:try1",
    )
    assert planned.sha_ref == planned.refs[1]
    labels = labels_from_build_args(planned.spec.build_args)
    assert labels["org.opencontainers.image.version"] == f"0.1.1-dev.2+g{sha[:7]}"
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.source"] == IDENTITY.source
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    assert labels["io.agentgate.image.variant"] == "slim"
    assert labels["io.agentgate.image.claude-code-version"] == "9.8.7"


def test_a_dirty_tree_says_so_in_the_version(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path)
    (work / "scratch").write_text("x\n")
    meta = checkoutbuild.metadata(work, IDENTITY, "slim")
    assert meta.version.endswith(".dirty")


def test_extra_tags_are_checked_and_full_refs_kept() -> None:
    assert checkoutbuild.extra_refs("r/a", ["x", "other/b:y"]) == ["r/a:x", "other/b:y"]
    with pytest.raises(AgentImageError, match="image tag '-bad' is invalid"):
        checkoutbuild.extra_refs("r/a", ["-bad"])


@pytest.mark.parametrize(
    ("size", "text"),
    [(None, "unknown"), (999, "999 B"), (1500, "1.5 KB"), (245_000_000, "245.0 MB")],
)
def test_human_size(size: int | None, text: str) -> None:
    assert checkoutbuild.human_size(size) == text


def _pushed(tmp_path: Path, platforms: tuple[str, ...]) -> checkoutbuild.CheckoutBuild:
    work, _ = make_repo(tmp_path)
    return checkoutbuild.plan(
        work, IDENTITY, OPTIONS, "127.0.0.1:5999/agentgate/agent", platforms=platforms, push=True
    )


def test_verify_pushed_lists_the_manifest_platforms(tmp_path: Path) -> None:
    planned = _pushed(tmp_path, ("linux/amd64",))
    tag = planned.sha_ref.rsplit(":", 1)[1]
    fake = FakeRegistry({tag: image("sha256:a")})
    lines = checkoutbuild.verify_pushed(fake, planned, run_tools=False)  # type: ignore[arg-type]
    assert lines == [f"  manifest  {planned.sha_ref} -> linux/amd64"]


def test_verify_pushed_refuses_a_manifest_list_that_lacks_a_platform(tmp_path: Path) -> None:
    planned = _pushed(tmp_path, ("linux/amd64", "linux/arm64"))
    tag = planned.sha_ref.rsplit(":", 1)[1]
    fake = FakeRegistry({tag: RemoteImage("sha256:a", "", ("linux/amd64",))})
    with pytest.raises(AgentImageError, match="lacks linux/arm64"):
        checkoutbuild.verify_pushed(fake, planned, run_tools=False)  # type: ignore[arg-type]
