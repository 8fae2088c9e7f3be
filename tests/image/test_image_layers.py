"""What the image's layers carry: no secret-looking path in any layer, no large file twice,
no secret in the build history.

Every layer counts, not just the final filesystem: a file deleted or overwritten by a later
layer is still shipped and still readable by anyone who pulls the image. That the CA
bundle passed as a build secret lands in no layer is shown with a throwaway CA of its own
by tests/release/test_build_secret.py.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from benchmarks import layers

pytestmark = pytest.mark.slow


def test_no_large_file_content_twice_in_any_layers(saved_image: layers.Image) -> None:
    by_digest: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for layer in saved_image.layers:
        for entry in layer.entries:
            if entry.kind is layers.Kind.FILE and entry.size >= layers.MIB and entry.digest:
                by_digest[entry.digest].append((layer.index, entry.path))
    twice = {digest[:19]: paths for digest, paths in by_digest.items() if len(paths) > 1}
    assert not twice, f"files of 1 MiB or more carried more than once (layer, path): {twice}"


def test_no_secret_paths_in_any_layer(saved_image: layers.Image) -> None:
    suspicious = [
        (layer.index, entry.path)
        for layer in saved_image.layers
        for entry in layer.entries
        if entry.path == "/run/secrets"
        or entry.path.startswith("/run/secrets/")
        or entry.path.endswith(("/.credentials.json", "/.claude.json"))
        or re.fullmatch(r"/(root|home/[^/]+)/\.(npmrc|netrc|docker/config\.json)", entry.path)
        or re.fullmatch(r"/(root|home/[^/]+)/\.[a-z]*_history", entry.path)
    ]
    assert not suspicious, f"secret-looking paths in layers (layer, path): {suspicious}"


def test_history_holds_no_secrets(image) -> None:
    patterns = ("BEGIN CERTIFICATE", "sk-ant-", "_authToken", "NODE_AUTH_TOKEN=", "API_KEY=")
    for step in image.history():
        created_by = step.get("CreatedBy", "")
        for pattern in patterns:
            assert pattern not in created_by, f"{pattern!r} in docker history: {created_by}"
