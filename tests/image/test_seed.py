"""The seed's verification steps: `docker run --rm agentgate/agent:dev bash -c ...`."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from imagekit import Containers, logs_of

import docker
from agentimage import lines
from agentimage.labels import CLAUDE_CODE_VERSION_LABEL, LABEL_BUILD_ARGS, mismatched_labels


def _bash(containers: Containers, script: str) -> str:
    result = containers.run(["bash", "-c", script])
    assert result.code == 0, str(result)
    return result.stdout.strip()


def test_node_is_the_line_built(containers: Containers, node_line: str) -> None:
    version = _bash(containers, "node --version")
    assert re.fullmatch(rf"v{node_line}\.\d+\.\d+", version), version


def test_claude_is_the_pin_of_the_line(image, node_line: str) -> None:
    """Unless the build was given another CLI (AGENT_IMAGE_LABELS says which), the image
    carries the release its line pins in the Dockerfile."""
    given = json.loads(os.environ.get("AGENT_IMAGE_LABELS") or "{}")
    expected = given.get(CLAUDE_CODE_VERSION_LABEL) or lines.read().pins[node_line]
    assert image.labels.get(CLAUDE_CODE_VERSION_LABEL) == expected


def test_claude_version_matches_label(containers: Containers, image) -> None:
    pinned = image.labels.get("io.agentgate.image.claude-code-version")
    assert pinned, f"label io.agentgate.image.claude-code-version missing: {image.labels}"
    version = _bash(containers, "claude --version")
    assert version.split()[0] == pinned, f"claude --version says {version!r}, label {pinned}"


def test_git_runs(containers: Containers) -> None:
    assert re.fullmatch(r"git version \d+\.\d+\.\d+\S*", _bash(containers, "git --version"))


def test_runs_as_agentgate_in_workspace(containers: Containers) -> None:
    out = _bash(containers, 'whoami; pwd; test -d /workspace && stat -c "%U %a" /workspace')
    assert out.splitlines() == ["agentgate", "/workspace", "agentgate 755"]


def test_labels_are_the_values_the_build_was_given(image) -> None:
    """Every label the Dockerfile sets holds what the build passed (`invoke build
    --labels-file` and the release's test step hand those over as AGENT_IMAGE_LABELS): a
    build that forgot a value carries the Dockerfile's placeholder default and fails here."""
    given = os.environ.get("AGENT_IMAGE_LABELS")
    if not given:
        pytest.skip(
            "AGENT_IMAGE_LABELS is not set: pass the JSON `invoke build --labels-file FILE` "
            "wrote (nox -s image and invoke release set it)"
        )
    expected = json.loads(given)
    assert set(expected) == set(LABEL_BUILD_ARGS), f"AGENT_IMAGE_LABELS holds {sorted(expected)}"
    assert mismatched_labels(expected, image.labels) == {}


def test_auto_remove_leaves_nothing(containers: Containers, client: docker.DockerClient) -> None:
    container = containers.start(["bash", "-c", "exit 0"], auto_remove=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            container.reload()
        except docker.errors.NotFound:
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"{container.name} still exists 30 s after start (status {container.status})"
                f"\n--- docker logs ---\n{logs_of(container)}"
            )
        time.sleep(0.1)
